package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// swapOps returns the calls that change containers (create, start, stop,
// rename, remove), in order, from the runtime's record.
func swapOps(rt *fakeRuntime) []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []string
	for _, c := range rt.calls {
		op, _, _ := strings.Cut(c, " ")
		switch op {
		case "create", "start", "stop", "rename", "remove":
			out = append(out, c)
		}
	}
	return out
}

func resetCalls(rt *fakeRuntime) {
	rt.mu.Lock()
	rt.calls = nil
	rt.mu.Unlock()
}

// Stop-first sets the old container aside and creates the new one while
// the old one still serves; only the stop and the start are left for the
// window in which nothing serves, back to back.
func TestStopFirstCreatesBeforeTheStop(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:one")
	resetCalls(h.rt)
	first := h.deploy("web-prod", "latest")
	if first.Outcome != Succeeded {
		t.Fatalf("first deploy: %s %v", first.Outcome, first.Err)
	}
	// A first deploy has nothing to set aside or stop.
	if got, want := swapOps(h.rt), []string{"create web-prod", "start " + first.ContainerID}; !slices.Equal(got, want) {
		t.Errorf("first deploy: calls %v, want %v", got, want)
	}

	h.rt.push("docker.io/acme/web:latest", "sha256:two")
	resetCalls(h.rt)
	r := h.deploy("web-prod", "latest")
	if r.Outcome != Succeeded {
		t.Fatalf("update: %s %v", r.Outcome, r.Err)
	}
	want := []string{
		"rename " + first.ContainerID + " web-prod" + PrevSuffix, // running, still serving
		"create web-prod",
		"stop " + first.ContainerID,
		"start " + r.ContainerID,
		"remove " + first.ContainerID, // after the gate
	}
	if got := swapOps(h.rt); !slices.Equal(got, want) {
		t.Errorf("update: calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Between the stop and the start the engine is asked nothing else.
	h.rt.mu.Lock()
	calls := slices.Clone(h.rt.calls)
	h.rt.mu.Unlock()
	stop := slices.Index(calls, "stop "+first.ContainerID)
	if stop < 0 || stop+1 >= len(calls) || calls[stop+1] != "start "+r.ContainerID {
		t.Errorf("the stop is not followed at once by the start: %v", calls)
	}
	if c := h.running("web-prod"); c.ID != r.ContainerID {
		t.Errorf("web-prod is %s, want the new %s", c.ID, r.ContainerID)
	}
	h.only("web-prod")
}

// A failure at each step of a stop-first swap rolls back, and the old
// container serves again under its name. Before the stop it never stopped
// at all: it is only given its name back.
func TestStopFirstRollbackAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		fail      string // the op of the deploy's that fails
		stopped   bool   // the old container's stop began: started again and gated
		ownErrMsg string
	}{
		{fail: "rename"},
		{fail: "create"},
		{fail: "stop", stopped: true},
		{fail: "start", stopped: true},
		{fail: "gate", stopped: true, ownErrMsg: "exit code 3"},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			h := newHarness(t)
			h.rt.push("docker.io/acme/web:latest", "sha256:good")
			good := h.deploy("web-prod", "latest")
			h.rt.push("docker.io/acme/web:latest", "sha256:next")
			if tc.fail == "gate" {
				h.rt.exitOnStart["sha256:next"] = 3
			}
			var failed atomic.Bool
			h.rt.fail = func(op, arg string) error {
				// The deploy's call fails, once; the rollback's go through.
				if op == tc.fail && failed.CompareAndSwap(false, true) {
					return errors.New("engine said no")
				}
				return nil
			}
			resetCalls(h.rt)
			r := h.deploy("web-prod", "latest")
			msg := tc.ownErrMsg
			if msg == "" {
				msg = "engine said no"
			}
			if r.Outcome != RolledBack || r.Err == nil || !strings.Contains(r.Err.Error(), msg) {
				t.Fatalf("%s failing: %s %v, want rolled back", tc.fail, r.Outcome, r.Err)
			}
			if r.ContainerID != good.ContainerID {
				t.Errorf("result's container %s, want the previous %s", r.ContainerID, good.ContainerID)
			}
			if c := h.running("web-prod"); c.ID != good.ContainerID {
				t.Errorf("running %s, want %s", c.ID, good.ContainerID)
			}
			h.only("web-prod")
			starts := 0
			for _, c := range swapOps(h.rt) {
				if c == "start "+good.ContainerID {
					starts++
				}
			}
			if tc.stopped && starts != 1 {
				t.Errorf("the previous container was started %d times, want once: %v", starts, swapOps(h.rt))
			}
			if !tc.stopped && (starts != 0 || h.rt.count("stop") != 0) {
				t.Errorf("a failure before the stop stopped or started the previous container: %v", swapOps(h.rt))
			}
		})
	}
}

