package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// svcConfig has a service (web, on the local engine) and a container.
const svcConfig = `
hooks:
  - source: dockerhub
    token: 0123456789abcdef0123456789abcdef
engines:
  other: {host: "ssh://deploy@10.0.0.12"}
environments:
  production:
    env: {DEBUG: "False"}
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    env: {ROLE: web}
    stop_timeout: 3s
    service: {replicas: 2, update: {parallelism: 1, order: stop-first, monitor: 1s, failure_action: rollback}}
    container: {networks: [front], aliases: [www], ports: ["8080:8000"], command: [serve]}
    health: {cmd: ["/app", "healthcheck"], min_uptime: 10ms, timeout: 2s}
  - name: box
    image: acme/box
    tags: [latest]
    environment: production
    health: {min_uptime: 10ms}
`

// svcRemote adds a service on an engine named but not started with.
const svcRemote = `
  - name: remote
    image: acme/remote
    tags: [latest]
    environment: production
    engine: other
    service: {}
    health: {min_uptime: 10ms}
`

func svcLoad(t *testing.T, more ...string) *deployments.Config {
	t.Helper()
	cfg, err := deployments.Parse([]byte(svcConfig+strings.Join(more, "")), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// fakeSwarm is a fakeRuntime that is also a swarm manager. Each create
// or update queues the states InspectService then shows, one per call,
// as Swarm would go through them; the last stays.
type fakeSwarm struct {
	*fakeRuntime
	mu       sync.Mutex
	manager  error
	services map[string]*Service
	states   map[string][]Service // by name: what the next inspects show
	specs    []ServiceSpec        // every DeployService, in order
	removed  []string
	// verdict says how Swarm's rollout of a digest ends: "" completes (a
	// created service runs), or UpdateRollbackCompleted, UpdatePaused,
	// "hang" (never ends), "exit" (a created service's task ends).
	verdict map[string]string
	nextID  int
}

func newFakeSwarm() *fakeSwarm {
	return &fakeSwarm{fakeRuntime: newFakeRuntime(), services: map[string]*Service{}, states: map[string][]Service{}, verdict: map[string]string{}}
}

var _ Services = (*fakeSwarm)(nil)

func (f *fakeSwarm) SwarmManager(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.manager
}

func (f *fakeSwarm) InspectService(ctx context.Context, name string) (Service, error) {
	if err := f.call("inspect_service", name); err != nil {
		return Service{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.states[name]; len(q) > 0 {
		s := q[0]
		f.services[name] = &s
		f.states[name] = q[1:]
	}
	s, ok := f.services[name]
	if !ok {
		return Service{}, fmt.Errorf("service %s: %w", name, ErrNotFound)
	}
	cp := *s
	cp.Labels = maps.Clone(s.Labels)
	return cp, nil
}

func (f *fakeSwarm) DeployService(ctx context.Context, spec ServiceSpec) (string, bool, error) {
	if err := f.call("deploy_service", spec.Name); err != nil {
		return "", false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, spec)
	labels := maps.Clone(spec.Labels)
	maps.Copy(labels, spec.ServiceLabels)
	old, exists := f.services[spec.Name]
	s := Service{Name: spec.Name, Image: spec.Image, Labels: labels, Replicas: spec.Replicas}
	if exists {
		s.ID = old.ID
	} else {
		f.nextID++
		s.ID = fmt.Sprintf("svc%d", f.nextID)
	}
	f.services[spec.Name] = &s
	next := func(change func(*Service)) {
		n := s
		n.Labels = maps.Clone(s.Labels)
		change(&n)
		f.states[spec.Name] = append(f.states[spec.Name], n)
	}
	verdict := f.verdict[labels[LabelDigest]]
	f.states[spec.Name] = nil
	switch {
	case !exists && verdict == "exit":
		next(func(n *Service) { n.TaskError = "failed: task: non-zero exit (3)" })
	case !exists && verdict == "hang":
	case !exists:
		next(func(n *Service) { n.Running = 1 })
		next(func(n *Service) { n.Running = n.Replicas })
	default:
		prev := *old
		next(func(n *Service) { n.UpdateState = UpdateUpdating; n.Running = 0 })
		switch verdict {
		case UpdateRollbackCompleted:
			next(func(n *Service) { n.UpdateState, n.TaskError = UpdateUpdating, "complete: finished" })
			next(func(n *Service) {
				*n = prev
				n.UpdateState, n.UpdateMessage = UpdateRollbackStarted, "update rolled back due to failure or early termination of task x"
			})
			next(func(n *Service) {
				*n = prev
				n.UpdateState, n.UpdateMessage = UpdateRollbackCompleted, "rollback completed"
			})
		case UpdatePaused:
			next(func(n *Service) {
				n.UpdateState, n.UpdateMessage, n.Running = UpdatePaused, "update paused due to failure or early termination of task x", 1
			})
		case "hang":
		default:
			next(func(n *Service) { n.UpdateState, n.Running = UpdateCompleted, n.Replicas })
		}
	}
	return s.ID, exists, nil
}

func (f *fakeSwarm) RemoveService(ctx context.Context, name string) error {
	if err := f.call("remove_service", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.services, name)
	delete(f.states, name)
	f.removed = append(f.removed, name)
	return nil
}

func (f *fakeSwarm) lastSpec() ServiceSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.specs) == 0 {
		return ServiceSpec{}
	}
	return f.specs[len(f.specs)-1]
}

// containerCalls returns the calls that would touch a container.
func (f *fakeSwarm) containerCalls() []string {
	f.fakeRuntime.mu.Lock()
	defer f.fakeRuntime.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		op, _, _ := strings.Cut(c, " ")
		if slices.Contains([]string{"create", "start", "stop", "rename", "remove", "drain", "set_aliases", "run"}, op) {
			out = append(out, c)
		}
	}
	return out
}

// svcDeploy deploys digest as acme/<deployment>:latest and returns the
// result.
func svcDeploy(t *testing.T, e *rcEngine, rt *fakeSwarm, deployment, digest string) Result {
	t.Helper()
	rt.push("docker.io/acme/"+deployment+":latest", digest, "IMAGE_ONLY=yes")
	if _, err := e.Enqueue(context.Background(), Request{Deployment: deployment, Image: "docker.io/acme/" + deployment, Tag: "latest", Trigger: "test"}); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	select {
	case r := <-e.results:
		return r
	case <-time.After(30 * time.Second): // a wait for Swarm is bounded by its slack at least
		t.Fatal("no deploy finished within 30s")
		return Result{}
	}
}

func TestServiceDeploys(t *testing.T) {
	t.Parallel()
	cfg := svcLoad(t)
	rt, j := newFakeSwarm(), newRCJournal()
	e := newRCEngine(t, cfg, rt, j, nil)

	// The first deploy creates the service.
	r := svcDeploy(t, e, rt, "web", "sha256:v1")
	if r.Outcome != Succeeded || r.Err != nil || r.ContainerID != "svc1" || r.Previous != "" {
		t.Fatalf("first deploy: %+v", r)
	}
	s := rt.lastSpec()
	if s.Name != "web" || s.Image != "docker.io/acme/web@sha256:v1" || s.Replicas != 2 || s.StopGrace != 3*time.Second || s.Force {
		t.Errorf("service spec: %+v", s)
	}
	for _, kv := range []string{"DEBUG=False", "ROLE=web", "IMAGE_ONLY=yes"} {
		if !slices.Contains(s.Env, kv) {
			t.Errorf("env %v lacks %s", s.Env, kv)
		}
	}
	if s.Labels[LabelDigest] != "sha256:v1" || s.Labels[LabelDeployment] != "web" || s.Labels[LabelManaged] != "true" ||
		s.ServiceLabels[LabelDeploy] != fmt.Sprint(j.get(1).ID) {
		t.Errorf("labels %v, service labels %v", s.Labels, s.ServiceLabels)
	}
	if !slices.Equal(s.Networks, []string{"front"}) || !slices.Equal(s.Aliases, []string{"www"}) || !slices.Equal(s.Ports, []string{"8080:8000"}) ||
		!slices.Equal(s.Cmd, []string{"serve"}) || s.Healthcheck == nil || s.Healthcheck.Test[0] != "CMD" {
		t.Errorf("container spec: %+v", s.Spec)
	}
	if s.Update != (ServiceUpdate{Parallelism: 1, Order: "stop-first", Monitor: time.Second, FailureAction: "rollback"}) {
		t.Errorf("update: %+v", s.Update)
	}
	if rec := j.get(1); rec.Outcome != Succeeded || rec.Step != StepGate || rec.NewID != "svc1" || rec.PrevID != "" {
		t.Errorf("journal: %+v", rec)
	}

	// An update: Swarm rolls it out.
	r = svcDeploy(t, e, rt, "web", "sha256:v2")
	if r.Outcome != Succeeded || r.Previous != "sha256:v1" || r.ContainerID != "svc1" {
		t.Fatalf("update: %+v", r)
	}
	if rec := j.get(2); rec.PrevID != "svc1" || rec.NewID != "svc1" {
		t.Errorf("journal: %+v", rec)
	}
	// The same digest again: unchanged.
	if r = svcDeploy(t, e, rt, "web", "sha256:v2"); r.Outcome != Unchanged || r.ContainerID != "svc1" {
		t.Fatalf("same digest: %+v", r)
	}
	if n := len(rt.specs); n != 2 {
		t.Errorf("%d creates and updates, want 2", n)
	}
	// What runs, for the API.
	c, err := e.Running(context.Background(), "web")
	if err != nil || c == nil || c.ID != "svc1" || c.Name != "web" || c.Status != "running" || c.Health != "2/2 tasks" || c.Labels[LabelDigest] != "sha256:v2" {
		t.Errorf("Running = %+v, %v", c, err)
	}
	if calls := rt.containerCalls(); len(calls) != 0 {
		t.Errorf("a service's deploys touched containers: %v", calls)
	}
}

func TestServiceSwarmVerdicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		verdict string
		want    Outcome
		err     string
	}{
		{UpdateRollbackCompleted, RolledBack, "Swarm rolled the update back: update rolled back due to failure or early termination of task x; rollback completed (a new task: complete: finished)"},
		{UpdatePaused, Failed, "Swarm's update is paused: update paused due to failure"},
		{"hang", Failed, `did not end within`},
	} {
		t.Run(tc.verdict, func(t *testing.T) {
			t.Parallel()
			cfg := svcLoad(t)
			rt, j := newFakeSwarm(), newRCJournal()
			e := newRCEngine(t, cfg, rt, j, nil)
			if r := svcDeploy(t, e, rt, "web", "sha256:v1"); r.Outcome != Succeeded {
				t.Fatalf("first deploy: %+v", r)
			}
			rt.verdict["sha256:v2"] = tc.verdict
			if tc.verdict == "hang" {
				// The wait is bounded by health.timeout and monitor (per
				// batch, twice) and some slack: 2*2*(2s+1s)+slack is too
				// long for a test.
				d := cfg.Deployment("web")
				d.Health.Timeout, d.Service.Update.Monitor = time.Millisecond, time.Millisecond
				defer func() { d.Health.Timeout, d.Service.Update.Monitor = 2*time.Second, time.Second }()
				if w := e.serviceWait(d); w > time.Second {
					t.Fatalf("serviceWait = %s", w)
				}
			}
			r := svcDeploy(t, e, rt, "web", "sha256:v2")
			if r.Outcome != tc.want || r.Err == nil || !strings.Contains(r.Err.Error(), tc.err) || !errors.Is(r.Err, ErrGate) {
				t.Fatalf("%s: %s %v, want %s %q", tc.verdict, r.Outcome, r.Err, tc.want, tc.err)
			}
			if r.ContainerID != "svc1" || len(rt.removed) != 0 {
				t.Errorf("after %s: container %q, removed %v", tc.verdict, r.ContainerID, rt.removed)
			}
			if tc.verdict != UpdatePaused {
				return
			}
			// Pushed again, the digest Swarm paused at is forced.
			rt.verdict["sha256:v2"] = ""
			if r := svcDeploy(t, e, rt, "web", "sha256:v2"); r.Outcome != Succeeded || !rt.lastSpec().Force {
				t.Errorf("again after a pause: %s %v, force %v", r.Outcome, r.Err, rt.lastSpec().Force)
			}
		})
	}
}

