package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

var testBounds = []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second}

// figs is n requests, bad of them 5xx, all in latency bucket i.
func figs(n, bad int64, i int) Figures {
	f := Figures{Requests: n, ServerError: bad, Buckets: make([]int64, len(testBounds)+1), Bounds: testBounds}
	f.Buckets[i] = n
	return f
}

func TestCanaryFigures(t *testing.T) {
	then := figs(100, 1, 0)
	now := figs(300, 5, 0)
	now.Buckets[0], now.Buckets[2] = 299, 1 // one slow one
	w := now.Sub(then)
	if w.Requests != 200 || w.ServerError != 4 || w.ErrorRate() != 0.02 {
		t.Errorf("window %+v rate %v", w, w.ErrorRate())
	}
	if p := w.P99(); p != 10*time.Millisecond {
		t.Errorf("p99 of 200 with 1 slow = %s, want 10ms", p) // the 198th is fast
	}
	w.Buckets[2] = 10
	if p := w.P99(); p != time.Second {
		t.Errorf("p99 with 10 of 209 slow = %s, want 1s", p)
	}
	above := figs(10, 0, 3)
	if p := above.P99(); p != time.Second {
		t.Errorf("p99 above every bound = %s, want the largest bound", p)
	}
	if (Figures{}).P99() != 0 || (Figures{}).ErrorRate() != 0 {
		t.Error("no requests: want zero figures")
	}
}

// TestCanaryJudge: a step fails on the new side's error rate or p99 only
// when it is also worse than the old side's in the same window.
func TestCanaryJudge(t *testing.T) {
	k := &deployments.Canary{ErrorRate: 0.01, MaxErrorRate: "1%", MaxP99: 100 * time.Millisecond}
	tests := []struct {
		name     string
		old, cur Figures
		want     string // "" passes
	}{
		{"healthy", figs(1000, 0, 0), figs(100, 0, 0), ""},
		{"at the limit", figs(1000, 0, 0), figs(100, 1, 0), ""},
		{"5%", figs(1000, 0, 0), figs(100, 5, 0), "error rate 5.00% above max_error_rate 1%"},
		{"both failing alike", figs(1000, 50, 0), figs(100, 5, 0), ""},
		{"worse than a failing old", figs(1000, 20, 0), figs(100, 5, 0), "error rate 5.00%"},
		{"slow", figs(1000, 0, 0), figs(100, 0, 2), "p99 1s above max_p99 100ms"},
		{"slow like the old", figs(1000, 0, 2), figs(100, 0, 2), ""},
		{"no requests", figs(0, 0, 0), figs(0, 0, 0), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := judge(k, 0, 5, tt.old, tt.cur)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("fails: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("passes, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q lacks %q", err, tt.want)
			case err != nil && !strings.HasPrefix(err.Error(), "canary step 1 (5%) failed: "):
				t.Errorf("error %q does not name the step", err)
			}
		})
	}
}
