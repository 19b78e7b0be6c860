package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

func TestRoutes(t *testing.T) {
	tests := []struct {
		method, target string
		want           int
		body           string // a part of the body
	}{
		{http.MethodGet, "/healthz", http.StatusOK, "ok"},
		{http.MethodGet, "/readyz", http.StatusOK, "ok"},
		{http.MethodGet, "/metrics", http.StatusOK, "liftoff_webhooks_total"},
		{http.MethodGet, "/nope", http.StatusNotFound, httperr.NotFoundBody},
		{http.MethodGet, "/", http.StatusNotFound, httperr.NotFoundBody},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, ""},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/hooks/dockerhub/" + testToken, http.StatusMethodNotAllowed, ""},
		{http.MethodPut, "/hooks/dockerhub/" + testToken, http.StatusMethodNotAllowed, ""},
	}
	h := newHarness(t, nil)
	for _, tt := range tests {
		w := h.do(tt.method, tt.target, nil)
		if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: %d %.100q, want %d with %q", tt.method, tt.target, w.Code, w.Body, tt.want, tt.body)
		}
		if w.Code == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.target)
		}
	}
	if n := len(h.dep.requests()); n != 0 {
		t.Errorf("%d deploys queued", n)
	}
}

func TestReadyz(t *testing.T) {
	ok := fakePinger{PingFn: func(ctx context.Context) error {
		if d, has := ctx.Deadline(); !has || time.Until(d) > readyTimeout {
			t.Errorf("ping without a deadline of at most %v", readyTimeout)
		}
		return nil
	}}
	down := fakePinger{PingFn: func(context.Context) error { return errors.New("Cannot connect to the Docker daemon") }}
	healthy := fakeHealth{}
	broken := fakeHealth{"web-prod": errors.New("health gate failed: status 500"), "api": errors.New("exit code 3")}
	tests := []struct {
		name     string
		noConfig bool
		pinger   Pinger
		health   Health
		draining bool
		want     int
		body     string
	}{
		{"up", false, ok, healthy, false, http.StatusOK, "ok"},
		{"no pinger", false, nil, nil, false, http.StatusOK, "ok"},
		{"no config", true, ok, healthy, false, http.StatusServiceUnavailable, "no configuration loaded"},
		{"engine down", false, down, healthy, false, http.StatusServiceUnavailable, "container engine: Cannot connect"},
		{"draining", false, ok, healthy, true, http.StatusServiceUnavailable, "draining"},
		{"deployments down", false, ok, broken, false, http.StatusServiceUnavailable,
			"deployments down (no container passes its health gate):\napi: exit code 3\nweb-prod: health gate failed: status 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) {
				o.Health = tt.health
				o.Pinger = tt.pinger
				if tt.noConfig {
					o.Catalogue = func() Catalogue { return nil }
				}
			})
			h.srv.SetDraining(tt.draining)
			w := h.do(http.MethodGet, "/readyz", nil)
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("%d %q, want %d with %q", w.Code, w.Body, tt.want, tt.body)
			}
			// Liveness does not depend on any of it.
			if w := h.do(http.MethodGet, "/healthz", nil); w.Code != http.StatusOK || w.Body.String() != "ok\n" {
				t.Errorf("healthz %d %q", w.Code, w.Body)
			}
		})
	}
}

func TestHookUnavailable(t *testing.T) {
	t.Run("draining", func(t *testing.T) {
		h := newHarness(t, nil)
		h.srv.SetDraining(true)
		w := h.post(fixture(t, "push.json"))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%d %s (Retry-After %q), want 503 with Retry-After", w.Code, w.Body, w.Header().Get("Retry-After"))
		}
		if n := len(h.dep.requests()); n != 0 {
			t.Errorf("%d deploys queued while draining", n)
		}
		h.srv.SetDraining(false)
		if w := h.post(fixture(t, "push.json")); w.Code != http.StatusAccepted {
			t.Errorf("after draining: %d %s", w.Code, w.Body)
		}
	})
	t.Run("no config", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.Catalogue = func() Catalogue { return nil } })
		w := h.post(fixture(t, "push.json"))
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "no configuration") {
			t.Errorf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("too many at once", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.HookConcurrency = 1 })
		inside, release := make(chan struct{}), make(chan struct{})
		match := h.cat.MatchFn
		h.cat.MatchFn = func(repo, tag string) deployments.MatchResult {
			close(inside)
			<-release
			return match(repo, tag)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if w := h.post(fixture(t, "push.json")); w.Code != http.StatusAccepted {
				t.Errorf("first: %d %s", w.Code, w.Body)
			}
		})
		<-inside
		w := h.post(fixture(t, "push.json"))
		close(release)
		wg.Wait()
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "too many deliveries") {
			t.Errorf("second: %d %s, want 503", w.Code, w.Body)
		}
		if got := webhookCount(t, h.reg, "dockerhub", "unavailable"); got != 1 {
			t.Errorf("unavailable count %v", got)
		}
	})
}

func TestHookRateLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.HookRateLimit = 3 })
	from := func(addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/hooks/dockerhub/"+testToken, strings.NewReader(fixture(t, "push.json")))
		r.RemoteAddr = addr
		r.Header.Set("X-Forwarded-For", "198.51.100.7") // not trusted
		w := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(w, r)
		return w
	}
	for i := range 3 {
		if w := from("203.0.113.5:4000"); w.Code != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := from("203.0.113.5:4001")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("4th request: %d %s, want 429", w.Code, w.Body)
	}
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	if !strings.Contains(w.Body.String(), `"error":"too many requests"`) {
		t.Errorf("body %s", w.Body)
	}
	// Wrong tokens count against the limit too: no guessing at full speed.
	if w := h.do(http.MethodPost, "/hooks/dockerhub/guess", nil); w.Code != http.StatusNotFound {
		t.Errorf("other client: %d", w.Code)
	}
	if w := from("[2001:db8::1]:4000"); w.Code != http.StatusAccepted {
		t.Errorf("other client: %d %s", w.Code, w.Body)
	}
	if got := webhookCount(t, h.reg, "dockerhub", "rate_limited"); got != 1 {
		t.Errorf("rate_limited count %v", got)
	}
	if n := len(h.dep.requests()); n != 4 {
		t.Errorf("%d deploys queued, want 4", n)
	}

	// -1, or any negative, turns the limit off.
	for _, off := range []int{-1, -5} {
		h = newHarness(t, func(o *Options) { o.HookRateLimit = off })
		for i := range DefaultHookRateLimit + 80 {
			if w := from("203.0.113.5:4000"); w.Code != http.StatusAccepted {
				t.Fatalf("HookRateLimit %d (no limit), request %d: %d", off, i, w.Code)
			}
		}
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxBody = 4096 })
	push := fixture(t, "push.json")
	h.post(push)                                                               // accepted
	h.post(push)                                                               // accepted
	h.post(strings.Replace(push, `"tag": "staging"`, `"tag": "other"`, 1))     // ignored
	h.do(http.MethodPost, "/hooks/dockerhub/wrong", strings.NewReader(push))   // unauthorized
	h.do(http.MethodPost, "/hooks/madeup/"+testToken, strings.NewReader(push)) // unauthorized, unknown
	h.post(`{"push_data": 1}`)                                                 // invalid
	h.post(push + strings.Repeat(" ", 4096))                                   // too_large
	h.srv.SetDraining(true)
	h.post(push) // unavailable
	h.do(http.MethodPost, "/hooks/madeup/x", nil)

	want := `
# HELP liftoff_webhooks_total Webhook deliveries received, by source and outcome.
# TYPE liftoff_webhooks_total counter
liftoff_webhooks_total{outcome="accepted",source="dockerhub"} 2
liftoff_webhooks_total{outcome="ignored",source="dockerhub"} 1
liftoff_webhooks_total{outcome="invalid",source="dockerhub"} 1
liftoff_webhooks_total{outcome="rate_limited",source="dockerhub"} 0
liftoff_webhooks_total{outcome="too_large",source="dockerhub"} 1
liftoff_webhooks_total{outcome="unauthorized",source="dockerhub"} 1
liftoff_webhooks_total{outcome="unavailable",source="dockerhub"} 1
liftoff_webhooks_total{outcome="rate_limited",source="unknown"} 0
liftoff_webhooks_total{outcome="unauthorized",source="unknown"} 1
liftoff_webhooks_total{outcome="unavailable",source="unknown"} 1
`
	// Every other source's series exist from the start, at 0.
	for _, src := range deployments.HookSources() {
		if src == deployments.SourceDockerHub {
			continue
		}
		for _, o := range []string{"accepted", "ignored", "invalid", "rate_limited", "too_large", "unauthorized", "unavailable"} {
			want += fmt.Sprintf("liftoff_webhooks_total{outcome=%q,source=%q} 0\n", o, src)
		}
	}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "liftoff_webhooks_total"); err != nil {
		t.Error(err)
	}

	// /metrics serves the same registry.
	w := h.do(http.MethodGet, "/metrics", nil)
	if !strings.Contains(w.Body.String(), `liftoff_webhooks_total{outcome="accepted",source="dockerhub"} 2`) {
		t.Errorf("/metrics:\n%s", w.Body)
	}
}

