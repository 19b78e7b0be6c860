package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReadyzEngines: with several engines, /readyz names each one that
// does not answer, and only those; a slow one is given up on in time.
func TestReadyzEngines(t *testing.T) {
	ok := fakePinger{PingFn: func(context.Context) error { return nil }}
	refused := fakePinger{PingFn: func(context.Context) error {
		return errors.New("Cannot connect to the Docker daemon at unix:///far.sock")
	}}
	hangs := fakePinger{PingFn: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	broken := fakeHealth{"far-web": errors.New("health gate failed: status 500")}
	tests := []struct {
		name    string
		engines map[string]Pinger
		health  Health
		want    int
		body    []string // parts of the body
		notBody []string
	}{
		{"all answer", map[string]Pinger{"local": ok, "far": ok}, fakeHealth{}, http.StatusOK, []string{"ok"}, nil},
		{"one away", map[string]Pinger{"local": ok, "far": refused}, fakeHealth{}, http.StatusServiceUnavailable,
			[]string{"not ready: container engines not answering:\nengine \"far\": not answering (Cannot connect to the Docker daemon at unix:///far.sock)"},
			[]string{`engine "local"`, "deployments down"}},
		{"away and a deployment down", map[string]Pinger{"local": ok, "far": refused, "near": ok}, broken, http.StatusServiceUnavailable,
			[]string{`engine "far": not answering`, "\ndeployments down (no container passes its health gate):\nfar-web: health gate failed: status 500"},
			[]string{`engine "local"`, `engine "near"`}},
		{"two away", map[string]Pinger{"local": refused, "far": hangs}, fakeHealth{}, http.StatusServiceUnavailable,
			[]string{"engine \"far\": not answering (context deadline exceeded)\nengine \"local\": not answering (Cannot connect"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) {
				o.Engines, o.Health = tt.engines, tt.health
			})
			began := time.Now()
			w := h.do(http.MethodGet, "/readyz", nil)
			if took := time.Since(began); took > readyTimeout+time.Second {
				t.Errorf("readyz took %v", took)
			}
			if w.Code != tt.want {
				t.Errorf("%d %q, want %d", w.Code, w.Body, tt.want)
			}
			for _, b := range tt.body {
				if !strings.Contains(w.Body.String(), b) {
					t.Errorf("body %q lacks %q", w.Body, b)
				}
			}
			for _, b := range tt.notBody {
				if strings.Contains(w.Body.String(), b) {
					t.Errorf("body %q has %q", w.Body, b)
				}
			}
		})
	}
}
