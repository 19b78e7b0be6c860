package deploy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A process killed while the engine carries out a call it made: the call
// completes after the restart, under the new process's reconcile. These
// tests replay that on the fake runtime: the crash leaves the state of the
// moment the call was sent, and the call lands while reconcile runs.

// TestReconcileWaitsForAStopInFlight: killed while the engine stopped the
// old container (stop-first, step stop). At the restart the old container
// still runs; the stop completes a moment later. Reconcile must not take
// "it runs" for the end state: it waits for the stop, starts the old
// container again, gates it, and it still runs afterwards.
func TestReconcileWaitsForAStopInFlight(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	rt.push("docker.io/acme/web:latest", "sha256:v1")
	old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web")
	crt, cj, id := rcCrash(t, cfg, rt, j, "web", "sha256:v2", StepStop)

	// The stop the dead process sent lands 300ms into the new process.
	landed := make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() {
		crt.Stop(context.Background(), old.ContainerID, 0)
		close(landed)
	})
	e := newRCEngine(t, cfg, crt, cj, nil)
	if err := e.Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	select {
	case <-landed:
	default:
		t.Fatal("reconcile returned before the stop in flight completed")
	}
	rcCheck(t, crt, cj, "web", old.ContainerID, id, RolledBack, StepStop)
	if n := slices.Index(crt.calls, "start "+old.ContainerID); n < slices.Index(crt.calls, "stop "+old.ContainerID) || crt.count("start") != 1 {
		t.Errorf("the old container was started %d times after the stop landed, want 1: %v", n, crt.calls)
	}
	if got := testutil.ToFloat64(e.metrics.repairs.WithLabelValues("web", repairRestored)); got != 1 {
		t.Errorf("liftoff_repairs_total{outcome=restored} = %v, want 1", got)
	}
}

// TestReconcileStopThatNeverLanded: killed after journaling the stop but
// before the engine got it. The old container keeps running; reconcile
// waits out stop_timeout plus its margin, then leaves it running, gated.
func TestReconcileStopThatNeverLanded(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	rt.push("docker.io/acme/web:latest", "sha256:v1")
	old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web")
	crt, cj, id := rcCrash(t, cfg, rt, j, "web", "sha256:v2", StepStop)
	start := time.Now()
	if err := newRCEngine(t, cfg, crt, cj, nil).Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if took := time.Since(start); took < cfg.Deployment("web").StopTimeout {
		t.Errorf("reconcile took %s: it did not wait for a stop that might still land", took)
	}
	rcCheck(t, crt, cj, "web", old.ContainerID, id, RolledBack, StepStop)
	if n := crt.count("stop") + crt.count("start"); n != 0 {
		t.Errorf("a running container that nobody stopped was stopped or started: %v", crt.calls)
	}
}

// TestReconcileLateCreateAndRename: the dead process's create of the new
// container lands while reconcile renames the old one back, and its rename
// of the old one to .liftoff-prev lands after reconcile looked. Reconcile
// looks again until what it wants holds. (stop-first sets the old one
// aside while it still runs: it is never stopped here.)
func TestReconcileLateCreateAndRename(t *testing.T) {
	for _, late := range []string{"create", "rename"} {
		t.Run(late, func(t *testing.T) {
			cfg := rcLoad(t)
			rt, j := newRCJournalRuntime()
			rt.push("docker.io/acme/web:latest", "sha256:v1")
			old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web")
			step := StepCreate // the old one runs, aside
			if late == "rename" {
				step = StepRename // the old one runs, still under the name
			}
			crt, cj, id := rcCrash(t, cfg, rt, j, "web", "sha256:v2", step)
			var landed atomic.Bool
			crt.fail = func(op, arg string) error {
				if !landed.CompareAndSwap(false, true) {
					return nil
				}
				switch {
				case late == "create" && op == "rename":
					// the new container takes the name first
					crt.Create(context.Background(), Spec{Name: "web", Image: "docker.io/acme/web@sha256:v2",
						Labels: map[string]string{LabelManaged: "true", LabelDeployment: "web", LabelDigest: "sha256:v2"}})
				case late == "rename" && op == "inspect" && arg == "web"+NextSuffix:
					// the old one is set aside once reconcile has seen it
					// under the name
					crt.Rename(context.Background(), old.ContainerID, "web"+PrevSuffix)
				default:
					landed.Store(false)
				}
				return nil
			}
			if err := newRCEngine(t, cfg, crt, cj, nil).Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			if !landed.Load() {
				t.Fatal("the late call never landed: the test did not test anything")
			}
			rcCheck(t, crt, cj, "web", old.ContainerID, id, RolledBack, step)
			if n := crt.count("stop") + crt.count("start"); n != 0 {
				t.Errorf("the old container, which never stopped serving, was stopped or started: %v", crt.calls)
			}
		})
	}
}