func TestServiceFirstDeployFails(t *testing.T) {
	t.Parallel()
	cfg := svcLoad(t)
	rt, j := newFakeSwarm(), newRCJournal()
	e := newRCEngine(t, cfg, rt, j, nil)
	rt.verdict["sha256:bad"] = "exit"
	r := svcDeploy(t, e, rt, "web", "sha256:bad")
	if r.Outcome != Failed || r.Err == nil || !strings.Contains(r.Err.Error(), "non-zero exit (3)") || !strings.Contains(r.Err.Error(), "the new service was removed") {
		t.Fatalf("first deploy of an image that exits: %s %v", r.Outcome, r.Err)
	}
	if !slices.Equal(rt.removed, []string{"web"}) || r.ContainerID != "" {
		t.Errorf("removed %v, container %q", rt.removed, r.ContainerID)
	}
	if rec := j.get(1); rec.Step != StepRollback || rec.Outcome != Failed {
		t.Errorf("journal: %+v", rec)
	}
}

func TestServiceRefusals(t *testing.T) {
	t.Parallel()
	cfg := svcLoad(t)

	// Not a swarm manager: the deploy fails before it pulls.
	rt := newFakeSwarm()
	rt.manager = errors.New("the engine is not part of a swarm")
	e := newRCEngine(t, cfg, rt, newRCJournal(), nil)
	if r := svcDeploy(t, e, rt, "web", "sha256:v1"); r.Outcome != Failed || !strings.Contains(r.Err.Error(), "not part of a swarm") || rt.count("pull") != 0 {
		t.Errorf("not a manager: %s %v, %d pulls", r.Outcome, r.Err, rt.count("pull"))
	}

	// A service liftoff did not create.
	rt = newFakeSwarm()
	rt.services["web"] = &Service{ID: "theirs", Name: "web", Image: "nginx", Labels: map[string]string{}, Replicas: 1, Running: 1}
	e = newRCEngine(t, cfg, rt, newRCJournal(), nil)
	if r := svcDeploy(t, e, rt, "web", "sha256:v1"); r.Outcome != Failed || !strings.Contains(r.Err.Error(), "not created by liftoff") || len(rt.specs) != 0 {
		t.Errorf("unmanaged service: %s %v", r.Outcome, r.Err)
	}

	// A runtime that cannot run services.
	plain := newFakeRuntime()
	e = newRCEngine(t, cfg, plain, newRCJournal(), nil)
	plain.push("docker.io/acme/web:latest", "sha256:v1")
	if r := e.deploy(t, "web"); r.Outcome != Failed || !strings.Contains(r.Err.Error(), "cannot run Swarm services") {
		t.Errorf("plain runtime: %s %v", r.Outcome, r.Err)
	}
}

