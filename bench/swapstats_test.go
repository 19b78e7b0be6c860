package bench

import (
	"slices"
	"testing"
	"time"
)

// slow is how long an answer may take before it counts as a stall: the
// test app answers in about a millisecond.
const slow = 200 * time.Millisecond

// swapStats is what a client saw during one swap. Requests are ordered by
// when they were sent.
type swapStats struct {
	failed int // requests that got no answer (error, or none within the client's timeout)
	// downtime runs from the last answered request before the first
	// failed one to the first answered request after the last failed one.
	// 0 without failures. Where answered and failed requests mix (start-
	// first sends some requests to a container that cannot answer yet),
	// it is the span of the trouble, not an outage.
	downtime time.Duration
	// outage is the longest run of failed requests in a row, measured the
	// same way: how long nothing at all was answered.
	outage  time.Duration
	stalled int           // answered, but slower than slow
	slowest time.Duration // the slowest answer
	reasons map[string]int
}

// stats looks at the requests sent in (from, to].
func (r *recorder) stats(tb testing.TB, from, to time.Time) swapStats {
	tb.Helper()
	r.mu.Lock()
	evs := slices.Clone(r.events)
	r.mu.Unlock()
	// Lines come as requests end; requests run concurrently.
	slices.SortStableFunc(evs, func(a, b event) int { return a.start().Compare(b.start()) })
	s := swapStats{reasons: map[string]int{}}
	var lastOK, firstBefore time.Time // starts
	inRun := false
	for _, ev := range evs {
		start := ev.start()
		if !start.After(from) {
			if ev.ok {
				lastOK = start
			}
			continue
		}
		if start.After(to) && !inRun {
			break
		}
		if !ev.ok {
			if start.After(to) {
				continue // past to, only the answer that ends a run counts
			}
			s.failed++
			s.reasons[ev.reason]++
			if !inRun {
				inRun = true
				if firstBefore.IsZero() {
					firstBefore = lastOK
				}
			}
			continue
		}
		if !start.After(to) {
			s.slowest = max(s.slowest, ev.took)
			if ev.took > slow {
				s.stalled++
			}
		}
		if inRun {
			inRun = false
			if lastOK.IsZero() {
				tb.Fatalf("failed requests without an answered one before them")
			}
			s.outage = max(s.outage, start.Sub(lastOK))
			s.downtime = start.Sub(firstBefore)
		}
		lastOK = start
	}
	if inRun {
		tb.Fatalf("failed requests without an answered one after them")
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}
