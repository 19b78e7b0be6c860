package deploy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// engConfig has a deployment on the local engine and one on the engine far.
const engConfig = `
hooks:
  - source: dockerhub
    token: 0123456789abcdef0123456789abcdef
engines:
  far: {host: "tcp://far.example:2376", insecure: true}
environments:
  production:
    env: {DEBUG: "False"}
deployments:
  - name: near
    image: acme/near
    tags: [latest]
    environment: production
    stop_timeout: 1s
    health: {min_uptime: 10ms}
  - name: far
    image: acme/far
    tags: [latest]
    environment: production
    engine: far
    stop_timeout: 1s
    health: {min_uptime: 10ms}
`

// engHarness is an engine driving two fake engines, local and far, with a
// journal.
type engHarness struct {
	*rcEngine
	local, far *rcOutage
	j          *rcJournal
	reg        *prometheus.Registry
	logs       *testenv.SyncBuffer
}

func newEngHarness(t *testing.T) *engHarness {
	t.Helper()
	cfg, err := deployments.Parse([]byte(engConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	h := &engHarness{local: newRCOutage(), far: newRCOutage(), j: newRCJournal(), reg: prometheus.NewRegistry(), logs: &testenv.SyncBuffer{}}
	h.local.push("docker.io/acme/near:latest", "sha256:n1")
	h.far.push("docker.io/acme/far:latest", "sha256:f1")
	h.rcEngine = &rcEngine{results: make(chan Result, 16)}
	h.Engine = New(Options{
		Runtime:      listing{h.local.fakeRuntime},
		Engines:      map[string]Runtime{"far": listing{h.far.fakeRuntime}},
		Config:       func() *deployments.Config { return cfg },
		Journal:      h.j,
		Logger:       zerolog.New(h.logs),
		Registerer:   h.reg,
		OnDone:       func(r Result) { h.results <- r },
		Retries:      2,
		RetryBackoff: time.Millisecond,
		DownRetry:    20 * time.Millisecond,
		waits:        testWaits,
	})
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// watch runs Watch until the test ends.
func (h *engHarness) watch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Watch(ctx, 5*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (h *engHarness) enqueue(t *testing.T, deployment string) {
	t.Helper()
	if _, err := h.Enqueue(context.Background(), Request{Deployment: deployment, Image: "docker.io/acme/" + deployment, Tag: "latest", Trigger: "test"}); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

func (h *engHarness) next(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-h.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no deploy finished within 10s")
		return Result{}
	}
}

// listing gives a fake runtime the docker adapter's List.
type listing struct{ *fakeRuntime }

func (l listing) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	if err := l.call("list", ""); err != nil {
		return nil, err
	}
	var out []Container
next:
	for _, c := range l.all() {
		for k, v := range labels {
			if got, ok := c.Labels[k]; !ok || v != "" && got != v {
				continue next
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// TestEngineThatHangsHoldsOnlyItsDeployments: the engine far stops
// answering (its calls hang, as a host that drops packets does): a deploy
// on the local engine goes through meanwhile, and Watch's pings of far
// hold up nothing.
func TestEngineThatHangsHoldsOnlyItsDeployments(t *testing.T) {
	h := newEngHarness(t)
	release := make(chan struct{})
	h.far.mu.Lock()
	h.far.fail = func(op, arg string) error {
		<-release
		return nil
	}
	h.far.mu.Unlock()
	h.watch(t)
	h.enqueue(t, "far")
	h.enqueue(t, "near")
	if r := h.next(t); r.Request.Deployment != "near" || r.Outcome != Succeeded {
		t.Fatalf("first deploy to end: %s %s %v, want near succeeded while far hangs", r.Request.Deployment, r.Outcome, r.Err)
	}
	if c, _ := h.local.get("near"); !c.Running || c.Labels[LabelDigest] != "sha256:n1" {
		t.Errorf("near is %+v", c)
	}
	close(release)
	if r := h.next(t); r.Request.Deployment != "far" || r.Outcome != Succeeded {
		t.Fatalf("far: %s %v", r.Outcome, r.Err)
	}
	if c, _ := h.far.get("far"); !c.Running {
		t.Errorf("far is %+v on its engine", c)
	}
	if _, ok := h.local.get("far"); ok {
		t.Error("far has a container on the local engine")
	}
	if _, ok := h.far.get("near"); ok {
		t.Error("near has a container on far")
	}
	// What runs where, in deployed_info.
	for _, l := range []struct{ deployment, engine, digest string }{{"near", "local", "sha256:n1"}, {"far", "far", "sha256:f1"}} {
		g := h.metrics.deployed.WithLabelValues(l.deployment, "production", l.engine, "docker.io/acme/"+l.deployment, "latest", l.digest)
		if v := testutil.ToFloat64(g); v != 1 {
			t.Errorf("deployed_info{deployment=%s,engine=%s} = %v, want 1", l.deployment, l.engine, v)
		}
	}
}

// TestWatchPerEngine: pushes accepted before a restart are resumed engine
// by engine. While far does not answer, near's push is deployed and far's
// stays open; far's deploy that failed for want of its engine is repaired
// (not near's) once far is back, and far's push is then resumed.
func TestWatchPerEngine(t *testing.T) {
	h := newEngHarness(t)
	// far's first deploy: its engine goes away after the old container
	// was stopped and set aside, for longer than the retries.
	h.far.push("docker.io/acme/far:latest", "sha256:f0")
	h.enqueue(t, "far")
	if r := h.next(t); r.Outcome != Succeeded {
		t.Fatalf("far v0: %s %v", r.Outcome, r.Err)
	}
	old, _ := h.far.get("far")
	h.far.push("docker.io/acme/far:latest", "sha256:f1")
	h.far.mu.Lock()
	h.far.fail = wrapUnavailable(h.far)
	h.far.mu.Unlock()
	h.enqueue(t, "far")
	if r := h.next(t); r.Outcome != Failed || !errors.Is(r.Err, ErrUnavailable) {
		t.Fatalf("far v1 with its engine away: %s %v", r.Outcome, r.Err)
	}
	if un, _ := h.j.Unfinished(context.Background()); len(un) != 1 || un[0].Deployment != "far" {
		t.Fatalf("unfinished: %+v, want far's deploy", un)
	}
	// A push of near accepted, as if liftoff had died before deploying it.
	if _, err := h.j.Accept(context.Background(), []Request{{Deployment: "near", Image: "docker.io/acme/near", Tag: "latest", Trigger: "test", Received: time.Now()}}); err != nil {
		t.Fatal(err)
	}

	pings := h.far.count("ping")
	h.watch(t)
	r := h.next(t)
	if r.Request.Deployment != "near" || r.Outcome != Succeeded || r.Request.Trigger != TriggerResume {
		t.Fatalf("resumed while far is away: %s %s %s %v, want near's push resumed", r.Request.Deployment, r.Request.Trigger, r.Outcome, r.Err)
	}
	waitFor(t, "Watch pings far", func() bool { return h.far.count("ping") > pings+2 })
	if un, _ := h.j.Unfinished(context.Background()); len(un) != 1 {
		t.Errorf("far's interrupted deploy was closed while far was away: %+v", un)
	}
	if open, _ := h.j.OpenRequests(context.Background()); len(open) != 1 || open[0].Deployment != "far" {
		t.Errorf("open requests: %+v, want far's", open)
	}

	h.far.down.Store(false)
	r = h.next(t)
	if r.Request.Deployment != "far" || r.Outcome != Succeeded || r.Request.Trigger != TriggerResume || r.Digest != "sha256:f1" {
		t.Fatalf("far back: %s %s %s %v, want far's push resumed", r.Request.Deployment, r.Request.Trigger, r.Outcome, r.Err)
	}
	recs, _ := h.j.list(context.Background(), "far", 3)
	if len(recs) != 3 || recs[1].Outcome != RolledBack || !strings.Contains(recs[1].Error, "interrupted at step") {
		t.Errorf("far's journal: %+v, want the interrupted deploy rolled back by reconcile", recs)
	}
	if c, _ := h.far.get("far"); c.ID == old.ID || c.Labels[LabelDigest] != "sha256:f1" || !c.Running {
		t.Errorf("far runs %+v", c)
	}
	if n := h.local.count("create"); n != 1 {
		t.Errorf("%d creates on the local engine, want 1 (near)", n)
	}
}

// wrapUnavailable takes far away at its next create (once), failing
// every call while it is away as the docker adapter does: ErrUnavailable.
func wrapUnavailable(far *rcOutage) func(op, arg string) error {
	var once sync.Once
	return func(op, arg string) error {
		if op == "create" {
			once.Do(func() { far.down.Store(true) })
		}
		if far.down.Load() {
			return errors.Join(errors.New(op+" "+arg+": connection refused"), ErrUnavailable)
		}
		return nil
	}
}

// TestReconcileWarnsOfStrays: a container of far found on the local engine
// (far moved there from local) is warned of once, and left alone.
func TestReconcileWarnsOfStrays(t *testing.T) {
	h := newEngHarness(t)
	h.local.add(Container{ID: "left", Name: "far", Running: true, Labels: map[string]string{
		LabelManaged: "true", LabelDeployment: "far", LabelDigest: "sha256:f0"}})
	for range 2 {
		if err := h.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(h.logs.String(), "on an engine it no longer runs on"); n != 1 {
		t.Errorf("%d warnings of the stray, want 1; log:\n%s", n, h.logs)
	}
	if !strings.Contains(h.logs.String(), `"engine":"local","deployment":"far","container":"far","id":"left"`) {
		t.Errorf("the warning lacks where and what:\n%s", h.logs)
	}
	if c, ok := h.local.get("far"); !ok || !c.Running {
		t.Errorf("the stray was touched: %+v", c)
	}
	for _, op := range []string{"stop", "remove", "rename", "start"} {
		if n := h.local.count(op); n != 0 {
			t.Errorf("%d %s calls on the local engine", n, op)
		}
	}
	// Reconciling far alone looks at nothing on the local engine.
	calls := len(h.local.calls)
	if err := h.Reconcile(context.Background(), "far"); err != nil {
		t.Fatal(err)
	}
	if got := h.local.calls[calls:]; len(got) != 0 {
		t.Errorf("Reconcile(far) called the local engine: %v", got)
	}
}

// TestEngineAddedAfterStart: a deployment on an engine that liftoff was
// not started with (a reload added it) fails at its first step, saying to
// restart, and its push is settled, not resumed forever.
func TestEngineAddedAfterStart(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	cfg := h.opts.Config()
	h.rcEngine = &rcEngine{results: make(chan Result, 16)}
	h.Engine = New(Options{
		Runtime: listing{h.local.fakeRuntime},
		Config:  func() *deployments.Config { return cfg },
		Journal: h.j,
		Logger:  zerolog.Nop(),
		OnDone:  func(r Result) { h.results <- r },
		waits:   testWaits,
	})
	t.Cleanup(func() { h.Close(context.Background()) })
	h.enqueue(t, "far")
	r := h.next(t)
	if r.Outcome != Failed || r.Err == nil || !strings.Contains(r.Err.Error(), `engine "far" was added to the configuration after liftoff started: restart liftoff`) {
		t.Fatalf("deploy = %s %v", r.Outcome, r.Err)
	}
	if open, err := h.j.OpenRequests(context.Background()); err != nil || len(open) != 0 {
		t.Errorf("open requests = %v %v, want none", open, err)
	}
	if n := h.far.count("resolve"); n != 0 {
		t.Errorf("the far engine was called %d times", n)
	}
}