// A create that fails but lands late (the engine carried it out after its
// error came back) leaves a container holding the name; the rollback
// removes it and gives the old one its name back.
func TestStopFirstRollbackAfterALateCreate(t *testing.T) {
	h := newHarness(t)
	h.rt.push("docker.io/acme/web:latest", "sha256:good")
	good := h.deploy("web-prod", "latest")
	h.rt.push("docker.io/acme/web:latest", "sha256:next")
	var failed, landed atomic.Bool
	h.rt.fail = func(op, arg string) error {
		switch {
		case op == "create" && failed.CompareAndSwap(false, true):
			return errors.New("engine said no")
		case op == "rename" && arg == good.ContainerID+" web-prod" && landed.CompareAndSwap(false, true):
			// The rollback's rename back finds the name taken.
			h.rt.Create(context.Background(), Spec{Name: "web-prod", Image: "docker.io/acme/web@sha256:next",
				Labels: map[string]string{LabelManaged: "true", LabelDeployment: "web-prod", LabelDigest: "sha256:next"}})
		}
		return nil
	}
	r := h.deploy("web-prod", "latest")
	if !landed.Load() {
		t.Fatal("the late create never landed: the test tested nothing")
	}
	if r.Outcome != RolledBack {
		t.Fatalf("late create: %s %v, want rolled back", r.Outcome, r.Err)
	}
	if c := h.running("web-prod"); c.ID != good.ContainerID {
		t.Errorf("running %s, want %s", c.ID, good.ContainerID)
	}
	h.only("web-prod")
	if n := h.rt.count("stop") + h.rt.count("start"); n != 1 { // the first deploy's start
		t.Errorf("the old container was stopped or started: %v", h.rt.calls)
	}
}

// What a crash at each step of a stop-first swap leaves, and that the
// repair puts the old container back under its name, running, without
// ever stopping it when it had not been stopped.
func TestStopFirstRepairOfEachIntermediateState(t *testing.T) {
	for _, tc := range []struct {
		step string
		left []string // by the crash (rcNames)
		// stopped: the crash came after the old one's stop was asked
		// for; the repair starts it again.
		stopped bool
	}{
		{step: StepRename, left: []string{"web(running)"}},
		{step: StepCreate, left: []string{"web" + PrevSuffix + "(running)"}},
		{step: StepStop, left: []string{"web", "web" + PrevSuffix + "(running)"}},
		{step: StepStart, left: []string{"web", "web" + PrevSuffix}, stopped: true},
		{step: StepGate, left: []string{"web(running)", "web" + PrevSuffix}, stopped: true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			t.Parallel()
			cfg := rcLoad(t)
			rt, j := newRCJournalRuntime()
			rt.push("docker.io/acme/web:latest", "sha256:v1")
			old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web")
			crt, cj, id := rcCrash(t, cfg, rt, j, "web", "sha256:v2", tc.step)
			left := rcNames(crt)
			if !slices.Equal(left, tc.left) {
				t.Fatalf("left by the crash: %v, want %v", left, tc.left)
			}
			if tc.step == StepStop {
				// The stop the dead process asked for lands late; the
				// repair waits for it rather than trust "running".
				crt.fail = func(op, arg string) error {
					if op == "inspect" && arg == old.ContainerID {
						crt.mu.Lock()
						crt.fail = nil
						crt.mu.Unlock()
						go crt.Stop(context.Background(), old.ContainerID, 0)
					}
					return nil
				}
			}
			if err := newRCEngine(t, cfg, crt, cj, nil).Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			rcCheck(t, crt, cj, "web", old.ContainerID, id, RolledBack, tc.step)
			startedOld := slices.Contains(swapOps(crt), "start "+old.ContainerID)
			if tc.stopped && !startedOld {
				t.Errorf("the old container, stopped, was not started again: %v", crt.calls)
			}
			if !tc.stopped && tc.step != StepStop && (startedOld || crt.count("stop") != 0) {
				t.Errorf("the old container never stopped, yet the repair stopped or started it: %v", crt.calls)
			}
		})
	}
}

