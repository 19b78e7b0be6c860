package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

const testConfig = `
hooks:
  - source: dockerhub
    token: 0123456789abcdef0123456789abcdef
environments:
  staging:
    env: {SETTINGS: app.settings.staging, DEBUG: "True"}
  production:
    env: {SETTINGS: app.settings.production, DEBUG: "False"}
    forbid: {DEBUG: ["True"]}
deployments:
  - name: web-staging
    image: acme/web
    tags: [staging]
    environment: staging
    env: {ROLE: web}
    health: {min_uptime: 50ms}
  - name: web-prod
    image: acme/web
    tags: [latest]
    environment: production
    health: {min_uptime: 50ms}
  - name: legacy
    image: acme/legacy
    tags: [latest]
    environment: production
    container: {replace_unmanaged: true}
    health: {min_uptime: 50ms}
`

type harness struct {
	t       *testing.T
	rt      *fakeRuntime
	eng     *Engine
	reg     *prometheus.Registry
	results chan Result
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := deployments.Parse([]byte(testConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	h := &harness{t: t, rt: newFakeRuntime(), reg: prometheus.NewRegistry(), results: make(chan Result, 32)}
	h.eng = New(Options{
		Runtime:    h.rt,
		Config:     func() *deployments.Config { return cfg },
		Logger:     zerolog.Nop(),
		Registerer: h.reg,
		OnDone:     func(r Result) { h.results <- r },
		waits:      testWaits,
	})
	t.Cleanup(func() { h.eng.Close(context.Background()) })
	return h
}

func (h *harness) deploy(name, tag string) Result {
	h.t.Helper()
	if _, err := h.eng.Enqueue(context.Background(), Request{Deployment: name, Image: "docker.io/acme/web", Tag: tag, Delivery: "d-" + tag}); err != nil {
		h.t.Fatalf("enqueue: %v", err)
	}
	return h.next()
}

func (h *harness) next() Result {
	h.t.Helper()
	select {
	case r := <-h.results:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("no deploy finished within 10s")
		return Result{}
	}
}

func (h *harness) running(name string) Container {
	h.t.Helper()
	c, ok := h.rt.get(name)
	if !ok || !c.Running {
		h.t.Fatalf("container %s not running (present: %v): all = %+v", name, ok, h.rt.all())
	}
	return c
}

// only asserts that the runtime holds exactly the named containers.
func (h *harness) only(names ...string) {
	h.t.Helper()
	var got []string
	for _, c := range h.rt.all() {
		got = append(got, c.Name)
	}
	slices.Sort(got)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		h.t.Fatalf("containers = %v, want %v", got, names)
	}
}

func (h *harness) count(deployment, env string, o Outcome) float64 {
	return testutil.ToFloat64(h.eng.metrics.deploys.WithLabelValues(deployment, env, string(o)))
}

func TestFirstDeployThenUpdate(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:staging", "sha256:aaa", "DEBUG=maybe", "PATH=/bin")

	r := h.deploy("web-staging", "staging")
	if r.Outcome != Succeeded || r.Err != nil {
		t.Fatalf("first deploy: %s %v", r.Outcome, r.Err)
	}
	c := h.running("web-staging")
	if c.Labels[LabelDigest] != "sha256:aaa" || c.Labels[LabelDeployment] != "web-staging" ||
		c.Labels[LabelEnvironment] != "staging" || c.Labels[LabelTag] != "staging" || !c.Managed() {
		t.Errorf("labels = %v", c.Labels)
	}
	if c.Image != "docker.io/acme/web@sha256:aaa" {
		t.Errorf("image = %q, want it pinned to the digest", c.Image)
	}
	env := h.rt.env[c.ID]
	for _, want := range []string{"DEBUG=True", "PATH=/bin", "ROLE=web", "SETTINGS=app.settings.staging"} {
		if !slices.Contains(env, want) {
			t.Errorf("env %v lacks %s", env, want)
		}
	}

	h.rt.push("docker.io/acme/web:staging", "sha256:bbb")
	r = h.deploy("web-staging", "staging")
	if r.Outcome != Succeeded || r.Previous != "sha256:aaa" || r.Digest != "sha256:bbb" {
		t.Fatalf("update: %+v", r)
	}
	if got := h.running("web-staging"); got.ID == c.ID || got.Labels[LabelDigest] != "sha256:bbb" {
		t.Errorf("after update: %+v", got)
	}
	h.only("web-staging")
	if n := h.count("web-staging", "staging", Succeeded); n != 2 {
		t.Errorf("succeeded = %v, want 2", n)
	}
}

func TestSameDigestIsUnchanged(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:aaa")
	first := h.deploy("web-prod", "latest")
	again := h.deploy("web-prod", "latest")
	if again.Outcome != Unchanged || again.ContainerID != first.ContainerID {
		t.Fatalf("second deploy of the same digest: %+v (first %s)", again, first.ContainerID)
	}
	if n := h.rt.count("create"); n != 1 {
		t.Errorf("create called %d times, want 1", n)
	}
	if n := h.rt.count("pull"); n != 1 {
		t.Errorf("pull called %d times, want 1", n)
	}
}

func TestNewContainerExitsRollsBack(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:good")
	good := h.deploy("web-prod", "latest")

	h.rt.push("docker.io/acme/web:latest", "sha256:bad")
	h.rt.exitOnStart["sha256:bad"] = 3
	r := h.deploy("web-prod", "latest")
	if r.Outcome != RolledBack || !errors.Is(r.Err, ErrGate) || !strings.Contains(r.Err.Error(), "exit code 3") {
		t.Fatalf("deploy of an exiting image: %s %v", r.Outcome, r.Err)
	}
	c := h.running("web-prod")
	if c.ID != good.ContainerID || c.Labels[LabelDigest] != "sha256:good" {
		t.Errorf("running %+v, want the previous container %s back", c, good.ContainerID)
	}
	h.only("web-prod")
}

func TestFailuresAfterStopRollBack(t *testing.T) {
	for _, op := range []string{"create", "start", "rename"} {
		t.Run(op, func(t *testing.T) {
			h := newHarness(t)
			h.rt.push("docker.io/acme/web:latest", "sha256:good")
			good := h.deploy("web-prod", "latest")
			h.rt.push("docker.io/acme/web:latest", "sha256:next")
			h.rt.fail = func(o, arg string) error {
				// Fail the deploy's call, not the rollback's: the rollback
				// renames the previous container back and starts it.
				if o == op && !strings.HasSuffix(arg, " web-prod") && arg != good.ContainerID {
					return errors.New("engine said no")
				}
				return nil
			}
			r := h.deploy("web-prod", "latest")
			if r.Outcome != RolledBack || !strings.Contains(r.Err.Error(), "engine said no") {
				t.Fatalf("%s failing: %s %v", op, r.Outcome, r.Err)
			}
			if c := h.running("web-prod"); c.ID != good.ContainerID {
				t.Errorf("running %s, want %s", c.ID, good.ContainerID)
			}
			h.only("web-prod")
		})
	}
}

func TestFailuresBeforeStopTouchNothing(t *testing.T) {
	for _, op := range []string{"resolve", "pull", "image_env"} {
		t.Run(op, func(t *testing.T) {
			h := newHarness(t)
			h.rt.push("docker.io/acme/web:latest", "sha256:good")
			good := h.deploy("web-prod", "latest")
			h.rt.push("docker.io/acme/web:latest", "sha256:next")
			h.rt.fail = func(o, _ string) error {
				if o == op {
					return errors.New("registry down")
				}
				return nil
			}
			r := h.deploy("web-prod", "latest")
			if r.Outcome != Failed || !strings.Contains(r.Err.Error(), "registry down") {
				t.Fatalf("%s failing: %s %v", op, r.Outcome, r.Err)
			}
			if n := h.rt.count("stop"); n != 0 {
				t.Errorf("stop called %d times before a failure in %s", n, op)
			}
			if c := h.running("web-prod"); c.ID != good.ContainerID {
				t.Errorf("running %s, want %s", c.ID, good.ContainerID)
			}
		})
	}
}

func TestUnknownTagFails(t *testing.T) {
	h := newHarness(t)
	r := h.deploy("web-prod", "latest")
	if r.Outcome != Failed || !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("unknown tag: %s %v", r.Outcome, r.Err)
	}
	h.only()
}