func TestCheckServices(t *testing.T) {
	t.Parallel()
	cfg := svcLoad(t, svcRemote)
	rt := newFakeSwarm()
	e := newRCEngine(t, cfg, rt, nil, nil)
	// remote's engine was not started: it cannot be a swarm manager.
	err := e.CheckServices(context.Background())
	if err == nil || !strings.Contains(err.Error(), `deployment remote is a Swarm service, but its engine "other"`) || strings.Contains(err.Error(), "deployment web") {
		t.Errorf("CheckServices = %v", err)
	}
	rt.manager = errors.New("the engine is not part of a swarm (docker swarm init makes it a single-node one)")
	err = e.CheckServices(context.Background())
	if err == nil || !strings.Contains(err.Error(), `deployment web is a Swarm service, but its engine "local" is no swarm manager: the engine is not part of a swarm`) {
		t.Errorf("CheckServices = %v", err)
	}
	// An engine that does not answer is checked at each deploy instead.
	rt.manager = fmt.Errorf("ping: %w", ErrUnavailable)
	if err := e.CheckServices(context.Background()); err == nil || strings.Contains(err.Error(), "deployment web") {
		t.Errorf("CheckServices with the engine away = %v", err)
	}
}

// TestServiceRepair interrupts a deploy of a service before each of its
// steps and reconciles on a new engine: a deploy that reached Swarm ends
// as Swarm's update ends (and its request is settled); one that did not
// failed, and its request stays open to be deployed again. No container
// is touched, even ones that carry the deployment's names.
func TestServiceRepair(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		step    string
		verdict string
		want    Outcome
		open    bool // the request stays open
	}{
		{StepResolve, "", Failed, true},
		{StepPrepare, "", Failed, true},
		{StepService, "", Failed, true}, // the update never reached Swarm
		{StepGate, "", Succeeded, false},
		{StepGate, UpdateRollbackCompleted, RolledBack, false},
		{StepGate, UpdatePaused, Failed, false},
	} {
		t.Run(tc.step+"/"+tc.verdict, func(t *testing.T) {
			t.Parallel()
			cfg := svcLoad(t)
			rt, j := newFakeSwarm(), newRCJournal()
			e := newRCEngine(t, cfg, rt, j, nil)
			if r := svcDeploy(t, e, rt, "web", "sha256:v1"); r.Outcome != Succeeded {
				t.Fatalf("first deploy: %+v", r)
			}
			rt.verdict["sha256:v2"] = tc.verdict
			// Containers under the deployment's names, of the deployment:
			// a container repair would act on them.
			rt.add(Container{Name: "web", Image: "x", Running: false, Labels: map[string]string{LabelManaged: "true", LabelDeployment: "web", LabelDigest: "sha256:v0"}})
			rt.add(Container{Name: "web" + PrevSuffix, Image: "x", Running: true, Labels: map[string]string{LabelManaged: "true", LabelDeployment: "web"}})

			// The crash: a deploy of v2 stopped just before tc.step.
			reached, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			e2 := newRCEngine(t, cfg, rt, j, func(d, s string) {
				if s == tc.step {
					once.Do(func() { close(reached); <-release })
				}
			})
			t.Cleanup(func() { close(release) })
			rt.push("docker.io/acme/web:latest", "sha256:v2")
			if _, err := e2.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web", Tag: "latest", Trigger: "test"}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-reached:
			case <-time.After(10 * time.Second):
				t.Fatalf("the deploy did not reach %s", tc.step)
			}
			un, _ := j.Unfinished(context.Background())
			if len(un) != 1 {
				t.Fatalf("unfinished: %+v", un)
			}
			id, req := un[0].ID, un[0].Request
			// At step gate the update reached Swarm, which goes on with
			// it; at step service it had not.
			cj := j.clone()

			after := newRCEngine(t, cfg, rt, cj, nil)
			before := len(rt.containerCalls())
			if err := after.Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			rec := cj.get(id)
			if rec.Outcome != tc.want || !strings.Contains(rec.Error, "interrupted at step "+tc.step) {
				t.Errorf("interrupted deploy: %s %q, want %s", rec.Outcome, rec.Error, tc.want)
			}
			if got := cj.request(req); (got.outcome == "") != tc.open {
				t.Errorf("request after reconcile: %+v, want open %v", got, tc.open)
			}
			if calls := rt.containerCalls(); len(calls) != before {
				t.Errorf("the repair touched containers: %v", calls[before:])
			}
		})
	}
}