// The step entries say what a repair needs: from the stop on, the journal
// names both containers.
func TestStopFirstJournalsBothContainersBeforeTheStop(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCJournalRuntime()
	rt.push("docker.io/acme/web:latest", "sha256:v1")
	old := newRCEngine(t, cfg, rt, j, nil).deploy(t, "web")
	for _, tc := range []struct {
		step      string
		prev, new bool
	}{
		{StepRename, true, false},
		{StepCreate, true, false},
		{StepStop, true, true},
		{StepStart, true, true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			_, cj, id := rcCrash(t, cfg, rcClone(rt), j.clone(), "web", fmt.Sprintf("sha256:v2-%s", tc.step), tc.step)
			r := cj.get(id)
			if (r.PrevID == old.ContainerID) != tc.prev || (r.NewID != "") != tc.new {
				t.Errorf("journal at step %s: prev %q new %q; want prev %v, new %v", tc.step, r.PrevID, r.NewID, tc.prev, tc.new)
			}
		})
	}
}

// An engine that stays away through the rollback's first call is not
// asked the others: the deploy is left unfinished for Watch's reconcile,
// rather than waiting out every call's retries.
func TestRollbackStopsAskingAnEngineThatIsAway(t *testing.T) {
	cfg := rcLoad(t)
	rt, j := newRCOutage(), newRCJournal()
	var armed atomic.Bool
	e := newRCEngine(t, cfg, rt, j, func(d, s string) {
		if s == StepStart && armed.CompareAndSwap(true, false) {
			rt.down.Store(true)
		}
	})
	rt.push("docker.io/acme/web:latest", "sha256:v1")
	old := e.deploy(t, "web")
	rt.push("docker.io/acme/web:latest", "sha256:v2")
	armed.Store(true)
	resetCalls(rt.fakeRuntime)
	r := e.deploy(t, "web")
	if r.Outcome != Failed || !errors.Is(r.Err, ErrUnavailable) {
		t.Fatalf("deploy with the engine away: %s %v", r.Outcome, r.Err)
	}
	tries := e.opts.Retries + 1
	if n := rt.count("remove"); n != tries {
		t.Errorf("remove of the new container tried %d times, want %d", n, tries)
	}
	for _, c := range swapOps(rt.fakeRuntime) {
		if c == "start "+old.ContainerID || strings.HasPrefix(c, "rename "+old.ContainerID+" web") && !strings.HasSuffix(c, PrevSuffix) {
			t.Errorf("the rollback asked an unreachable engine %q after its first call ran out of retries", c)
		}
	}
	if un, _ := j.Unfinished(context.Background()); len(un) != 1 || un[0].Step != StepRollback {
		t.Errorf("journal: %+v, want the deploy unfinished at step rollback, for reconcile", un)
	}
}