// TestRollbackGatesThePreviousContainer: a rolled-back deploy has put the
// previous container back; it must pass the health gate too. When it does
// not, the deploy fails, the deployment is down (metric, Down), and a
// later successful deploy takes it off the list.
func TestRollbackGatesThePreviousContainer(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:good")
	h.deploy("web-prod", "latest")
	h.rt.push("docker.io/acme/web:latest", "sha256:bad")
	h.rt.exitOnStart["sha256:bad"] = 3
	h.rt.health["sha256:good"] = "unhealthy" // the previous one breaks too
	r := h.deploy("web-prod", "latest")
	if r.Outcome != Failed || !errors.Is(r.Err, ErrGate) || !strings.Contains(r.Err.Error(), "previous container does not pass") {
		t.Fatalf("deploy whose rollback fails its gate: %s %v", r.Outcome, r.Err)
	}
	if _, down := h.eng.Down()["web-prod"]; !down {
		t.Errorf("Down() = %v, want web-prod", h.eng.Down())
	}
	if got := testutil.ToFloat64(h.eng.metrics.down.WithLabelValues("web-prod")); got != 1 {
		t.Errorf("liftoff_deployment_down{web-prod} = %v, want 1", got)
	}

	delete(h.rt.health, "sha256:good")
	h.rt.push("docker.io/acme/web:latest", "sha256:fixed")
	if r := h.deploy("web-prod", "latest"); r.Outcome != Succeeded {
		t.Fatalf("fixing deploy: %s %v", r.Outcome, r.Err)
	}
	if len(h.eng.Down()) != 0 || testutil.ToFloat64(h.eng.metrics.down.WithLabelValues("web-prod")) != 0 {
		t.Errorf("still down after a successful deploy: %v", h.eng.Down())
	}
}

// TestReconcileRestoredButUnhealthyIsDown: the previous container reconcile
// restores does not pass its gate: reconcile says so (error, Down, metric,
// journal), and Watch tries again until it passes.
func TestReconcileRestoredButUnhealthyIsDown(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	rt.push("docker.io/acme/web:latest", "sha256:v1")
	old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web")
	crt, cj, id := rcCrash(t, cfg, rt, j, "web", "sha256:v2", StepGate)
	crt.health["sha256:v1"] = "unhealthy"

	e := newRCEngine(t, cfg, crt, cj, nil)
	e.opts.DownRetry = 20 * time.Millisecond
	if err := e.Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v; a deployment left down is no error of Reconcile's", err)
	}
	if why, down := e.Down()["web"]; !down || !errors.Is(why, ErrGate) {
		t.Errorf("Down() = %v, want web down", e.Down())
	}
	if got := testutil.ToFloat64(e.metrics.repairs.WithLabelValues("web", repairDown)); got != 1 {
		t.Errorf("liftoff_repairs_total{outcome=down} = %v, want 1", got)
	}
	if r := cj.get(id); !strings.Contains(r.Error, "passes its health gate") {
		t.Errorf("journal: %q, want it to say no container passes the gate", r.Error)
	}

	// The app recovers (the database came back, say): Watch notices. (The
	// push is dropped first, so that Watch's resume does not deploy it.)
	open, _ := cj.OpenRequests(context.Background())
	cj.Settle(context.Background(), []int64{open[0].ID}, Failed, "test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Watch(ctx, 10*time.Millisecond)
	time.AfterFunc(100*time.Millisecond, func() {
		crt.mu.Lock()
		delete(crt.health, "sha256:v1")
		crt.mu.Unlock()
	})
	waitFor(t, "Watch finds the deployment healthy again", func() bool { return len(e.Down()) == 0 })
	if c, _ := crt.get("web"); c.ID != old.ContainerID || !c.Running {
		t.Errorf("web is %+v, want the old container running", c)
	}
}