func TestFirstDeployThatExitsLeavesNothing(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:bad")
	h.rt.exitOnStart["sha256:bad"] = 1
	r := h.deploy("web-prod", "latest")
	if r.Outcome != Failed || !errors.Is(r.Err, ErrGate) {
		t.Fatalf("failing first deploy: %s %v", r.Outcome, r.Err)
	}
	h.only()
}

func TestUnmanagedContainerIsNotTouched(t *testing.T) {
	h := newHarness(t)
	h.rt.add(Container{Name: "web-prod", Running: true, Status: "running", Labels: map[string]string{}})
	h.rt.push("docker.io/acme/web:latest", "sha256:aaa")
	r := h.deploy("web-prod", "latest")
	if r.Outcome != Failed || !strings.Contains(r.Err.Error(), "replace_unmanaged") {
		t.Fatalf("unmanaged: %s %v", r.Outcome, r.Err)
	}
	if n := h.rt.count("stop") + h.rt.count("pull"); n != 0 {
		t.Errorf("stop/pull called %d times on an unmanaged container", n)
	}
	if c := h.running("web-prod"); c.Managed() {
		t.Errorf("container changed: %+v", c)
	}
}

func TestReplaceUnmanaged(t *testing.T) {
	h := newHarness(t)
	h.rt.add(Container{Name: "legacy", Running: true, Status: "running"})
	h.rt.push("docker.io/acme/legacy:latest", "sha256:aaa")
	if _, err := h.eng.Enqueue(context.Background(), Request{Deployment: "legacy", Image: "docker.io/acme/legacy", Tag: "latest"}); err != nil {
		t.Fatal(err)
	}
	if r := h.next(); r.Outcome != Succeeded {
		t.Fatalf("replace_unmanaged: %s %v", r.Outcome, r.Err)
	}
	if c := h.running("legacy"); !c.Managed() {
		t.Errorf("still the unmanaged container: %+v", c)
	}
	h.only("legacy")
}

