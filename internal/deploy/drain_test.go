package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// swapCalls records the calls of a start-first swap (after the gate) and
// when each began.
type swapCalls struct {
	mu    sync.Mutex
	calls []string
	at    map[string]time.Time // first call of each op
}

func (s *swapCalls) note(op, arg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "rename", "drain", "stop", "remove":
		s.calls = append(s.calls, op+" "+arg)
		if _, ok := s.at[op]; !ok {
			s.at[op] = time.Now()
		}
	}
}

func (s *swapCalls) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.at = nil, map[string]time.Time{}
}

// On networks with subnets of their own, start-first drains the old
// container after renaming both, and leaves the old one the drain time after
// its drain before its stop signal.
func TestStartFirstDrainsBeforeTheStop(t *testing.T) {
	rt := newFakeRuntime()
	rt.subnets = true
	sc := &swapCalls{}
	rt.fail = func(op, arg string) error { sc.note(op, arg); return nil }
	deployTag := startFirstEngine(t, rt, Options{})
	old := deployTag("sha256:one")
	sc.reset()
	r := deployTag("sha256:two")
	if r.Outcome != Succeeded {
		t.Fatalf("start-first: %s %v", r.Outcome, r.Err)
	}
	want := []string{
		"rename " + old.ContainerID + " api" + PrevSuffix, // while both hold the aliases
		"rename " + r.ContainerID + " api",
		"drain " + old.ContainerID,
		"stop " + old.ContainerID,
		"remove " + old.ContainerID,
	}
	if !slices.Equal(sc.calls, want) {
		t.Errorf("calls %v, want %v", sc.calls, want)
	}
	if waited := sc.at["stop"].Sub(sc.at["drain"]); waited < testWaits.drain {
		t.Errorf("the old container got its stop signal %s after the drain, want at least %s", waited, testWaits.drain)
	}
	if got := rt.aliases[r.ContainerID]; !slices.Equal(got, []string{"api"}) {
		t.Errorf("aliases of the new container = %v", got)
	}
}

// On networks created plainly the engine cannot drain the old container:
// it is stopped at once, holding its aliases, as before there was a drain.
func TestStartFirstWithoutSubnetsStopsAtOnce(t *testing.T) {
	rt := newFakeRuntime()
	sc := &swapCalls{}
	rt.fail = func(op, arg string) error { sc.note(op, arg); return nil }
	// The production drain: the stop must come well before it.
	w := testWaits
	w.drain = drainTime
	deployTag := startFirstEngine(t, rt, Options{waits: w})
	old := deployTag("sha256:one")
	sc.reset()
	if r := deployTag("sha256:two"); r.Outcome != Succeeded {
		t.Fatalf("start-first: %s %v", r.Outcome, r.Err)
	}
	if !slices.Contains(sc.calls, "drain "+old.ContainerID) {
		t.Errorf("calls %v: the drain was not tried", sc.calls)
	}
	if waited := sc.at["stop"].Sub(sc.at["drain"]); waited > drainTime/2 {
		t.Errorf("the old container got its stop signal %s after a drain that drained nothing", waited)
	}
}

// A drain that fails does not hold the swap up: an engine that went away
// is waited for (the step is retried), any other failure leaves the old
// container to be stopped as it is.
func TestStartFirstDrainFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"engine away", fmt.Errorf("connection lost: %w", ErrUnavailable)},
		{"refused", errors.New("the engine says no")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime()
			rt.subnets = true
			sc := &swapCalls{}
			failed := false
			rt.fail = func(op, arg string) error {
				sc.note(op, arg)
				if op == "drain" && !failed {
					failed = true
					return tc.err
				}
				return nil
			}
			deployTag := startFirstEngine(t, rt, Options{RetryBackoff: time.Millisecond})
			old := deployTag("sha256:one")
			sc.reset()
			r := deployTag("sha256:two")
			if r.Outcome != Succeeded {
				t.Fatalf("start-first: %s %v", r.Outcome, r.Err)
			}
			if _, ok := rt.get(old.ContainerID); ok {
				t.Errorf("the old container is still there")
			}
			drains := 0
			for _, c := range sc.calls {
				if strings.HasPrefix(c, "drain ") {
					drains++
				}
			}
			if want := map[bool]int{true: 2, false: 1}[errors.Is(tc.err, ErrUnavailable)]; drains != want {
				t.Errorf("%d drains (calls %v), want %d", drains, sc.calls, want)
			}
		})
	}
}