// TestEnqueueJournalsBeforeItReturns: a request Enqueue took is in the
// journal when Enqueue returns; duplicates write nothing; a request
// replaced while it waited is settled superseded.
func TestEnqueueJournalsBeforeItReturns(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	gate := make(chan struct{})
	rt.resolveGate = gate
	e := newRCEngine(t, cfg, rt, j, nil)
	for _, tag := range []string{"a", "a", "b", "b", "c"} {
		rt.push("docker.io/acme/web:"+tag, "sha256:"+tag)
		if _, err := e.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web", Tag: tag, Delivery: "d-" + tag}); err != nil {
			t.Fatal(err)
		}
		open, _ := j.OpenRequests(context.Background())
		if len(open) == 0 || open[len(open)-1].Tag != tag {
			t.Fatalf("after Enqueue of %s the journal's open requests are %+v", tag, open)
		}
	}
	// a runs (its duplicate was dropped); b waited and was replaced by c.
	if n := len(j.reqs); n != 3 {
		t.Errorf("%d requests journaled, want 3 (a, b, c): duplicates write nothing", n)
	}
	if r := j.request(2); r.Tag != "b" || r.outcome != Superseded {
		t.Errorf("request b: %+v, want superseded", r)
	}
	close(gate)
	for range 2 {
		if r := <-e.results; r.Outcome != Succeeded {
			t.Fatalf("deploy of %s: %s %v", r.Request.Tag, r.Outcome, r.Err)
		}
	}
	if open, _ := j.OpenRequests(context.Background()); len(open) != 0 {
		t.Errorf("open requests after the deploys: %+v", open)
	}
	if r := j.request(3); r.outcome != Succeeded {
		t.Errorf("request c: %+v, want settled succeeded", r)
	}
}