func TestPolicyRefusesBeforeStop(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:good")
	good := h.deploy("web-prod", "latest")
	// The environment sets DEBUG=False, so an image that bakes DEBUG=True ships False...
	h.rt.push("docker.io/acme/web:latest", "sha256:debug-baked", "DEBUG=True")
	if r := h.deploy("web-prod", "latest"); r.Outcome != Succeeded {
		t.Fatalf("image ENV overridden by the environment: %s %v", r.Outcome, r.Err)
	}
	_ = good
	if n := h.count("web-prod", "production", Refused); n != 0 {
		t.Errorf("refused = %v", n)
	}
}

func TestBurstOfIdenticalDeliveriesIsOneDeploy(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:staging", "sha256:aaa")
	gate := make(chan struct{})
	h.rt.resolveGate = gate
	for range 6 {
		if _, err := h.eng.Enqueue(context.Background(), Request{Deployment: "web-staging", Image: "docker.io/acme/web", Tag: "staging"}); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	if r := h.next(); r.Outcome != Succeeded {
		t.Fatalf("burst: %s %v", r.Outcome, r.Err)
	}
	select {
	case r := <-h.results:
		t.Fatalf("a second deploy ran: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	if n := h.rt.count("resolve"); n != 1 {
		t.Errorf("resolve called %d times, want 1", n)
	}
}

func TestLatestWinsWhileBusy(t *testing.T) {
	h := newHarness(t)
	for _, tag := range []string{"staging", "a", "b", "c"} {
		h.rt.push("docker.io/acme/web:"+tag, "sha256:"+tag)
	}
	gate := make(chan struct{})
	h.rt.resolveGate = gate
	for _, tag := range []string{"staging", "a", "b", "c"} {
		if _, err := h.eng.Enqueue(context.Background(), Request{Deployment: "web-staging", Image: "docker.io/acme/web", Tag: tag}); err != nil {
			t.Fatal(err)
		}
	}
	if d := testutil.ToFloat64(h.eng.metrics.queueDepth); d != 1 {
		t.Errorf("queue depth = %v, want 1", d)
	}
	close(gate)
	first, second := h.next(), h.next()
	if first.Request.Tag != "staging" || second.Request.Tag != "c" || second.Outcome != Succeeded {
		t.Fatalf("ran %s then %s (%s), want staging then c", first.Request.Tag, second.Request.Tag, second.Outcome)
	}
	if n := h.count("web-staging", "staging", Superseded); n != 2 {
		t.Errorf("superseded = %v, want 2", n)
	}
	if c := h.running("web-staging"); c.Labels[LabelDigest] != "sha256:c" {
		t.Errorf("running %s, want sha256:c", c.Labels[LabelDigest])
	}
	if d := testutil.ToFloat64(h.eng.metrics.queueDepth); d != 0 {
		t.Errorf("queue depth = %v after the queue drained", d)
	}
}

func TestDeploymentsRunConcurrently(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:staging", "sha256:s")
	h.rt.push("docker.io/acme/web:latest", "sha256:p")
	gate := make(chan struct{})
	h.rt.resolveGate = gate
	h.eng.Enqueue(context.Background(), Request{Deployment: "web-staging", Image: "docker.io/acme/web", Tag: "staging"})
	h.eng.Enqueue(context.Background(), Request{Deployment: "web-prod", Image: "docker.io/acme/web", Tag: "latest"})
	if !h.eng.Busy("web-staging") || !h.eng.Busy("web-prod") {
		t.Fatal("both deployments should be busy")
	}
	close(gate)
	h.next()
	h.next()
	h.only("web-staging", "web-prod")
	if d := h.running("web-prod"); d.Labels[LabelEnvironment] != "production" {
		t.Errorf("web-prod labels %v", d.Labels)
	}
}

func TestCloseWaitsAndRefuses(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:p")
	gate := make(chan struct{})
	h.rt.resolveGate = gate
	h.eng.Enqueue(context.Background(), Request{Deployment: "web-prod", Image: "docker.io/acme/web", Tag: "latest"})
	closed := make(chan error)
	go func() { closed <- h.eng.Close(context.Background()) }()
	<-h.eng.closing // Close has begun
	if _, err := h.eng.Enqueue(context.Background(), Request{Deployment: "web-staging", Tag: "staging"}); !errors.Is(err, ErrClosed) {
		t.Errorf("enqueue while closing: %v, want ErrClosed", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned with a deploy in flight")
	default:
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if r := h.next(); r.Outcome != Succeeded {
		t.Errorf("in-flight deploy: %s %v", r.Outcome, r.Err)
	}
}

func TestCloseDeadlineRollsBack(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:good")
	good := h.deploy("web-prod", "latest")
	h.rt.push("docker.io/acme/web:latest", "sha256:next")
	h.rt.health["sha256:next"] = "starting" // the deploy hangs in its gate
	h.eng.Enqueue(context.Background(), Request{Deployment: "web-prod", Image: "docker.io/acme/web", Tag: "latest"})
	waitFor(t, "the new container started", func() bool { return h.rt.count("start") >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.eng.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("close: %v, want deadline exceeded", err)
	}
	r := h.next()
	if r.Outcome != RolledBack {
		t.Fatalf("cancelled deploy: %s %v", r.Outcome, r.Err)
	}
	if c := h.running("web-prod"); c.ID != good.ContainerID {
		t.Errorf("running %s, want the previous %s", c.ID, good.ContainerID)
	}
	h.only("web-prod")
}

func TestLeftoverPreviousIsRestored(t *testing.T) {
	h := newHarness(t)
	// An interrupted deploy left the previous container aside and no new one.
	h.rt.add(Container{Name: "web-prod" + PrevSuffix, Status: "exited",
		Labels: map[string]string{LabelManaged: "true", LabelDeployment: "web-prod", LabelDigest: "sha256:old"}})
	h.rt.push("docker.io/acme/web:latest", "sha256:new")
	h.rt.exitOnStart["sha256:new"] = 1
	r := h.deploy("web-prod", "latest")
	if r.Outcome != RolledBack || r.Previous != "sha256:old" {
		t.Fatalf("%s %v previous=%s", r.Outcome, r.Err, r.Previous)
	}
	h.only("web-prod")
}

func TestReconcileReportsWhatRuns(t *testing.T) {
	h := newHarness(t)
	h.rt.add(Container{Name: "web-prod", Running: true, Status: "running", Labels: map[string]string{
		LabelManaged: "true", LabelDeployment: "web-prod", LabelEnvironment: "production",
		LabelImage: "docker.io/acme/web", LabelTag: "latest", LabelDigest: "sha256:abc"}})
	if err := h.eng.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := h.eng.metrics.deployed.WithLabelValues("web-prod", "production", "local", "docker.io/acme/web", "latest", "sha256:abc")
	if v := testutil.ToFloat64(g); v != 1 {
		t.Errorf("deployed_info = %v, want 1 for the running container", v)
	}
	if n := testutil.CollectAndCount(h.eng.metrics.deployed); n != 1 {
		t.Errorf("%d deployed_info series, want 1", n)
	}
}

// start-first gives the new container its aliases only once it passed the
// gate, so that no request reaches a container that may fail it.
func TestStartFirstPublishesAfterTheGate(t *testing.T) {
	rt := newFakeRuntime()
	deployTag := startFirstEngine(t, rt, Options{})
	if r := deployTag("sha256:one"); r.Outcome != Succeeded {
		t.Fatalf("first: %s %v", r.Outcome, r.Err)
	}
	rt.mu.Lock()
	rt.calls = nil
	rt.mu.Unlock()
	r := deployTag("sha256:two")
	if r.Outcome != Succeeded {
		t.Fatalf("start-first: %s %v", r.Outcome, r.Err)
	}
	if got := rt.aliases[r.ContainerID]; !slices.Equal(got, []string{"api"}) {
		t.Errorf("aliases of the new container = %v", got)
	}
	var order []string
	for _, c := range rt.calls {
		op, _, _ := strings.Cut(c, " ")
		if op == "create" || op == "set_aliases" || op == "stop" || (op == "inspect" && len(order) > 0 && order[len(order)-1] == "start") {
			order = append(order, op)
		}
		if op == "start" {
			order = append(order, op)
		}
	}
	if want := []string{"create", "start", "inspect", "set_aliases", "stop"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v (calls %v)", order, want, rt.calls)
	}

	// A new container that fails its gate never gets the aliases.
	rt.exitOnStart["sha256:three"] = 1
	rt.mu.Lock()
	rt.calls = nil
	rt.mu.Unlock()
	if r := deployTag("sha256:three"); r.Outcome != RolledBack {
		t.Fatalf("failing gate: %s %v", r.Outcome, r.Err)
	}
	if n := rt.count("set_aliases"); n != 0 {
		t.Errorf("set_aliases called %d times for a container that failed its gate", n)
	}
}

// A start-first cleanup retried after the engine came back finds the old
// container already gone, and still finishes the swap.
func TestStartFirstCleanupRetryFindsOldGone(t *testing.T) {
	rt := newFakeRuntime()
	deployTag := startFirstEngine(t, rt, Options{RetryBackoff: time.Millisecond})
	old := deployTag("sha256:one")
	// The old container is removed, then the engine drops the answer: the
	// step is retried from its start.
	dropped := false
	rt.fail = func(op, arg string) error {
		if op == "rename" && !dropped {
			dropped = true
			return fmt.Errorf("connection lost: %w", ErrUnavailable)
		}
		return nil
	}
	r := deployTag("sha256:two")
	if r.Outcome != Succeeded {
		t.Fatalf("start-first with a retried cleanup: %s %v", r.Outcome, r.Err)
	}
	if c, ok := rt.get("api"); !ok || !c.Running || c.ID == old.ContainerID || c.Labels[LabelDigest] != "sha256:two" {
		t.Errorf("api = %+v, want the new container running under the name", c)
	}
}

// Stopping, a deploy that waits for an unreachable registry before it
// touched anything gives up at once instead of holding the stop.
func TestCloseEndsRetriesBeforeAnythingIsTouched(t *testing.T) {
	h := newHarness(t)
	h.eng.opts.RetryBackoff = time.Hour
	h.rt.fail = func(op, _ string) error {
		if op == "resolve" {
			return fmt.Errorf("registry: %w", ErrUnavailable)
		}
		return nil
	}
	h.eng.Enqueue(context.Background(), Request{Deployment: "web-prod", Image: "docker.io/acme/web", Tag: "latest"})
	waitFor(t, "the deploy tried to resolve", func() bool { return h.rt.count("resolve") > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.eng.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if r := h.next(); r.Outcome != Failed || !errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Err.Error(), "stopping") {
		t.Errorf("deploy at close: %s %v", r.Outcome, r.Err)
	}
}

// startFirstEngine runs an engine with one start-first deployment, "api" on
// network web with alias api, over rt; the function it returns pushes a
// digest under latest, deploys it and waits for the result.
func startFirstEngine(t *testing.T, rt *fakeRuntime, opts Options) func(digest string) Result {
	t.Helper()
	cfg, err := deployments.Parse([]byte(`
hooks: [{source: dockerhub, token: 0123456789abcdef0123456789abcdef}]
environments: {production: {}}
deployments:
  - name: api
    image: acme/api
    tags: [latest]
    environment: production
    strategy: start-first
    container: {networks: [web], aliases: [api]}
    health: {min_uptime: 50ms}
`), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan Result, 4)
	opts.Runtime, opts.Logger = rt, zerolog.Nop()
	opts.Config = func() *deployments.Config { return cfg }
	opts.OnDone = func(r Result) { results <- r }
	if opts.waits == (waits{}) {
		opts.waits = testWaits
	}
	eng := New(opts)
	t.Cleanup(func() { eng.Close(context.Background()) })
	return func(digest string) Result {
		t.Helper()
		rt.push("docker.io/acme/api:latest", digest)
		if _, err := eng.Enqueue(context.Background(), Request{Deployment: "api", Image: "docker.io/acme/api", Tag: "latest"}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-results:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no deploy finished")
			return Result{}
		}
	}
}
