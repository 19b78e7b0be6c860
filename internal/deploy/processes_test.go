package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// appConfig has an app of two processes per way of swapping: shop is
// stop-first (worker ×2, then web), mall start-first.
const appConfig = `
hooks:
  - source: dockerhub
    token: 0123456789abcdef0123456789abcdef
environments:
  production:
    env: {DEBUG: "False"}
deployments:
  - name: shop
    image: acme/shop
    tags: [latest]
    environment: production
    stop_timeout: 1s
    health: {min_uptime: 10ms}
    processes:
      web: {command: [web]}
      worker: {command: [worker], scale: 2}
  - name: mall
    image: acme/mall
    tags: [latest]
    environment: production
    strategy: start-first
    container: {networks: [backend]}
    health: {min_uptime: 10ms}
    processes:
      web: {command: [web], container: {aliases: [mall]}}
      worker: {command: [worker]}
`

func appLoad(t *testing.T) *deployments.Config {
	t.Helper()
	cfg, err := deployments.Parse([]byte(appConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// appUnits are the containers of app, sorted.
func appUnits(app string) []string {
	if app == "shop" {
		return []string{"shop-web-1", "shop-worker-1", "shop-worker-2"}
	}
	return []string{"mall-web-1", "mall-worker-1"}
}

// appState returns the digest each unit of app runs, by container name
// ("" for a unit without a running container), and asserts that nothing
// else of the app is left.
func appState(t *testing.T, rt *fakeRuntime, app string) map[string]string {
	t.Helper()
	var want []string
	for _, u := range appUnits(app) {
		want = append(want, u+"(running)")
	}
	if got := rcNames(rt); !slices.Equal(got, want) {
		t.Errorf("containers %v, want exactly %v", got, want)
	}
	m := map[string]string{}
	for _, u := range appUnits(app) {
		if c, ok := rt.get(u); ok && c.Running {
			m[u] = c.Labels[LabelDigest]
		}
	}
	return m
}

func appIDs(rt *fakeRuntime, app string) map[string]string {
	m := map[string]string{}
	for _, u := range appUnits(app) {
		c, _ := rt.get(u)
		m[u] = c.ID
	}
	return m
}

func allOn(m map[string]string, digest string) bool {
	for _, d := range m {
		if d != digest {
			return false
		}
	}
	return len(m) > 0
}

func TestAppDeploy(t *testing.T) {
	for _, app := range []string{"shop", "mall"} {
		t.Run(app, func(t *testing.T) {
			t.Parallel()
			cfg := appLoad(t)
			rt, j := newRCJournalRuntime()
			e := newRCEngine(t, cfg, rt, j, nil)
			rt.push("docker.io/acme/"+app+":latest", "sha256:v1")
			if r := e.deploy(t, app); r.Outcome != Succeeded {
				t.Fatalf("v1: %s %v", r.Outcome, r.Err)
			}
			if m := appState(t, rt, app); !allOn(m, "sha256:v1") {
				t.Fatalf("after v1: %v", m)
			}
			c, _ := rt.get(app + "-worker-1")
			if c.Labels[LabelApp] != app || c.Labels[LabelProcess] != "worker" || c.Labels[LabelReplica] != "1" || c.Labels[LabelDeployment] != app+"/worker.1" {
				t.Errorf("worker-1's labels %v", c.Labels)
			}
			if app == "mall" && !slices.Equal(rt.aliases[appIDs(rt, app)["mall-web-1"]], []string{"mall"}) {
				t.Errorf("mall's web has aliases %v, want its own", rt.aliases[appIDs(rt, app)["mall-web-1"]])
			}
			v1 := appIDs(rt, app)

			// v2: every process swapped, web last.
			rt.mu.Lock()
			rt.calls = nil
			rt.mu.Unlock()
			rt.push("docker.io/acme/"+app+":latest", "sha256:v2")
			if r := e.deploy(t, app); r.Outcome != Succeeded || r.Previous != "sha256:v1" {
				t.Fatalf("v2: %s %v (previous %s)", r.Outcome, r.Err, r.Previous)
			}
			if m := appState(t, rt, app); !allOn(m, "sha256:v2") {
				t.Fatalf("after v2: %v", m)
			}
			var created []string
			for _, c := range rt.calls {
				if n, ok := strings.CutPrefix(c, "create "); ok {
					created = append(created, strings.TrimSuffix(n, NextSuffix))
				}
			}
			if want := appUnits(app); !slices.Equal(created, append(want[1:], want[0])) {
				t.Errorf("created %v, want the workers, then web", created)
			}
			v2 := appIDs(rt, app)

			// v3: web fails to be created; the workers go back to v2, the
			// very containers.
			rt.push("docker.io/acme/"+app+":latest", "sha256:v3")
			rt.fail = func(op, arg string) error {
				if op == "create" && strings.HasPrefix(arg, app+"-web-1") {
					return errors.New("no room")
				}
				return nil
			}
			r := e.deploy(t, app)
			rt.fail = nil
			if r.Outcome != RolledBack || r.Err == nil || !strings.Contains(r.Err.Error(), "process web") || !strings.Contains(r.Err.Error(), "back on sha256:v2") {
				t.Fatalf("v3: %s %v, want rolled_back naming web", r.Outcome, r.Err)
			}
			if m := appState(t, rt, app); !allOn(m, "sha256:v2") || !maps.Equal(appIDs(rt, app), v2) {
				t.Errorf("after v3: %v %v, want v2's containers %v", m, appIDs(rt, app), v2)
			}
			if maps.Equal(v1, v2) {
				t.Error("v2 did not replace v1's containers")
			}
			for _, u := range []string{app + "/worker.1", app + "/web.1"} {
				recs, _ := j.list(context.Background(), u, 1)
				if len(recs) != 1 || recs[0].Outcome != RolledBack && !(u == app+"/web.1" && recs[0].Outcome == Failed) {
					t.Errorf("%s's newest record: %+v", u, recs)
				}
			}
			if un, _ := j.Unfinished(context.Background()); len(un) != 0 {
				t.Errorf("unfinished: %+v", un)
			}

			// v2 again: unchanged.
			rt.push("docker.io/acme/"+app+":latest", "sha256:v2")
			if r := e.deploy(t, app); r.Outcome != Unchanged {
				t.Errorf("v2 again: %s %v", r.Outcome, r.Err)
			}
		})
	}
}

// appCrash deploys digest to app and stops the deploy just before who
// (the app, or one of its units: "shop/web.1") takes step, as a SIGKILL
// there would. It returns copies of the runtime and the journal as the
// crash left them. fail, if set, is the runtime's fail hook meanwhile.
func appCrash(t *testing.T, cfg *deployments.Config, rt *fakeRuntime, j *rcJournal, app, digest, who, step string) (*fakeRuntime, *rcJournal) {
	t.Helper()
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	e := newRCEngine(t, cfg, rt, j, func(d, s string) {
		if d == who && s == step && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
	})
	t.Cleanup(func() { close(release) })
	rt.push("docker.io/acme/"+app+":latest", digest)
	armed.Store(true)
	if _, err := e.Enqueue(context.Background(), Request{Deployment: app, Image: "docker.io/acme/" + app, Tag: "latest", Trigger: "test"}); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	select {
	case <-reached:
	case r := <-e.results:
		t.Fatalf("the deploy ended (%s: %v) without reaching %s's step %s", r.Outcome, r.Err, who, step)
	case <-time.After(10 * time.Second):
		t.Fatalf("the deploy did not reach %s's step %s within 10s", who, step)
	}
	return rcClone(rt), j.clone()
}

// TestAppReconcileAfterCrashAtEveryStep interrupts a deploy of an app just
// before each journaled step of the app and of its processes, then starts
// a new engine over what the crash left and reconciles: every process runs
// the new digest iff the app had passed its commit point (its step
// cleanup), else every one runs its previous container; nothing else is
// left, the journal holds nothing unfinished, and the next deploy works.
func TestAppReconcileAfterCrashAtEveryStep(t *testing.T) {
	type crash struct {
		who, step string
		fail      bool // the web cannot be created: the deploy rolls back
	}
	var cases []crash
	for _, app := range []string{"shop", "mall"} {
		for _, s := range []string{StepResolve, StepPull, StepPrepare, StepProcesses, StepCleanup} {
			cases = append(cases, crash{who: app, step: s})
		}
		unit := []string{StepRename, StepCreate, StepStop, StepStart, StepGate, StepCleanup}
		if app == "mall" {
			unit = []string{StepCreate, StepStart, StepGate, StepCleanup}
		}
		for _, u := range []string{app + "/worker.1", app + "/web.1"} {
			for _, s := range unit {
				cases = append(cases, crash{who: u, step: s})
			}
		}
		cases = append(cases, crash{who: app, step: StepRollback, fail: true}, crash{who: app + "/worker.1", step: StepRollback, fail: true})
		if app == "mall" {
			cases = append(cases, crash{who: app + "/web.1", step: StepPublish})
		}
	}
	for _, tc := range cases {
		name := tc.who + "/" + tc.step
		if tc.fail {
			name += "/web-fails"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app, _, _ := strings.Cut(tc.who, "/")
			cfg := appLoad(t)
			rt, j := newRCJournalRuntime()
			rt.push("docker.io/acme/"+app+":latest", "sha256:v1")
			if r := newRCEngine(t, cfg, rt, j, nil).deploy(t, app); r.Outcome != Succeeded {
				t.Fatalf("v1: %s %v", r.Outcome, r.Err)
			}
			old := appIDs(rt, app)
			if tc.fail {
				rt.fail = func(op, arg string) error {
					if op == "create" && strings.HasPrefix(arg, app+"-web-1") {
						return errors.New("no room")
					}
					return nil
				}
			}
			crt, cj := appCrash(t, cfg, rt, j, app, "sha256:v2", tc.who, tc.step)
			t.Logf("left by the crash: %v", rcNames(crt))

			e := newRCEngine(t, cfg, crt, cj, nil)
			if err := e.Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			committed := tc.step == StepCleanup
			m := appState(t, crt, app)
			switch {
			case committed && !allOn(m, "sha256:v2"):
				t.Errorf("after reconcile %v, want every process on v2 (past the commit point)", m)
			case !committed && (!allOn(m, "sha256:v1") || !maps.Equal(appIDs(crt, app), old)):
				t.Errorf("after reconcile %v %v, want every process on v1's containers %v", m, appIDs(crt, app), old)
			}
			if un, _ := cj.Unfinished(context.Background()); len(un) != 0 {
				t.Errorf("still unfinished after reconcile: %+v", un)
			}
			recs, _ := cj.list(context.Background(), app, 1)
			want := RolledBack
			switch {
			case committed:
				want = Succeeded
			case tc.who == app && slices.Contains([]string{StepResolve, StepPull, StepPrepare}, tc.step):
				want = Failed
			}
			if len(recs) != 1 || recs[0].Outcome != want || !strings.Contains(recs[0].Error, "interrupted at step") {
				t.Errorf("the app's interrupted deploy: %+v, want %s", recs, want)
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
			crt.push("docker.io/acme/"+app+":latest", "sha256:v3")
			if r := e.deploy(t, app); r.Outcome != Succeeded {
				t.Fatalf("deploy after reconcile: %s %v", r.Outcome, r.Err)
			}
			if m := appState(t, crt, app); !allOn(m, "sha256:v3") {
				t.Errorf("after the next deploy: %v", m)
			}
		})
	}
}

// TestAppRetiresProcessesNoLongerConfigured: after a lower scale and a
// process removed, the next deploy that succeeds removes their containers,
// the set-aside ones too; a failed one leaves them.
func TestAppRetiresProcessesNoLongerConfigured(t *testing.T) {
	t.Parallel()
	cfg := appLoad(t)
	rt, j := newRCJournalRuntime()
	e := newRCEngine(t, cfg, rt, j, nil)
	rt.push("docker.io/acme/shop:latest", "sha256:v1")
	if r := e.deploy(t, "shop"); r.Outcome != Succeeded {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	// A leftover of another app, and an unmanaged container, stay.
	rt.add(Container{Name: "other-worker-2", Running: true, Labels: map[string]string{LabelManaged: "true", LabelApp: "other", LabelDeployment: "other/worker.2"}})
	rt.add(Container{Name: "shop-extra", Running: true})

	smaller, err := deployments.Parse([]byte(strings.Replace(appConfig, "worker: {command: [worker], scale: 2}", "cron: {command: [cron]}", 1)),
		t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	e2 := newRCEngine(t, smaller, rt, j, nil)
	rt.push("docker.io/acme/shop:latest", "sha256:v2-exits")
	rt.exitOnStart["v2-exits"] = 1
	if r := e2.deploy(t, "shop"); r.Outcome != Failed || !strings.Contains(r.Err.Error(), "process cron") {
		t.Fatalf("v2-exits: %s %v, want failed in the new cron", r.Outcome, r.Err)
	}
	if _, ok := rt.get("shop-worker-2"); !ok {
		t.Error("a failed deploy removed worker-2")
	}
	rt.push("docker.io/acme/shop:latest", "sha256:v3")
	if r := e2.deploy(t, "shop"); r.Outcome != Succeeded {
		t.Fatalf("v3: %s %v", r.Outcome, r.Err)
	}
	got := rcNames(rt)
	want := []string{"other-worker-2(running)", "shop-cron-1(running)", "shop-extra(running)", "shop-web-1(running)"}
	if !slices.Equal(got, want) {
		t.Errorf("containers %v, want %v: the workers gone, cron new, the others untouched", got, want)
	}
}

// TestAppDownWhenARollbackFails: the web cannot be created and the
// workers' previous containers no longer start: the app (not a process)
// is down, and a later deploy that succeeds clears it.
func TestAppDownWhenARollbackFails(t *testing.T) {
	t.Parallel()
	cfg := appLoad(t)
	rt, j := newRCJournalRuntime()
	e := newRCEngine(t, cfg, rt, j, nil)
	rt.push("docker.io/acme/shop:latest", "sha256:v1")
	if r := e.deploy(t, "shop"); r.Outcome != Succeeded {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	rt.mu.Lock()
	rt.exitOnStart["sha256:v1"] = 1
	rt.fail = func(op, arg string) error {
		if op == "create" && arg == "shop-web-1" {
			return errors.New("no room")
		}
		return nil
	}
	rt.mu.Unlock()
	rt.push("docker.io/acme/shop:latest", "sha256:v2")
	if r := e.deploy(t, "shop"); r.Outcome != Failed {
		t.Fatalf("v2: %s %v, want failed", r.Outcome, r.Err)
	}
	down := e.Down()
	if why, ok := down["shop"]; !ok || !strings.Contains(why.Error(), "shop/worker.") {
		t.Errorf("down %v, want the app, naming a worker", down)
	}
	for name := range down {
		if name != "shop" {
			t.Errorf("%s is down on its own: a process's state is its app's", name)
		}
	}
	rt.mu.Lock()
	rt.fail = nil
	rt.mu.Unlock()
	rt.push("docker.io/acme/shop:latest", "sha256:v3")
	if r := e.deploy(t, "shop"); r.Outcome != Succeeded {
		t.Fatalf("v3: %s %v", r.Outcome, r.Err)
	}
	if len(e.Down()) != 0 {
		t.Errorf("still down after a deploy that succeeded: %v", e.Down())
	}
}

// processLines is a result's processes, one "process.replica container
// digest" each, in order.
func processLines(ps []ProcessResult) []string {
	var l []string
	for _, p := range ps {
		l = append(l, fmt.Sprintf("%s.%d %s %s", p.Process, p.Replica, p.Container, p.Digest))
	}
	return l
}

// TestAppResultProcesses: a deploy's result carries what each replica of
// each process runs after it, in swap order: the new digest once every
// one passed its gate; after a rollback the previous one, on the replicas
// rolled back and on those never reached alike; nothing on a first deploy
// undone. A deploy that ended before the swap, and a deployment without
// processes, carry none.
func TestAppResultProcesses(t *testing.T) {
	t.Parallel()
	cfg, err := deployments.Parse([]byte(appConfig+`
  - name: solo
    image: acme/solo
    tags: [latest]
    environment: production
    health: {min_uptime: 10ms}
`), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	rt, j := newRCJournalRuntime()
	e := newRCEngine(t, cfg, rt, j, nil)
	failing := func(op, prefix string) func(string, string) error {
		return func(o, arg string) error {
			if o == op && strings.HasPrefix(arg, prefix) {
				return errors.New("no room")
			}
			return nil
		}
	}
	lines := func(digests ...string) []string {
		names := []string{"worker.1 shop-worker-1", "worker.2 shop-worker-2", "web.1 shop-web-1"}
		for i := range names {
			names[i] += " " + digests[i]
		}
		return names
	}
	steps := []struct {
		name, digest string
		fail         func(op, arg string) error
		want         Outcome
		processes    []string // nil: none carried
	}{
		// A first deploy whose web cannot be created: the workers' new
		// containers are gone, nothing runs.
		{"first undone", "sha256:v0", failing("create", "shop-web-1"), Failed, lines("", "", "")},
		{"succeeded", "sha256:v1", nil, Succeeded, lines("sha256:v1", "sha256:v1", "sha256:v1")},
		// worker.2 fails: worker.1 is rolled back, web never swapped.
		{"rolled back midway", "sha256:v2", failing("create", "shop-worker-2"), RolledBack, lines("sha256:v1", "sha256:v1", "sha256:v1")},
		// web, swapped last, fails: both workers are rolled back.
		{"rolled back last", "sha256:v3", failing("create", "shop-web-1"), RolledBack, lines("sha256:v1", "sha256:v1", "sha256:v1")},
		{"succeeded again", "sha256:v4", nil, Succeeded, lines("sha256:v4", "sha256:v4", "sha256:v4")},
		// The pull fails: no container was touched, no processes told.
		{"failed before the swap", "sha256:v5", failing("pull", ""), Failed, nil},
	}
	for _, s := range steps {
		rt.push("docker.io/acme/shop:latest", s.digest)
		rt.mu.Lock()
		rt.fail = s.fail
		rt.mu.Unlock()
		r := e.deploy(t, "shop")
		rt.mu.Lock()
		rt.fail = nil
		rt.mu.Unlock()
		if r.Outcome != s.want {
			t.Fatalf("%s: %s %v, want %s", s.name, r.Outcome, r.Err, s.want)
		}
		if got := processLines(r.Processes); !slices.Equal(got, s.processes) || (s.processes == nil) != (r.Processes == nil) {
			t.Errorf("%s: processes %q, want %q", s.name, got, s.processes)
		}
		// What the result says runs is what runs.
		for _, p := range r.Processes {
			c, ok := rt.get(p.Container)
			if p.Digest == "" && ok || p.Digest != "" && (!ok || !c.Running || c.Labels[LabelDigest] != p.Digest) {
				t.Errorf("%s: the result says %s runs %q; the runtime has %v %+v", s.name, p.Container, p.Digest, ok, c)
			}
		}
	}

	rt.push("docker.io/acme/solo:latest", "sha256:s1")
	if r := e.deploy(t, "solo"); r.Outcome != Succeeded || r.Processes != nil {
		t.Errorf("a deployment without processes: %s %v, processes %+v, want none", r.Outcome, r.Err, r.Processes)
	}
}
