package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

func TestReloadIsLoopbackOnly(t *testing.T) {
	calls := 0
	var result error
	h := newHarness(t, func(o *Options) {
		o.Reload = func() error { calls++; return result }
	})
	post := func(remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/-/reload", nil)
		r.RemoteAddr, r.Host = remote, "127.0.0.1:8080"
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

func TestOnDeliverySeesEveryDelivery(t *testing.T) {
	var got []deploy.Delivery
	h := newHarness(t, func(o *Options) { o.OnDelivery = func(d deploy.Delivery) { got = append(got, d) } })
	if w := h.post(fixture(t, "push.json")); w.Code != http.StatusAccepted {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	if len(got) != 1 || got[0].Source != "dockerhub" || got[0].Image != "docker.io/pmpl/dblood" || got[0].Tag != "staging" ||
		len(got[0].Accepted) != 1 || got[0].ID == "" {
		t.Errorf("deliveries = %+v", got)
	}
	// A push nobody deploys is recorded too, with what it did not deploy.
	h.post(strings.Replace(fixture(t, "push.json"), `"tag": "staging"`, `"tag": "nobody"`, 1))
	if len(got) != 2 || got[1].Tag != "nobody" || len(got[1].Accepted) != 0 {
		t.Errorf("unmatched push: %+v", got)
	}
	// One the engine could not record is not.
	h.dep.fail = errors.New("disk full")
	h.post(fixture(t, "push.json"))
	if len(got) != 2 {
		t.Errorf("a push answered 503 recorded: %+v", got)
	}
}

// TestHeldAndPendingPushes: pushes a paused deployment holds, or one that
// awaits approval, are answered 202 with their count; the deployment and
// the reason go to the history.
func TestHeldAndPendingPushes(t *testing.T) {
	var got []deploy.Delivery
	h := newHarness(t, func(o *Options) { o.OnDelivery = func(d deploy.Delivery) { got = append(got, d) } })
	h.dep.dispose = map[string]deploy.Disposition{"dblood-staging": deploy.Held}
	w := h.post(fixture(t, "push.json"))
	if w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), `"accepted":0,"pending":0,"held":1,"ignored":1}`) ||
		!strings.Contains(fmt.Sprint(got[len(got)-1].Ignored), "{dblood-staging  paused: the push is held and deploys when the deployment is resumed}") {
		t.Errorf("held: %d %s, recorded %+v", w.Code, w.Body, got)
	}
	h.dep.dispose = map[string]deploy.Disposition{"dblood-staging": deploy.Pending}
	w = h.post(fixture(t, "push.json"))
	if w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), `"accepted":0,"pending":1,"held":0,"ignored":1}`) ||
		!strings.Contains(fmt.Sprint(got[len(got)-1].Ignored), "{dblood-staging  awaiting approval: deploys once someone with approve:") {
		t.Errorf("pending: %d %s, recorded %+v", w.Code, w.Body, got)
	}
}

func TestMetricsElsewhere(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MetricsElsewhere = true })
	if w := h.do(http.MethodGet, "/metrics", nil); w.Code != http.StatusNotFound {
		t.Errorf("/metrics on the main handler: %d", w.Code)
	}
}
