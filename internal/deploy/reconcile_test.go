package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// rcConfig has one deployment per way of swapping: web is stop-first, api
// start-first, legacy stop-first over a container liftoff did not create.
const rcConfig = `
hooks:
  - source: dockerhub
    token: 0123456789abcdef0123456789abcdef
environments:
  production:
    env: {DEBUG: "False"}
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    stop_timeout: 1s
    health: {min_uptime: 10ms}
  - name: api
    image: acme/api
    tags: [latest]
    environment: production
    strategy: start-first
    container: {networks: [backend], aliases: [api]}
    health: {min_uptime: 10ms}
  - name: legacy
    image: acme/legacy
    tags: [latest]
    environment: production
    container: {replace_unmanaged: true}
    stop_timeout: 1s
    health: {min_uptime: 10ms}
`

func rcLoad(t *testing.T) *deployments.Config {
	t.Helper()
	cfg, err := deployments.Parse([]byte(rcConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// rcJournal is an in-memory Journal that, like the history package, never
// rewrites a finished deploy or a settled request.
type rcJournal struct {
	mu      sync.Mutex
	nextID  int64
	recs    map[int64]Record
	nextReq int64
	reqs    map[int64]*rcRequest
	paused  map[string]Pause
}

type rcRequest struct {
	Request
	outcome Outcome
	why     string
}

var _ Journal = (*rcJournal)(nil)

func newRCJournal() *rcJournal {
	return &rcJournal{recs: map[int64]Record{}, reqs: map[int64]*rcRequest{}}
}

func (j *rcJournal) Accept(ctx context.Context, rs []Request) ([]int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var ids []int64
	for _, r := range rs {
		j.nextReq++
		r.ID = j.nextReq
		j.reqs[r.ID] = &rcRequest{Request: r}
		ids = append(ids, r.ID)
	}
	return ids, nil
}

func (j *rcJournal) Settle(ctx context.Context, ids []int64, o Outcome, why string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, id := range ids {
		if r := j.reqs[id]; r != nil && r.outcome == "" {
			r.outcome, r.why = o, why
		}
	}
	return nil
}

func (j *rcJournal) OpenRequests(ctx context.Context) ([]Request, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []Request
	for _, r := range j.reqs {
		if r.outcome == "" {
			o := r.Request
			for _, d := range j.recs {
				if d.Request == o.ID && d.Outcome != Deferred {
					o.Attempts++
				}
			}
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b Request) int { return int(a.ID - b.ID) })
	return out, nil
}

func (j *rcJournal) Move(ctx context.Context, id int64, state Disposition, actor string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	r := j.reqs[id]
	if r == nil || r.outcome != "" {
		return fmt.Errorf("no open request %d", id)
	}
	r.State = state
	if actor != "" {
		r.Actor = actor
	}
	return nil
}

func (j *rcJournal) Succeeded(ctx context.Context, deployment, digest string) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range j.recs {
		if r.Deployment == deployment && r.Digest == digest && (r.Outcome == Succeeded || r.Outcome == Unchanged) {
			return true, nil
		}
	}
	return false, nil
}

func (j *rcJournal) LastSucceededAt(ctx context.Context, deployment string) (time.Time, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var last time.Time
	for _, r := range j.recs {
		if r.Deployment == deployment && r.Outcome == Succeeded && r.Ended.After(last) {
			last = r.Ended
		}
	}
	return last, nil
}

func (j *rcJournal) Paused(ctx context.Context) ([]Pause, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []Pause
	for _, p := range j.paused {
		out = append(out, p)
	}
	return out, nil
}

func (j *rcJournal) SetPaused(ctx context.Context, p Pause) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.paused == nil {
		j.paused = map[string]Pause{}
	}
	if p.Paused {
		j.paused[p.Deployment] = p
	} else {
		delete(j.paused, p.Deployment)
	}
	return nil
}

// request returns the accepted request id as the journal keeps it.
func (j *rcJournal) request(id int64) rcRequest {
	j.mu.Lock()
	defer j.mu.Unlock()
	if r := j.reqs[id]; r != nil {
		return *r
	}
	return rcRequest{}
}

func (j *rcJournal) Begin(ctx context.Context, r Record) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.nextID++
	r.ID, r.Outcome, r.Error, r.Ended, r.Phases = j.nextID, "", "", time.Time{}, nil
	j.recs[r.ID] = r
	return r.ID, nil
}

