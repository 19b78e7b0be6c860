package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

var testBounds = []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second}

// figs is n requests, bad of them 5xx, all in latency bucket i.
func figs(n, bad int64, i int) Figures {
	f := Figures{Requests: n, ServerError: bad, Buckets: make([]int64, len(testBounds)+1), Bounds: testBounds}
	f.Buckets[i] = n
	return f
}

func TestCanaryFigures(t *testing.T) {
	then := figs(100, 1, 0)
	now := figs(300, 5, 0)
	now.Buckets[0], now.Buckets[2] = 299, 1 // one slow one
	w := now.Sub(then)
	if w.Requests != 200 || w.ServerError != 4 || w.ErrorRate() != 0.02 {
		t.Errorf("window %+v rate %v", w, w.ErrorRate())
	}
	if p := w.P99(); p != 10*time.Millisecond {
		t.Errorf("p99 of 200 with 1 slow = %s, want 10ms", p) // the 198th is fast
	}
	w.Buckets[2] = 10
	if p := w.P99(); p != time.Second {
		t.Errorf("p99 with 10 of 209 slow = %s, want 1s", p)
	}
	above := figs(10, 0, 3)
	if p := above.P99(); p != time.Second {
		t.Errorf("p99 above every bound = %s, want the largest bound", p)
	}
	if (Figures{}).P99() != 0 || (Figures{}).ErrorRate() != 0 {
		t.Error("no requests: want zero figures")
	}
}

// TestCanaryJudge: a step fails on the new side's error rate or p99 only
// when it is also worse than the old side's in the same window.
func TestCanaryJudge(t *testing.T) {
	k := &deployments.Canary{ErrorRate: 0.01, MaxErrorRate: "1%", MaxP99: 100 * time.Millisecond}
	tests := []struct {
		name     string
		old, cur Figures
		want     string // "" passes
	}{
		{"healthy", figs(1000, 0, 0), figs(100, 0, 0), ""},
		{"at the limit", figs(1000, 0, 0), figs(100, 1, 0), ""},
		{"5%", figs(1000, 0, 0), figs(100, 5, 0), "error rate 5.00% above max_error_rate 1%"},
		{"both failing alike", figs(1000, 50, 0), figs(100, 5, 0), ""},
		{"worse than a failing old", figs(1000, 20, 0), figs(100, 5, 0), "error rate 5.00%"},
		{"slow", figs(1000, 0, 0), figs(100, 0, 2), "p99 1s above max_p99 100ms"},
		{"slow like the old", figs(1000, 0, 2), figs(100, 0, 2), ""},
		{"no requests", figs(0, 0, 0), figs(0, 0, 0), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := judge(k, 0, 5, tt.old, tt.cur)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("fails: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("passes, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q lacks %q", err, tt.want)
			case err != nil && !strings.HasPrefix(err.Error(), "canary step 1 (5%) failed: "):
				t.Errorf("error %q does not name the step", err)
			}
		})
	}
}

// canaryDoor is fakeDoor with a split: each CanaryFigures call, while a
// split is on, adds perCall requests to each side, bad of the new side's
// 5xx. Its calls go to the runtime's call list as "canary web UPSTREAM W".
type canaryDoor struct {
	*fakeDoor
	perCall, bad int64
	mu           sync.Mutex
	split        string
	old, cur     Figures
}

func (f *canaryDoor) Canary(deployment, upstream string, weight int) error {
	f.rt.call("canary", fmt.Sprintf("%s %s %d", deployment, upstream, weight))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.split = upstream
	return nil
}

func (f *canaryDoor) CanaryFigures(string) (Figures, Figures) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.split == "" {
		return f.old, Figures{}
	}
	f.old = f.old.Sub(figs(-f.perCall, 0, 0)) // old + perCall
	f.cur = f.cur.Sub(figs(-f.perCall, -f.bad, 0))
	return f.old, f.cur
}

const canaryUnitConfig = `
hooks: [{source: dockerhub, token: 0123456789abcdef0123456789abcdef}]
environments: {production: {}}
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    proxy: {listen: "127.0.0.1:18001", port: 8000, drain_timeout: 1s,
            canary: {steps: [10, 50], step_interval: 10ms, min_requests: MIN, max_wait: 100ms}}
    health: {min_uptime: 50ms, timeout: 1s}
`

func newCanaryHarness(t *testing.T, minRequests string, perCall, bad int64) (*proxyHarness, *canaryDoor, *[]CanaryEvent) {
	return newCanaryHarnessOn(t, newFakeRuntime(), minRequests, perCall, bad)
}