func TestMetricsShareRegistry(t *testing.T) {
	// A second server on the same registry (a restart in-process) shares the
	// counters instead of panicking.
	reg := prometheus.NewRegistry()
	opts := Options{Catalogue: func() Catalogue { return nil }, Deployer: &fakeDeployer{}, Registerer: reg}
	a, b := New(opts), New(opts)
	w := httptest.NewRecorder()
	b.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/dockerhub/"+testToken, nil))
	if got := webhookCount(t, reg, "dockerhub", "unavailable"); got != 1 {
		t.Errorf("the second server's delivery counted %v times on the registry, want 1 (it has counters of its own)", got)
	}
	if a.gatherer != reg {
		t.Error("the Registerer is not the Gatherer")
	}
}

func TestCatalogueSwap(t *testing.T) {
	// The catalogue is asked for per request, so a reload applies to the next
	// delivery.
	var mu sync.Mutex
	current := catalogue()
	h := newHarness(t, func(o *Options) {
		o.Catalogue = func() Catalogue { mu.Lock(); defer mu.Unlock(); return current }
	})
	if w := h.post(fixture(t, "push.json")); w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	reloaded := catalogue()
	reloaded.HookAuthFn = func(string, string) bool { return false } // token rotated
	mu.Lock()
	current = reloaded
	mu.Unlock()
	if w := h.post(fixture(t, "push.json")); w.Code != http.StatusNotFound {
		t.Errorf("after reload: %d %s", w.Code, w.Body)
	}
}