func (j *rcJournal) Step(ctx context.Context, id int64, r Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	old, ok := j.recs[id]
	switch {
	case !ok:
		return fmt.Errorf("no deploy %d", id)
	case old.Outcome != "":
		return fmt.Errorf("deploy %d already finished", id)
	}
	old.Step, old.Digest, old.Previous, old.PrevID, old.NewID = r.Step, r.Digest, r.Previous, r.PrevID, r.NewID
	if r.Revisions != nil {
		old.Revisions = maps.Clone(r.Revisions)
	}
	old.VouchedBy, old.VouchedRevision = max(old.VouchedBy, r.VouchedBy), cmp.Or(r.VouchedRevision, old.VouchedRevision)
	j.recs[id] = old
	return nil
}

func (j *rcJournal) Finish(ctx context.Context, id int64, r Record, settle bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	old, ok := j.recs[id]
	switch {
	case !ok:
		return fmt.Errorf("no deploy %d", id)
	case old.Outcome != "":
		return fmt.Errorf("deploy %d already finished", id)
	case r.Outcome == "":
		return fmt.Errorf("deploy %d: no outcome", id)
	}
	old.Outcome, old.Error, old.Ended, old.Phases = r.Outcome, r.Error, r.Ended, r.Phases
	if r.Revisions != nil {
		old.Revisions = maps.Clone(r.Revisions)
	}
	old.VouchedBy, old.VouchedRevision = max(old.VouchedBy, r.VouchedBy), cmp.Or(r.VouchedRevision, old.VouchedRevision)
	for _, kv := range []struct {
		dst *string
		v   string
	}{
		{&old.Digest, r.Digest}, {&old.Previous, r.Previous}, {&old.PrevID, r.PrevID}, {&old.NewID, r.NewID},
		{&old.ReleaseOutput, r.ReleaseOutput},
		{&old.BackupOutput, r.BackupOutput},
	} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
	j.recs[id] = old
	if req := j.reqs[old.Request]; settle && req != nil && req.outcome == "" {
		req.outcome = r.Outcome
	}
	return nil
}

func (j *rcJournal) Unfinished(ctx context.Context) ([]Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []Record
	for _, r := range j.recs {
		if r.Outcome == "" {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return int(a.ID - b.ID) })
	return out, nil
}

