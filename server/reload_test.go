package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReloadIsLoopbackOnly(t *testing.T) {
	calls := 0
	var result error
	h := newHarness(t, func(o *Options) {
		o.Reload = func() error { calls++; return result }
	})
	post := func(remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/-/reload", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(w, r)
		return w
	}
	if w := post("192.0.2.1:1234"); w.Code != http.StatusForbidden || calls != 0 {
		t.Errorf("from elsewhere: %d, %d reloads", w.Code, calls)
	}
	if w := post("127.0.0.1:1234"); w.Code != http.StatusOK || calls != 1 {
		t.Errorf("from loopback: %d %s, %d reloads", w.Code, w.Body, calls)
	}
	result = errors.New("deployments[0].tags[0]: invalid glob")
	if w := post("[::1]:1234"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "configuration kept: deployments[0].tags[0]") {
		t.Errorf("invalid file: %d %s", w.Code, w.Body)
	}
	if w := h.do(http.MethodGet, "/-/reload", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}
}

func TestNoReloadRouteWithoutReloader(t *testing.T) {
	h := newHarness(t, nil)
	if w := h.do(http.MethodPost, "/-/reload", nil); w.Code != http.StatusNotFound {
		t.Errorf("POST /-/reload without a reloader: %d", w.Code)
	}
}

func TestOnDeliverySeesQueuedDeliveries(t *testing.T) {
	var got []Delivery
	h := newHarness(t, func(o *Options) { o.OnDelivery = func(d Delivery) { got = append(got, d) } })
	if w := h.post(fixture(t, "dockerhub_push.json")); w.Code != http.StatusAccepted {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	if len(got) != 1 || got[0].Source != "dockerhub" || got[0].Image != "docker.io/pmpl/dblood" || got[0].Tag != "staging" ||
		len(got[0].Accepted) != 1 || got[0].ID == "" {
		t.Errorf("deliveries = %+v", got)
	}
	// A push nobody deploys is not recorded.
	h.post(strings.Replace(fixture(t, "dockerhub_push.json"), `"tag": "staging"`, `"tag": "nobody"`, 1))
	if len(got) != 1 {
		t.Errorf("unmatched push recorded: %+v", got)
	}
}

func TestMetricsElsewhere(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MetricsElsewhere = true })
	if w := h.do(http.MethodGet, "/metrics", nil); w.Code != http.StatusNotFound {
		t.Errorf("/metrics on the main handler: %d", w.Code)
	}
}