// newCanaryHarnessOn is newCanaryHarness over rt: a liftoff started again
// over the same engine.
func newCanaryHarnessOn(t *testing.T, rt *fakeRuntime, minRequests string, perCall, bad int64, with ...func(*Options)) (*proxyHarness, *canaryDoor, *[]CanaryEvent) {
	t.Helper()
	cfg, err := deployments.Parse([]byte(strings.Replace(canaryUnitConfig, "MIN", minRequests, 1)), t.TempDir(),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	door := &canaryDoor{fakeDoor: &fakeDoor{rt: rt, up: map[string]string{}}, perCall: perCall, bad: bad}
	h := &proxyHarness{t: t, rt: rt, cfg: cfg, door: door.fakeDoor, results: make(chan Result, 4)}
	var mu sync.Mutex
	events := &[]CanaryEvent{}
	opts := Options{
		Runtime: rt, Logger: zerolog.Nop(), FrontDoor: door,
		Config: func() *deployments.Config { return cfg },
		OnDone: func(r Result) { h.results <- r },
		OnCanary: func(ev CanaryEvent) {
			mu.Lock()
			*events = append(*events, ev)
			mu.Unlock()
		},
		waits: testWaits,
	}
	for _, f := range with {
		f(&opts)
	}
	h.eng = New(opts)
	t.Cleanup(func() { h.eng.Close(context.Background()) })
	return h, door, events
}

func kinds(evs []CanaryEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Kind)
	}
	return out
}

// canaryCalls are the calls since n that show the canary's course.
func canaryCalls(h *proxyHarness, n int) []string {
	var out []string
	for _, c := range h.callsFrom(n) {
		for _, p := range []string{"canary ", "switch ", "drain_proxy ", "remove ", "stop "} {
			if strings.HasPrefix(c, p) {
				out = append(out, c)
			}
		}
	}
	return out
}

// A healthy canary steps through its weights, then the switch ends the
// split and the old container is drained and removed. The first deploy
// has no canary.
func TestCanaryStepsThenSwitch(t *testing.T) {
	h, _, events := newCanaryHarness(t, "5", 10, 0)
	if r := h.deploy("sha256:aaa"); r.Outcome != Succeeded {
		t.Fatalf("first deploy: %s %v", r.Outcome, r.Err)
	}
	first, _ := h.rt.get("web")
	if len(*events) != 0 || slices.ContainsFunc(h.callsFrom(0), func(c string) bool { return strings.HasPrefix(c, "canary ") }) {
		t.Errorf("the first deploy ran a canary: %v", kinds(*events))
	}
	n := h.ncalls()
	if r := h.deploy("sha256:bbb"); r.Outcome != Succeeded {
		t.Fatalf("second deploy: %s %v", r.Outcome, r.Err)
	}
	second, _ := h.rt.get("web")
	up2 := second.Published["8000/tcp"]
	want := []string{
		"canary web " + up2 + " 10",
		"canary web " + up2 + " 50",
		"switch web " + up2,
		"canary web  0",
		"drain_proxy web " + first.Published["8000/tcp"],
		"stop " + first.ID,
		"remove " + first.ID,
	}
	if got := canaryCalls(h, n); !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := kinds(*events); !slices.Equal(got, []string{CanaryStarted, CanaryPromoted}) {
		t.Fatalf("events %v", got)
	}
	// canary_started tells the share the first step gives the new one.
	if st := (*events)[0].Status; st.Step != 0 || st.Weight != 10 || !slices.Equal(st.Steps, []int{10, 50}) {
		t.Errorf("canary_started: step %d weight %d of %v, want step 0 at 10 of [10 50]", st.Step, st.Weight, st.Steps)
	}
}