// TestRecoverDeploysAcceptedPushes: a push accepted and never deployed
// (queued when liftoff died, or interrupted mid-deploy) is deployed once at
// the next start; older open pushes of the same deployment are superseded;
// one interrupted twice in a row is recorded failed and not retried.
func TestRecoverDeploysAcceptedPushes(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	rt.push("docker.io/acme/web:latest", "sha256:v1")
	old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web")

	// Killed in v2's gate, with v3 waiting behind it.
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	e := newRCEngine(t, cfg, rt, j, func(d, s string) {
		if s == StepGate && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
	})
	t.Cleanup(func() { close(release) })
	rt.push("docker.io/acme/web:v2", "sha256:v2")
	rt.push("docker.io/acme/web:v3", "sha256:v3")
	armed.Store(true)
	for _, tag := range []string{"v2", "v3"} {
		if _, err := e.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web", Tag: tag, Delivery: "d-" + tag, Trigger: "dockerhub"}); err != nil {
			t.Fatal(err)
		}
	}
	<-reached
	crt, cj := rcClone(rt), j.clone()

	// The restart: reconcile, then resume.
	e2 := newRCEngine(t, cfg, crt, cj, nil)
	if err := e2.Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if c, _ := crt.get("web"); c.ID != old.ContainerID {
		t.Fatalf("after reconcile web is %s, want v1's %s back", c.ID, old.ContainerID)
	}
	if err := e2.Recover(context.Background()); err != nil {
		t.Fatalf("resume: %v", err)
	}
	r := <-e2.results
	if r.Outcome != Succeeded || r.Request.Tag != "v3" || r.Request.Trigger != TriggerResume || r.Request.Delivery != "d-v3" {
		t.Fatalf("resumed deploy: %s %v of %+v, want v3 deployed as resumed, with its delivery", r.Outcome, r.Err, r.Request)
	}
	if req := cj.request(2); req.Tag != "v2" || req.outcome != Superseded {
		t.Errorf("v2's request: %+v, want superseded by v3", req)
	}
	select {
	case r := <-e2.results:
		t.Errorf("a second deploy ran: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	if err := e2.Recover(context.Background()); err != nil {
		t.Fatalf("second resume: %v", err)
	}
	select {
	case r := <-e2.results:
		t.Errorf("resuming again deployed again: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestRecoverGivesUpAfterTwoInterruptions: a push whose deploy is
// interrupted at every start is tried twice, then recorded failed.
func TestRecoverGivesUpAfterTwoInterruptions(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	rt.push("docker.io/acme/web:latest", "sha256:v1")
	old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web")
	crt, cj, _ := rcCrash(t, cfg, rt, j, "web", "sha256:v2", StepGate)
	for round := 1; ; round++ {
		// Each start: reconcile, resume, and the resumed deploy dies in its gate again.
		var armed atomic.Bool
		armed.Store(true)
		reached, release := make(chan struct{}), make(chan struct{})
		e := newRCEngine(t, cfg, crt, cj, func(d, s string) {
			if s == StepGate && armed.CompareAndSwap(true, false) {
				close(reached)
				<-release
			}
		})
		t.Cleanup(func() { close(release) })
		if err := e.Reconcile(context.Background()); err != nil {
			t.Fatalf("round %d: reconcile: %v", round, err)
		}
		if err := e.Recover(context.Background()); err != nil {
			t.Fatalf("round %d: resume: %v", round, err)
		}
		if round == maxAttempts {
			open, _ := cj.OpenRequests(context.Background())
			if len(open) != 0 {
				t.Fatalf("round %d: open requests %+v, want the push given up", round, open)
			}
			if req := cj.request(2); req.outcome != Failed || !strings.Contains(req.why, "interrupted 2 times") {
				t.Errorf("the push's request: %+v, want failed after 2 interruptions", req)
			}
			select {
			case r := <-e.results:
				t.Fatalf("round %d: deployed again: %+v", round, r)
			case <-time.After(50 * time.Millisecond):
			}
			if c, _ := crt.get("web"); c.ID != old.ContainerID || !c.Running {
				t.Errorf("web is %+v, want v1 running", c)
			}
			return
		}
		select {
		case <-reached:
		case r := <-e.results:
			t.Fatalf("round %d: the resumed deploy ended %s %v without reaching its gate", round, r.Outcome, r.Err)
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the push was not resumed", round)
		}
		crt, cj = rcClone(crt), cj.clone()
	}
}

// TestLateCreateHoldsTheNewName: the dead process's create of the new
// container lands after the next deploy's repair looked, taking the name
// that deploy's create needs. The leftover goes and the deploy succeeds.
func TestLateCreateHoldsTheNewName(t *testing.T) {
	for _, deployment := range []string{"web", "api"} {
		t.Run(deployment, func(t *testing.T) {
			cfg := rcLoad(t)
			rt, j := newRCJournalRuntime()
			rt.push("docker.io/acme/"+deployment+":latest", "sha256:v1")
			e := newRCEngine(t, cfg, rt, j, nil)
			old := e.deploy(t, deployment)
			name := deployment // stop-first: the new one takes the name once the old one is aside
			if deployment == "api" {
				name += NextSuffix
			}
			var landed atomic.Bool
			rt.fail = func(op, arg string) error {
				if op == "create" && landed.CompareAndSwap(false, true) {
					rt.Create(context.Background(), Spec{Name: name, Image: "docker.io/acme/" + deployment + "@sha256:v1-late",
						Labels: map[string]string{LabelManaged: "true", LabelDeployment: deployment, LabelDigest: "sha256:v1-late"}})
				}
				return nil
			}
			rt.push("docker.io/acme/"+deployment+":latest", "sha256:v2")
			r := e.deploy(t, deployment)
			if !landed.Load() {
				t.Fatal("the late create never landed")
			}
			if r.Outcome != Succeeded || r.ContainerID == old.ContainerID {
				t.Fatalf("deploy: %s %v", r.Outcome, r.Err)
			}
			if got := rcNames(rt); !slices.Equal(got, []string{deployment + "(running)"}) {
				t.Errorf("containers %v, want only %s running", got, deployment)
			}
		})
	}
}