// list returns the newest deploys of a deployment ("" for all), newest
// first, at most limit.
func (j *rcJournal) list(ctx context.Context, deployment string, limit int) ([]Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []Record
	for _, r := range j.recs {
		if deployment == "" || r.Deployment == deployment {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return int(b.ID - a.ID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (j *rcJournal) get(id int64) Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.recs[id]
}

func (j *rcJournal) clone() *rcJournal {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := &rcJournal{nextID: j.nextID, recs: make(map[int64]Record, len(j.recs)), nextReq: j.nextReq, reqs: make(map[int64]*rcRequest, len(j.reqs))}
	for id, r := range j.recs {
		c.recs[id] = r
	}
	for id, r := range j.reqs {
		cp := *r
		c.reqs[id] = &cp
	}
	c.paused = map[string]Pause{}
	for k, p := range j.paused {
		c.paused[k] = p
	}
	return c
}

// rcClone copies the runtime's state (not its hooks): what a process
// started after a crash finds in the engine.
func rcClone(f *fakeRuntime) *fakeRuntime {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := newFakeRuntime()
	c.nextID = f.nextID
	for k, v := range f.tags {
		c.tags[k] = v
	}
	for k, v := range f.imageEnv {
		c.imageEnv[k] = v
	}
	for k, v := range f.exitOnStart {
		c.exitOnStart[k] = v
	}
	for id, ct := range f.containers {
		cp := *ct
		cp.Labels = make(map[string]string, len(ct.Labels))
		for k, v := range ct.Labels {
			cp.Labels[k] = v
		}
		c.containers[id] = &cp
	}
	for id, env := range f.env {
		c.env[id] = env
	}
	return c
}

// rcEngine is an engine over rt and j (j may be nil: no journal).
type rcEngine struct {
	*Engine
	results chan Result
}

func newRCEngine(t *testing.T, cfg *deployments.Config, rt Runtime, j Journal, before func(deployment, step string)) *rcEngine {
	t.Helper()
	e := &rcEngine{results: make(chan Result, 16)}
	opts := Options{
		Runtime:      rt,
		Config:       func() *deployments.Config { return cfg },
		Logger:       zerolog.Nop(),
		Registerer:   prometheus.NewRegistry(),
		OnDone:       func(r Result) { e.results <- r },
		BeforeStep:   before,
		Retries:      2,
		RetryBackoff: time.Millisecond,
		waits:        testWaits,
	}
	if j != nil { // a nil *rcJournal in the interface would not be "no journal"
		opts.Journal = j
	}
	e.Engine = New(opts)
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func (e *rcEngine) deploy(t *testing.T, deployment string) Result {
	t.Helper()
	if _, err := e.Enqueue(context.Background(), Request{Deployment: deployment, Image: "docker.io/acme/" + deployment, Tag: "latest", Trigger: "test"}); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	select {
	case r := <-e.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no deploy finished within 10s")
		return Result{}
	}
}

// rcCrash deploys digest to deployment over rt and j and stops the deploy
// just before it takes step, as a SIGKILL there would: the step is
// journaled, not taken. It returns copies of the runtime and the journal
// as the crash left them and the id of the interrupted deploy. The
// deploy's goroutine stays parked until the test ends.
func rcCrash(t *testing.T, cfg *deployments.Config, rt *fakeRuntime, j *rcJournal, deployment, digest, step string) (*fakeRuntime, *rcJournal, int64) {
	t.Helper()
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	e := newRCEngine(t, cfg, rt, j, func(d, s string) {
		if d == deployment && s == step && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the engine's Close
	rt.push("docker.io/acme/"+deployment+":latest", digest)
	armed.Store(true)
	if _, err := e.Enqueue(context.Background(), Request{Deployment: deployment, Image: "docker.io/acme/" + deployment, Tag: "latest", Trigger: "test"}); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	select {
	case <-reached:
	case r := <-e.results:
		t.Fatalf("the deploy ended (%s: %v) without reaching step %s", r.Outcome, r.Err, step)
	case <-time.After(10 * time.Second):
		t.Fatalf("the deploy did not reach step %s within 10s", step)
	}
	crt, cj := rcClone(rt), j.clone()
	un, _ := cj.Unfinished(context.Background())
	if len(un) != 1 || un[0].Step != step {
		t.Fatalf("journal at the crash: unfinished %+v, want one deploy at step %s", un, step)
	}
	return crt, cj, un[0].ID
}

// rcNames returns the sorted names of all containers, with "(running)"
// after the running ones.
func rcNames(rt *fakeRuntime) []string {
	var out []string
	for _, c := range rt.all() {
		n := c.Name
		if c.Running {
			n += "(running)"
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// rcCheck asserts that only name runs, as container want (by id), that
// nothing else of the deployment is left, and that the interrupted deploy
// id is finished with outcome o, its error naming step.
func rcCheck(t *testing.T, rt *fakeRuntime, j *rcJournal, name, want string, id int64, o Outcome, step string) {
	t.Helper()
	got := rcNames(rt)
	if want == "" {
		if len(got) != 0 {
			t.Errorf("containers after reconcile: %v, want none", got)
		}
	} else {
		if !slices.Equal(got, []string{name + "(running)"}) {
			t.Errorf("containers after reconcile: %v, want only %s running", got, name)
		}
		if c, ok := rt.get(name); !ok || c.ID != want {
			t.Errorf("%s is container %q, want %q", name, c.ID, want)
		}
	}
	if j == nil {
		return
	}
	r := j.get(id)
	if r.Outcome != o || !strings.Contains(r.Error, "interrupted at step "+step) || r.Ended.IsZero() {
		t.Errorf("journal: deploy %d outcome %q error %q ended %v; want %s, \"interrupted at step %s\"", id, r.Outcome, r.Error, r.Ended, o, step)
	}
	if un, _ := j.Unfinished(context.Background()); len(un) != 0 {
		t.Errorf("still unfinished after reconcile: %+v", un)
	}
}

// TestReconcileAfterCrashAtEveryStep interrupts a deploy just before each
// journaled step of each strategy, then starts a new engine over what the
// crash left (containers and journal) and reconciles: the new container
// runs iff it had passed its gate (step cleanup), else the previous one,
// and nothing else is left.
func TestReconcileAfterCrashAtEveryStep(t *testing.T) {
	stopFirst := []string{StepResolve, StepPull, StepPrepare, StepRename, StepCreate, StepStop, StepStart, StepGate, StepCleanup, StepRollback}
	startFirst := []string{StepResolve, StepPull, StepPrepare, StepCreate, StepStart, StepGate, StepCleanup, StepRollback}
	for _, tc := range []struct {
		deployment string
		steps      []string
		unmanaged  bool // the previous container was not created by liftoff
	}{
		{"web", stopFirst, false},
		{"api", startFirst, false},
		{"legacy", stopFirst, true},
	} {
		for _, step := range tc.steps {
			t.Run(tc.deployment+"/"+step, func(t *testing.T) {
				t.Parallel()
				cfg := rcLoad(t)
				rt, j := newRCJournalRuntime()
				var oldID string
				if tc.unmanaged {
					rt.add(Container{Name: tc.deployment, Running: true, Status: "running", Image: "legacy:old"})
					oldID = rt.byName(tc.deployment).ID
				} else {
					rt.push("docker.io/acme/"+tc.deployment+":latest", "sha256:v1")
					first := newRCEngine(t, cfg, rt, j, nil).deploy(t, tc.deployment)
					if first.Outcome != Succeeded {
						t.Fatalf("first deploy: %s %v", first.Outcome, first.Err)
					}
					oldID = first.ContainerID
				}
				digest := "sha256:v2"
				if step == StepRollback {
					digest = "sha256:v2-exits" // fails its gate: the deploy rolls back
					rt.exitOnStart[digest] = 3
				}
				crt, cj, id := rcCrash(t, cfg, rt, j, tc.deployment, digest, step)
				t.Logf("left by the crash: %v", rcNames(crt))

				e := newRCEngine(t, cfg, crt, cj, nil)
				if err := e.Reconcile(context.Background()); err != nil {
					t.Fatalf("reconcile: %v", err)
				}
				switch step {
				case StepResolve, StepPull, StepPrepare:
					rcCheck(t, crt, cj, tc.deployment, oldID, id, Failed, step)
				case StepCleanup:
					rcCheck(t, crt, cj, tc.deployment, cj.get(id).NewID, id, Succeeded, step)
					if c, _ := crt.get(tc.deployment); c.Labels[LabelDigest] != digest {
						t.Errorf("running digest %s, want %s", c.Labels[LabelDigest], digest)
					}
				default:
					rcCheck(t, crt, cj, tc.deployment, oldID, id, RolledBack, step)
				}

				// Reconciling again changes nothing, and the next deploy works.
				changes := func() int {
					return crt.count("create") + crt.count("remove") + crt.count("rename") + crt.count("start") + crt.count("stop")
				}
				n := changes()
				if err := e.Reconcile(context.Background()); err != nil {
					t.Fatalf("second reconcile: %v", err)
				}
				if changes() != n {
					t.Errorf("a second reconcile changed containers: %v", crt.calls)
				}
				crt.push("docker.io/acme/"+tc.deployment+":latest", "sha256:v3")
				if r := e.deploy(t, tc.deployment); r.Outcome != Succeeded {
					t.Fatalf("deploy after reconcile: %s %v", r.Outcome, r.Err)
				}
				if got := rcNames(crt); !slices.Equal(got, []string{tc.deployment + "(running)"}) {
					t.Errorf("after the next deploy: %v", got)
				}
			})
		}
	}
}

func newRCJournalRuntime() (*fakeRuntime, *rcJournal) { return newFakeRuntime(), newRCJournal() }

// TestReconcileAfterCrashInFirstDeploy: with nothing to go back to, an
// interrupted first deploy that had not passed its gate is removed.
func TestReconcileAfterCrashInFirstDeploy(t *testing.T) {
	for _, step := range []string{StepResolve, StepPull, StepPrepare, StepCreate, StepStart, StepGate, StepRollback} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			cfg := rcLoad(t)
			rt, j := newRCJournalRuntime()
			digest := "sha256:v1"
			if step == StepRollback {
				digest = "sha256:v1-exits"
				rt.exitOnStart[digest] = 3
			}
			crt, cj, id := rcCrash(t, cfg, rt, j, "web", digest, step)
			if err := newRCEngine(t, cfg, crt, cj, nil).Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			rcCheck(t, crt, cj, "web", "", id, Failed, step)
		})
	}
}

// TestDeployRepairsItsInterruptedPredecessor: a deploy that finds an
// unfinished one of its deployment (no Reconcile ran) repairs it first.
func TestDeployRepairsItsInterruptedPredecessor(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	rt.push("docker.io/acme/web:latest", "sha256:v1")
	if r := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web"); r.Outcome != Succeeded {
		t.Fatalf("first deploy: %s %v", r.Outcome, r.Err)
	}
	crt, cj, id := rcCrash(t, cfg, rt, j, "web", "sha256:v2", StepStart)
	r := newRCEngine(t, cfg, crt, cj, nil).deploy(t, "web")
	if r.Outcome != Succeeded || r.Digest != "sha256:v2" {
		t.Fatalf("deploy after the crash: %s %v", r.Outcome, r.Err)
	}
	rcCheck(t, crt, cj, "web", r.ContainerID, id, RolledBack, StepStart)
}

// TestReconcileWithoutJournal judges leftovers by their names alone.
func TestReconcileWithoutJournal(t *testing.T) {
	managed := func(name, digest string, running bool) Container {
		c := Container{Name: name, Status: "exited", Labels: map[string]string{
			LabelManaged: "true", LabelDeployment: strings.TrimSuffix(strings.TrimSuffix(name, PrevSuffix), NextSuffix), LabelDigest: digest}}
		if running {
			c.Running, c.Status = true, "running"
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		state []Container
		want  string // digest of the container that must run as the deployment; "" none
	}{
		{"stop-first: new runs, previous aside", []Container{managed("web", "new", true), managed("web"+PrevSuffix, "old", false)}, "new"},
		{"stop-first: new created, not started", []Container{managed("web", "new", false), managed("web"+PrevSuffix, "old", false)}, "old"},
		{"stop-first: only the previous, aside", []Container{managed("web"+PrevSuffix, "old", false)}, "old"},
		{"stop-first: previous runs aside, new created", []Container{managed("web", "new", false), managed("web"+PrevSuffix, "old", true)}, "old"},
		{"stop-first: only the previous, running aside", []Container{managed("web"+PrevSuffix, "old", true)}, "old"},
		{"start-first: new beside the old", []Container{managed("api", "old", true), managed("api"+NextSuffix, "new", true)}, "old"},
		{"start-first: new created beside the old", []Container{managed("api", "old", true), managed("api"+NextSuffix, "new", false)}, "old"},
		// The old one is gone: only the swap's last rename was missing.
		{"start-first: old removed, new not renamed", []Container{managed("api"+NextSuffix, "new", true)}, "new"},
		{"start-first: old stopped, new not renamed", []Container{managed("api", "old", false), managed("api"+NextSuffix, "new", true)}, "new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rcLoad(t)
			rt := newFakeRuntime()
			for _, c := range tc.state {
				rt.add(c)
			}
			if err := newRCEngine(t, cfg, rt, nil, nil).Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			name := strings.TrimSuffix(strings.TrimSuffix(tc.state[0].Name, PrevSuffix), NextSuffix)
			got := rcNames(rt)
			if !slices.Equal(got, []string{name + "(running)"}) {
				t.Fatalf("containers after reconcile: %v, want only %s running", got, name)
			}
			if c, _ := rt.get(name); c.Labels[LabelDigest] != tc.want {
				t.Errorf("%s runs digest %q, want %q", name, c.Labels[LabelDigest], tc.want)
			}
		})
	}
}

// TestReconcileLeavesUnmanagedAlone: containers liftoff did not create are
// never touched, whatever their names.
func TestReconcileLeavesUnmanagedAlone(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	rt.add(Container{Name: "web", Running: true, Status: "running", Labels: map[string]string{LabelManaged: "true", LabelDeployment: "web", LabelDigest: "sha256:v1"}})
	rt.add(Container{Name: "web" + PrevSuffix, Status: "exited"})
	rt.add(Container{Name: "web" + NextSuffix, Running: true, Status: "running"})
	rt.add(Container{Name: "api" + NextSuffix, Status: "created"}) // no journal entry for api at all
	before := rcNames(rt)
	// An interrupted deploy of web whose previous container is not these.
	id, _ := j.Begin(context.Background(), Record{Deployment: "web", Tag: "latest"})
	j.Step(context.Background(), id, Record{Step: StepCreate, Digest: "sha256:v2", PrevID: "elsewhere"})

	if err := newRCEngine(t, cfg, rt, j, nil).Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if got := rcNames(rt); !slices.Equal(got, before) {
		t.Errorf("containers %v, want them as they were: %v", got, before)
	}
	for _, op := range []string{"stop", "remove", "rename"} {
		if n := rt.count(op); n != 0 {
			t.Errorf("%s called %d times: %v", op, n, rt.calls)
		}
	}
	if r := j.get(id); r.Outcome == "" || !strings.Contains(r.Error, "interrupted at step create") {
		t.Errorf("journal: %+v", r)
	}
}

// TestReconcileClosesDeploysOfRemovedDeployments: a deployment no longer
// configured has its interrupted deploy closed; its containers stay.
func TestReconcileClosesDeploysOfRemovedDeployments(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	lbl := map[string]string{LabelManaged: "true", LabelDeployment: "gone"}
	rt.add(Container{Name: "gone", Status: "created", Labels: lbl})
	rt.add(Container{Name: "gone" + PrevSuffix, Status: "exited", Labels: lbl})
	prevID := rt.byName("gone" + PrevSuffix).ID
	id, _ := j.Begin(context.Background(), Record{Deployment: "gone", Tag: "latest"})
	j.Step(context.Background(), id, Record{Step: StepStart, Digest: "sha256:v2", PrevID: prevID, NewID: rt.byName("gone").ID})
	before := rcNames(rt)

	if err := newRCEngine(t, cfg, rt, j, nil).Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if got := rcNames(rt); !slices.Equal(got, before) {
		t.Errorf("containers %v, want them as they were: %v", got, before)
	}
	r := j.get(id)
	if r.Outcome != Failed || !strings.Contains(r.Error, "interrupted at step start") || !strings.Contains(r.Error, "no longer configured") {
		t.Errorf("journal: %+v", r)
	}
}

// TestReconcileCrashBeforeNewIDJournaled: the engine created the new
// container but the process died before the next step journaled its id.
func TestReconcileCrashBeforeNewIDJournaled(t *testing.T) {
	for _, deployment := range []string{"web", "api"} {
		t.Run(deployment, func(t *testing.T) {
			cfg := rcLoad(t)
			rt, j := newRCJournalRuntime()
			rt.push("docker.io/acme/"+deployment+":latest", "sha256:v1")
			old := newRCEngine(t, cfg, rt, j, nil).deploy(t, deployment)
			crt, cj, id := rcCrash(t, cfg, rt, j, deployment, "sha256:v2", StepCreate)
			name := deployment
			if deployment == "api" {
				name += NextSuffix
			}
			if _, err := crt.Create(context.Background(), Spec{Name: name, Image: "x@sha256:v2", Labels: map[string]string{
				LabelManaged: "true", LabelDeployment: deployment, LabelDigest: "sha256:v2"}}); err != nil {
				t.Fatal(err)
			}
			if err := newRCEngine(t, cfg, crt, cj, nil).Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			rcCheck(t, crt, cj, deployment, old.ContainerID, id, RolledBack, StepCreate)
		})
	}
}

// TestReconcileStartFirstCleanupHalfDone: a crash in the middle of
// start-first's last step (the old container already stopped, or removed)
// is finished forward: the new container had passed its gate.
func TestReconcileStartFirstCleanupHalfDone(t *testing.T) {
	for _, done := range []string{"stopped", "removed"} {
		t.Run(done, func(t *testing.T) {
			cfg := rcLoad(t)
			rt, j := newRCJournalRuntime()
			rt.push("docker.io/acme/api:latest", "sha256:v1")
			old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "api")
			crt, cj, id := rcCrash(t, cfg, rt, j, "api", "sha256:v2", StepCleanup)
			crt.Stop(context.Background(), old.ContainerID, 0)
			if done == "removed" {
				crt.Remove(context.Background(), old.ContainerID)
			}
			if err := newRCEngine(t, cfg, crt, cj, nil).Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			rcCheck(t, crt, cj, "api", cj.get(id).NewID, id, Succeeded, StepCleanup)
		})
	}
}

// rcOutage is a runtime whose engine can be made unreachable.
type rcOutage struct {
	*fakeRuntime
	down atomic.Bool
}

func newRCOutage() *rcOutage {
	o := &rcOutage{fakeRuntime: newFakeRuntime()}
	o.fail = func(op, arg string) error {
		if o.down.Load() {
			return fmt.Errorf("%s %s: connection refused: %w", op, arg, ErrUnavailable)
		}
		return nil
	}
	return o
}

// TestReconcileAfterLongEngineOutage: the engine goes away in the middle of a
// swap and stays away past every retry, the rollback's too. The deploy
// fails; once the engine answers again, Watch's reconcile must leave the
// deployment running, never with no container.
func TestReconcileAfterLongEngineOutage(t *testing.T) {
	for _, tc := range []struct {
		deployment, step string
		want             Outcome // of the interrupted deploy once reconciled
	}{
		{"web", StepRename, RolledBack}, // old one runs, not yet renamed
		{"web", StepCreate, RolledBack}, // old one runs, aside
		{"web", StepStop, RolledBack},   // new one created, old one runs aside
		{"web", StepStart, RolledBack},  // new one created, old one stopped
		{"web", StepGate, RolledBack},   // new one running
		{"api", StepStart, RolledBack},  // new one created beside
		{"api", StepCleanup, Succeeded}, // new one passed its gate
	} {
		t.Run(tc.deployment+"/"+tc.step, func(t *testing.T) {
			t.Parallel()
			cfg := rcLoad(t)
			rt, j := newRCOutage(), newRCJournal()
			var armed atomic.Bool
			e := newRCEngine(t, cfg, rt, j, func(d, s string) {
				if s == tc.step && armed.CompareAndSwap(true, false) {
					rt.down.Store(true)
				}
			})
			rt.push("docker.io/acme/"+tc.deployment+":latest", "sha256:v1")
			old := e.deploy(t, tc.deployment)
			if old.Outcome != Succeeded {
				t.Fatalf("first deploy: %s %v", old.Outcome, old.Err)
			}
			rt.push("docker.io/acme/"+tc.deployment+":latest", "sha256:v2")
			armed.Store(true)
			r := e.deploy(t, tc.deployment)
			if r.Outcome != Failed || !errors.Is(r.Err, ErrUnavailable) {
				t.Fatalf("deploy with the engine away: %s %v", r.Outcome, r.Err)
			}
			t.Logf("left by the outage: %v (%v)", rcNames(rt.fakeRuntime), r.Err)

			// Watch sees the engine away (it pinged and failed), then back.
			ctx, cancel := context.WithCancel(context.Background())
			watched := make(chan struct{})
			pings := rt.count("ping")
			go func() { e.Watch(ctx, 5*time.Millisecond); close(watched) }()
			waitFor(t, "Watch pings the engine while it is away", func() bool { return rt.count("ping") > pings })
			rt.down.Store(false)
			// Reconcile repairs; then the push, accepted and never
			// deployed, is resumed unless the repair finished it.
			waitFor(t, "the push deployed after the engine came back", func() bool {
				un, _ := j.Unfinished(context.Background())
				open, _ := j.OpenRequests(context.Background())
				c, _ := rt.get(tc.deployment)
				return len(un) == 0 && len(open) == 0 && c.Labels[LabelDigest] == "sha256:v2" &&
					slices.Equal(rcNames(rt.fakeRuntime), []string{tc.deployment + "(running)"})
			})
			cancel()
			<-watched
			recs, _ := j.list(context.Background(), tc.deployment, 3)
			interrupted := recs[0]
			if tc.want == RolledBack {
				// the interrupted deploy, then its resumed one
				if len(recs) != 3 || recs[0].Trigger != TriggerResume || recs[0].Outcome != Succeeded || recs[0].Delivery != recs[1].Delivery {
					t.Errorf("journal: %+v, want the interrupted deploy resumed", recs)
				}
				interrupted = recs[1]
			} else if c, _ := rt.get(tc.deployment); c.ID != r.ContainerID {
				t.Errorf("%s is %s, want the new container %s, finished by reconcile", tc.deployment, c.ID, r.ContainerID)
			}
			if interrupted.Outcome != tc.want || !strings.Contains(interrupted.Error, "interrupted at step") {
				t.Errorf("journal: the interrupted deploy %+v, want outcome %s", interrupted, tc.want)
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