func TestPanicRecovered(t *testing.T) {
	h := newHarness(t, nil)
	h.cat.MatchFn = func(string, string) deployments.MatchResult { panic("boom") }
	w := h.post(fixture(t, "push.json"))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "internal error") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"panic":"boom"`) || !strings.Contains(logs, `"stack":`) {
		t.Errorf("panic not logged:\n%s", logs)
	}
	if w := h.do(http.MethodGet, "/healthz", nil); w.Code != http.StatusOK {
		t.Errorf("after a panic: %d", w.Code)
	}
}

func TestLogs(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.HookRateLimit = 50 })
	push := fixture(t, "push.json")
	other := "tok-0000another0secret0value0000"

	h.post(push)
	h.post(`{"push_data": {"tag": "-bad"}, "repository": {"repo_name": "pmpl/dblood"}}`)
	h.post(push + strings.Repeat(" ", 2<<20))
	h.do(http.MethodGet, "/hooks/dockerhub/"+testToken, nil)
	h.do(http.MethodPost, "/hooks/dockerhub/"+other, strings.NewReader(push))
	h.do(http.MethodPost, "/hooks/dockerhub/"+testToken+"/extra", nil)
	h.do(http.MethodPost, "/hooks/"+testToken+"/dockerhub", nil) // swapped by mistake
	h.do(http.MethodPost, "/hooks/"+testToken, nil)
	h.do(http.MethodPost, "/./hooks/dockerhub/"+testToken, nil)
	h.do(http.MethodPost, "/hooks/dockerhub/"+testToken+"?token="+testToken, strings.NewReader(push))
	h.srv.SetDraining(true)
	h.post(push)
	h.srv.SetDraining(false)
	h.cat.MatchFn = func(string, string) deployments.MatchResult { panic("boom") }
	h.post(push)

	logs := h.logs.String()
	for _, secret := range []string{testToken, other} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token is in the logs:\n%s", logs)
		}
	}
	// The delivery line says what happened.
	for _, want := range []string{
		`"source":"dockerhub"`, `"repo":"docker.io/pmpl/dblood"`, `"tag":"staging"`, `"pusher":"pmpl-ci"`,
		`"accepted":["dblood-staging"]`, `"ignored":1`, `"status":202`, `"outcome":"accepted"`,
		`"route":"/hooks/{source}/{token}"`, `"message":"webhook"`, `"outcome":"invalid"`, `"reason":"invalid payload: push_data.tag`,
		`"outcome":"unauthorized"`, `"outcome":"too_large"`, `"outcome":"unavailable"`, `"message":"http request"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}

func TestServe(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ShutdownTimeout = 5 * time.Second })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, ln) }()

	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Post(base+"/hooks/dockerhub/"+testToken, "application/json", strings.NewReader(fixture(t, "push.json")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("hook: %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if !h.srv.hooks.Draining() {
		t.Error("not draining after shutdown")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestServeMetrics(t *testing.T) {
	h := newHarness(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.srv.ServeMetrics(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeMetrics: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	for path, want := range map[string]int{"/metrics": http.StatusOK, "/hooks/dockerhub/x": http.StatusNotFound} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestNewRequires(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New without a Deployer did not panic")
		}
	}()
	New(Options{Catalogue: func() Catalogue { return nil }, Logger: zerolog.Nop()})
}

// TestHookRateLimitZeroIsDefault: HookRateLimit 0 (hook_rate_limit 0 in
// the config) is DefaultHookRateLimit deliveries a minute per client; the
// webhooks' own tests (TestHookRateLimitDefault) hold what the limit does.
func TestHookRateLimitZeroIsDefault(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.HookRateLimit = 0 })
	for i := range DefaultHookRateLimit {
		if w := h.do(http.MethodPost, "/hooks/dockerhub/guess", nil); w.Code != http.StatusNotFound {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	if w := h.post(fixture(t, "push.json")); w.Code != http.StatusTooManyRequests {
		t.Errorf("after %d guesses: %d, want 429", DefaultHookRateLimit, w.Code)
	}
}

// TestDeployEngineOnce: the deploy engine given once as DeployEngine is
// also what queues the hooks' deploys and what /readyz asks.
func TestDeployEngineOnce(t *testing.T) {
	eng := newFakeEngine()
	h := newHarness(t, func(o *Options) {
		o.Deployer, o.DeployEngine, o.History = nil, eng, &fakeHistory{}
	})
	if w := h.post(fixture(t, "push.json")); w.Code != http.StatusAccepted || len(eng.requests()) != 1 {
		t.Errorf("hook: %d %s; the engine queued %d", w.Code, w.Body, len(eng.requests()))
	}
	if w := h.do(http.MethodGet, "/readyz", nil); w.Code != http.StatusOK {
		t.Errorf("readyz: %d %s", w.Code, w.Body)
	}
	if h.srv.health != eng {
		t.Error("/readyz does not ask the deploy engine")
	}
}

// fakeHealth is a Health whose down deployments are fixed.
type fakeHealth map[string]error

func (f fakeHealth) Down() map[string]error { return f }

// TestHookJournalFails: a push the engine cannot record is not promised:
// 503 so that the sender retries, the journal's error only in the log.
func TestHookJournalFails(t *testing.T) {
	h := newHarness(t, nil)
	h.dep.fail = errors.New("history /data/liftoff.db: disk I/O error")
	w := h.post(fixture(t, "push.json"))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "could not be recorded, retry later") ||
		strings.Contains(w.Body.String(), "liftoff.db") {
		t.Errorf("%d %s, want 503 saying the push could not be recorded, without the journal's error", w.Code, w.Body)
	}
	if !strings.Contains(h.logs.String(), "disk I/O error") {
		t.Errorf("the journal's error is not in the log:\n%s", h.logs.String())
	}
}
