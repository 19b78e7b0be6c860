package deploy

import (
	"testing"
	"time"
)

// testWaits are the engine's waits in this package's tests: their fakes
// answer at once, so that the gate, a repair and a wait for Swarm need not
// look every 100 ms to 250 ms, nor allow seconds of margin. What a test
// asserts of a wait (a stop waited for, a drain kept) it asserts of these.
var testWaits = waits{
	poll:         10 * time.Millisecond,
	probe:        50 * time.Millisecond,
	converge:     20 * time.Millisecond,
	stopMargin:   200 * time.Millisecond,
	servicePoll:  10 * time.Millisecond,
	serviceSlack: 500 * time.Millisecond,
	drain:        300 * time.Millisecond,
}

// Outside tests the waits are the production ones: an engine whose
// options leave them zero gets them, and a zero wait never polls in a
// busy loop.
func TestDefaultWaits(t *testing.T) {
	want := waits{
		poll:         100 * time.Millisecond,
		probe:        500 * time.Millisecond,
		converge:     200 * time.Millisecond,
		stopMargin:   5 * time.Second,
		servicePoll:  250 * time.Millisecond,
		serviceSlack: 10 * time.Second,
		drain:        2 * time.Second,
	}
	if got := New(Options{}).opts.waits; got != want {
		t.Errorf("default waits %+v, want %+v", got, want)
	}
	if got := (waits{poll: time.Millisecond}).orDefault(); got.poll != time.Millisecond || got.drain != want.drain {
		t.Errorf("a wait set is kept, the others defaulted: %+v", got)
	}
}
