package poll

import (
	"testing"
	"time"
)

// The backoff grows to its cap and stays there however long a registry
// fails: never shorter than the interval (a shift that overflowed made it
// negative, and the poller then polled back to back).
func TestBackoffNeverOverflows(t *testing.T) {
	for _, every := range []time.Duration{time.Second, 10 * time.Second, 30 * time.Second, 5 * time.Minute, time.Hour, 24 * time.Hour} {
		prev := time.Duration(0)
		for failures := 1; failures <= 200; failures++ {
			w := backoff(every, failures)
			if w < every || w < prev {
				t.Fatalf("backoff(%v, %d) = %v: shorter than the interval or than after %d failures (%v)", every, failures, w, failures-1, prev)
			}
			if w > max(maxBackoff, every) || w > backoffFactor*every {
				t.Fatalf("backoff(%v, %d) = %v: past the cap", every, failures, w)
			}
			prev = w
		}
	}
	if got := backoff(10*time.Second, 2); got != 20*time.Second {
		t.Errorf("backoff(10s, 2) = %v, want 20s", got)
	}
	if got := backoff(10*time.Second, 40); got != 160*time.Second {
		t.Errorf("backoff(10s, 40) = %v, want 160s (16 intervals)", got)
	}
}
