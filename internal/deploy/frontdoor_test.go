package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// fakeDoor is a FrontDoor that logs its calls into the runtime's call
// list, so that their order against the engine's calls shows. drain, if
// set, is received from before Drain returns.
type fakeDoor struct {
	rt    *fakeRuntime
	mu    sync.Mutex
	up    map[string]string
	drain chan struct{}
}

func (f *fakeDoor) Switch(deployment, upstream string) string {
	f.rt.call("switch", deployment+" "+upstream)
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.up[deployment]
	f.up[deployment] = upstream
	return prev
}

func (f *fakeDoor) Drain(ctx context.Context, deployment, upstream string) error {
	f.rt.call("drain_proxy", deployment+" "+upstream)
	if f.drain == nil {
		return nil
	}
	select {
	case <-f.drain:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeDoor) upstream(deployment string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up[deployment]
}

const proxyConfig = `
hooks: [{source: dockerhub, token: 0123456789abcdef0123456789abcdef}]
environments: {production: {}}
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    proxy: {listen: "127.0.0.1:18001", port: 8000, drain_timeout: %s}
    health: {min_uptime: 50ms, timeout: 1s}
`

type proxyHarness struct {
	t       *testing.T
	rt      *fakeRuntime
	door    *fakeDoor
	eng     *Engine
	j       *rcJournal
	cfg     *deployments.Config
	results chan Result
}

func newProxyHarness(t *testing.T, drain string, rt *fakeRuntime, j *rcJournal) *proxyHarness {
	t.Helper()
	cfg, err := deployments.Parse([]byte(fmt.Sprintf(proxyConfig, drain)), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	h := &proxyHarness{t: t, rt: rt, j: j, cfg: cfg, door: &fakeDoor{rt: rt, up: map[string]string{}}, results: make(chan Result, 4)}
	opts := Options{
		Runtime: rt, Logger: zerolog.Nop(), FrontDoor: h.door,
		Config: func() *deployments.Config { return cfg },
		OnDone: func(r Result) { h.results <- r },
		waits:  testWaits,
	}
	if j != nil {
		opts.Journal = j
	}
	h.eng = New(opts)
	t.Cleanup(func() { h.eng.Close(context.Background()) })
	return h
}

func (h *proxyHarness) deploy(digest string) Result {
	h.t.Helper()
	h.rt.push("docker.io/acme/web:latest", digest)
	if _, err := h.eng.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web", Tag: "latest"}); err != nil {
		h.t.Fatal(err)
	}
	select {
	case r := <-h.results:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("no deploy finished")
		return Result{}
	}
}

// callsFrom returns the calls logged since the n-th, without inspects.
func (h *proxyHarness) callsFrom(n int) []string {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	var out []string
	for _, c := range h.rt.calls[n:] {
		if !strings.HasPrefix(c, "inspect ") && !strings.HasPrefix(c, "ping ") {
			out = append(out, c)
		}
	}
	return out
}

func (h *proxyHarness) ncalls() int {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	return len(h.rt.calls)
}

// The first deploy starts the container under its name on a loopback
// port and points the proxy at it; the next starts the new one beside it,
// switches, drains the old one, and only then stops it.
func TestProxySwapOrder(t *testing.T) {
	h := newProxyHarness(t, "5s", newFakeRuntime(), nil)
	if r := h.deploy("sha256:aaa"); r.Outcome != Succeeded {
		t.Fatalf("first deploy: %s %v", r.Outcome, r.Err)
	}
	first, _ := h.rt.get("web")
	up1 := first.Published["8000/tcp"]
	if !strings.HasPrefix(up1, "127.0.0.1:") || h.door.upstream("web") != up1 {
		t.Fatalf("after the first deploy the proxy serves %q, the container publishes %v", h.door.upstream("web"), first.Published)
	}

	n := h.ncalls()
	if r := h.deploy("sha256:bbb"); r.Outcome != Succeeded {
		t.Fatalf("second deploy: %s %v", r.Outcome, r.Err)
	}
	second, _ := h.rt.get("web")
	up2 := second.Published["8000/tcp"]
	if second.ID == first.ID || up2 == "" || up2 == up1 || h.door.upstream("web") != up2 {
		t.Fatalf("after the second deploy: web is %s at %q, the proxy serves %q", second.ID, up2, h.door.upstream("web"))
	}
	calls := h.callsFrom(n)
	want := []string{
		"create web.liftoff-next",
		"start " + second.ID,
		"switch web " + up2,
		"rename " + first.ID + " web.liftoff-prev",
		"rename " + second.ID + " web",
		"drain_proxy web " + up1,
		"stop " + first.ID,
		"remove " + first.ID,
	}
	var got []string
	for _, c := range calls {
		if !strings.HasPrefix(c, "resolve ") && !strings.HasPrefix(c, "pull ") && !strings.HasPrefix(c, "image_env ") {
			got = append(got, c)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(h.rt.all()) != 1 {
		t.Errorf("containers left: %v", h.rt.all())
	}
}

// A new container that fails its gate is never served: the proxy keeps
// the old one, which is never stopped.
func TestProxyGateFailureKeepsServing(t *testing.T) {
	rt := newFakeRuntime()
	h := newProxyHarness(t, "5s", rt, nil)
	if r := h.deploy("sha256:aaa"); r.Outcome != Succeeded {
		t.Fatalf("first deploy: %s %v", r.Outcome, r.Err)
	}
	first, _ := rt.get("web")
	rt.exitOnStart["bad"] = 3
	n := h.ncalls()
	r := h.deploy("sha256:bad")
	if r.Outcome != RolledBack || !errors.Is(r.Err, ErrGate) {
		t.Fatalf("outcome %s %v, want rolled back at the gate", r.Outcome, r.Err)
	}
	for _, c := range h.callsFrom(n) {
		if strings.HasPrefix(c, "switch ") || c == "stop "+first.ID || strings.HasPrefix(c, "drain_proxy ") {
			t.Errorf("the failed deploy did %q", c)
		}
	}
	if now, _ := rt.get("web"); now.ID != first.ID || !now.Running || h.door.upstream("web") != first.Published["8000/tcp"] {
		t.Errorf("web is %+v, served %q", now, h.door.upstream("web"))
	}
	if len(rt.all()) != 1 {
		t.Errorf("containers left: %v", rt.all())
	}
}

// The old container is stopped once the proxy has drained it, and at
// drain_timeout when requests are still in flight.
func TestProxyDrainBoundsTheStop(t *testing.T) {
	rt := newFakeRuntime()
	h := newProxyHarness(t, "300ms", rt, nil)
	if r := h.deploy("sha256:aaa"); r.Outcome != Succeeded {
		t.Fatal(r.Err)
	}
	h.door.drain = make(chan struct{}) // never drained
	start := time.Now()
	if r := h.deploy("sha256:bbb"); r.Outcome != Succeeded {
		t.Fatalf("%s %v", r.Outcome, r.Err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the deploy took %s: it did not wait for the drain", took)
	}
	if len(rt.all()) != 1 {
		t.Errorf("containers left: %v", rt.all())
	}
}

// After a crash between the switch and the cleanup, reconcile keeps the
// new container, serves it at once, and removes the old one.
func TestProxyRepairServesTheKeptContainer(t *testing.T) {
	rt, j := newFakeRuntime(), newRCJournal()
	h := newProxyHarness(t, "5s", rt, j)
	if r := h.deploy("sha256:aaa"); r.Outcome != Succeeded {
		t.Fatal(r.Err)
	}
	// The next deploy dies as its cleanup begins.
	died := errors.New("killed")
	rt.fail = func(op, arg string) error {
		if op == "rename" {
			return died
		}
		return nil
	}
	h.eng.opts.Retries = 1
	r := h.deploy("sha256:bbb")
	rt.fail = nil
	next, ok := rt.get("web.liftoff-next")
	if !ok || r.Outcome != Failed {
		t.Fatalf("outcome %s %v; containers %v", r.Outcome, r.Err, rt.all())
	}
	h.eng.Close(context.Background())

	// A new liftoff, a new proxy that serves nothing yet.
	h2 := newProxyHarness(t, "5s", rt, j)
	if err := h2.eng.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	now, ok := rt.get("web")
	if !ok || now.ID != next.ID {
		t.Fatalf("after reconcile web is %+v, want the new container %s", now, next.ID)
	}
	if got := h2.door.upstream("web"); got != now.Published["8000/tcp"] || got == "" {
		t.Errorf("the proxy serves %q, want %q", got, now.Published["8000/tcp"])
	}
	if len(rt.all()) != 1 {
		t.Errorf("containers left: %v", rt.all())
	}
}

// A container restarted by the engine gets a new loopback port: the proxy
// follows it.
func TestProxyFollowsARestartedContainer(t *testing.T) {
	rt := newFakeRuntime()
	h := newProxyHarness(t, "5s", rt, nil)
	if r := h.deploy("sha256:aaa"); r.Outcome != Succeeded {
		t.Fatal(r.Err)
	}
	c, _ := rt.get("web")
	before := h.door.upstream("web")
	if err := rt.Stop(context.Background(), c.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	h.eng.refreshFrontDoor(context.Background())
	c, _ = rt.get("web")
	if after := h.door.upstream("web"); after == before || after != c.Published["8000/tcp"] {
		t.Errorf("served %q then %q; the container publishes %v", before, after, c.Published)
	}
}