// A step whose new side fails too often ends the split, drains the new
// container and removes it; the old one is never stopped and never
// switched away from.
func TestCanaryFailingStepRollsBack(t *testing.T) {
	h, _, events := newCanaryHarness(t, "5", 10, 1) // 10% of the new side's requests fail
	if r := h.deploy("sha256:aaa"); r.Outcome != Succeeded {
		t.Fatalf("first deploy: %s %v", r.Outcome, r.Err)
	}
	first, _ := h.rt.get("web")
	n := h.ncalls()
	r := h.deploy("sha256:bbb")
	if r.Outcome != RolledBack || r.Err == nil || !strings.Contains(r.Err.Error(), "canary step 1 (10%) failed: error rate 10.00%") {
		t.Fatalf("outcome %s %v, want rolled back at the first step", r.Outcome, r.Err)
	}
	got := canaryCalls(h, n)
	if len(got) < 4 || !strings.HasPrefix(got[0], "canary web 127.0.0.1:") || !strings.HasSuffix(got[0], " 10") ||
		got[1] != "canary web  0" || !strings.HasPrefix(got[2], "drain_proxy web 127.0.0.1:") || !strings.HasPrefix(got[3], "remove ") {
		t.Errorf("calls: %v, want the split, its end, the new one drained and removed", got)
	}
	for _, c := range got {
		if strings.HasPrefix(c, "switch ") || c == "stop "+first.ID || c == "remove "+first.ID {
			t.Errorf("the aborted canary did %q", c)
		}
	}
	if cur, _ := h.rt.get("web"); cur.ID != first.ID || len(h.rt.all()) != 1 {
		t.Errorf("web is %s (want %s), containers %v", cur.ID, first.ID, h.rt.all())
	}
	evs := *events
	if got := kinds(evs); !slices.Equal(got, []string{CanaryStarted, CanaryAborted}) {
		t.Fatalf("events %v", got)
	}
	if last := evs[1].Status; last.New.Requests == 0 || last.New.Errors == 0 || last.Step != 0 {
		t.Errorf("the abort's figures %+v, want the failing step's", last)
	}
}

// A step that never gets min_requests is judged at max_wait on what it
// got: here nothing, so it passes.
func TestCanaryQuietStepPasses(t *testing.T) {
	h, _, events := newCanaryHarness(t, "1000", 0, 0)
	h.deploy("sha256:aaa")
	if r := h.deploy("sha256:bbb"); r.Outcome != Succeeded {
		t.Fatalf("outcome %s %v, want promoted", r.Outcome, r.Err)
	}
	if got := kinds(*events); !slices.Equal(got, []string{CanaryStarted, CanaryPromoted}) {
		t.Errorf("events %v", got)
	}
}

// A push that arrives at once after a restart is deployed before the
// start-up's repair has pointed the front door at the old container: the
// canary serves it first, so that the split has its old side.
func TestCanaryAfterRestartServesTheOldContainer(t *testing.T) {
	h, _, _ := newCanaryHarness(t, "5", 10, 0)
	h.deploy("sha256:aaa")
	first, _ := h.rt.get("web")
	h.eng.Close(context.Background())

	h2, door2, events := newCanaryHarnessOn(t, h.rt, "5", 10, 0) // a new process: its front door serves nothing
	n := h2.ncalls()
	if r := h2.deploy("sha256:bbb"); r.Outcome != Succeeded {
		t.Fatalf("outcome %s %v", r.Outcome, r.Err)
	}
	second, _ := h2.rt.get("web")
	got := canaryCalls(h2, n)
	if len(got) < 2 || got[0] != "switch web "+first.Published["8000/tcp"] || got[1] != "canary web "+second.Published["8000/tcp"]+" 10" {
		t.Errorf("calls %v, want the old container served, then the split", got)
	}
	if k := kinds(*events); !slices.Equal(k, []string{CanaryStarted, CanaryPromoted}) || door2.upstream("web") != second.Published["8000/tcp"] {
		t.Errorf("events %v, the front door serves %s", k, door2.upstream("web"))
	}
}

// The API shows a canary's step only once its split is on and its window
// begun: held before its first step (journaled, not yet split), a canary
// is not shown at 10% with figures that would miss the requests served
// meanwhile. (TestCanaryPromoteAbortByAPI counted 48 of its 50 requests
// now and then.)
func TestCanaryShownOnceSplit(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h, door, _ := newCanaryHarnessOn(t, newFakeRuntime(), "5", 10, 0, func(o *Options) {
		o.BeforeStep = func(deployment, step string) {
			if step == StepCanary {
				once.Do(func() { close(held); <-release })
			}
		}
	})
	if r := h.deploy("sha256:aaa"); r.Outcome != Succeeded {
		t.Fatalf("first deploy: %s %v", r.Outcome, r.Err)
	}
	h.rt.push("docker.io/acme/web:latest", "sha256:bbb")
	if _, err := h.eng.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web", Tag: "latest"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case r := <-h.results:
		t.Fatalf("the deploy ended (%s %v) without a canary step", r.Outcome, r.Err)
	}
	st, shown := h.eng.Canary("web")
	door.mu.Lock()
	split := door.split
	door.mu.Unlock()
	close(release)
	if shown && split == "" {
		t.Errorf("before its split, the canary is shown at step %d, %d%%", st.Step+1, st.Weight)
	}
	if r := <-h.results; r.Outcome != Succeeded {
		t.Fatalf("second deploy: %s %v", r.Outcome, r.Err)
	}
}
