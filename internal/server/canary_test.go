package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// canaryEngine is the page's fake engine with a canary of web-prod in
// progress.
type canaryEngine struct{ *fakeEngine }

var _ control.Canaries = canaryEngine{}

func (canaryEngine) Canary(d string) (deploy.CanaryStatus, bool) {
	return deploy.CanaryStatus{Deployment: d, Delivery: "d-canary", Tag: "v3", Digest: digestV2, Previous: digestV1,
		Steps: []int{5, 25, 50}, Step: 1, Weight: 25, Started: testNow.Add(-time.Minute), StepSince: testNow.Add(-20 * time.Second),
		Old: deploy.Window{Requests: 2660, P99: 5 * time.Millisecond},
		New: deploy.Window{Requests: 140, Errors: 3, ErrorRate: 3.0 / 140, P99: 25 * time.Millisecond}}, d == "web-prod"
}

func (e canaryEngine) PromoteCanary(_ context.Context, d, actor string) error {
	return e.end("promote", d, actor)
}

func (e canaryEngine) AbortCanary(_ context.Context, d, actor string) error {
	return e.end("abort", d, actor)
}

func (e canaryEngine) end(what, d, actor string) error {
	if d != "web-prod" {
		return deploy.ErrNoCanary
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "canary "+what+" "+d+" "+actor)
	return nil
}

// TestUICanary: the page shows a canary in progress on its deployment's
// card, with both sides' figures, and nothing on the others.
func TestUICanary(t *testing.T) {
	t.Parallel()
	u := &uiHarness{eng: newFakeEngine(), hist: &fakeHistory{}, polls: fakePolls{}}
	u.cfg.Store(parseUIConfig(t, uiConfig))
	u.harness = newHarness(t, func(o *Options) {
		o.Catalogue = func() Catalogue { return u.cfg.Load() }
		o.DeployEngine, o.History, o.Polls = canaryEngine{u.eng}, u.hist, u.polls
		o.Now = func() time.Time { return testNow }
	})
	b := u.browser(t)
	b.login(uiRead)
	page := b.get("/").Body.String()
	for _, want := range []string{
		"<strong>canary:</strong> v3",
		"at step 2 of 3\n      (25% of clients) since",
		"20s ago",
		"new: 3 of 140 answered 5xx (2.14%), p99 25ms",
		"old: 0 of 2660 answered 5xx (0.00%), p99 5ms",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the overview lacks %q", want)
		}
	}
	if n := strings.Count(page, `class="canary"`); n != 1 {
		t.Errorf("%d canaries on the overview, want web-prod's only", n)
	}
	if d := b.get("/deployments/web-prod").Body.String(); !strings.Contains(d, "new: 3 of 140 answered 5xx") {
		t.Error("web-prod's page shows no canary")
	}
	if strings.Contains(page, "Promote canary") {
		t.Error("a reader is offered the canary's buttons")
	}

	// Someone who may deploy to production gets the buttons, and they work.
	admin := u.browser(t)
	admin.login(uiAdmin)
	if page := admin.get("/").Body.String(); !strings.Contains(page, `action="/deployments/web-prod/canary/promote"`) ||
		!strings.Contains(page, `action="/deployments/web-prod/canary/abort"`) {
		t.Error("no Promote and Abort buttons for an admin")
	}
	csrf := admin.csrf()
	w := admin.post("/deployments/web-prod/canary/abort", url.Values{"csrf": {csrf}, "from": {"deployment"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/deployments/web-prod" {
		t.Fatalf("abort: %d %s", w.Code, w.Header().Get("Location"))
	}
	if d := admin.get("/deployments/web-prod").Body.String(); !strings.Contains(d, "Aborted the canary of web-prod") {
		t.Error("the page does not say the canary was aborted")
	}
	w = admin.post("/deployments/web-staging/canary/promote", url.Values{"csrf": {csrf}})
	if page := admin.get("/").Body.String(); w.Code != http.StatusSeeOther || !strings.Contains(page, "web-staging has no canary in progress") {
		t.Errorf("promote without a canary: %d, the page does not say why", w.Code)
	}
	if w := b.post("/deployments/web-prod/canary/promote", url.Values{"csrf": {b.csrf()}}); w.Code == http.StatusSeeOther && !strings.Contains(b.get("/").Body.String(), "lacks scope") {
		t.Errorf("a reader's promote: %d", w.Code)
	}
	u.eng.mu.Lock()
	defer u.eng.mu.Unlock()
	if !slices.Equal(u.eng.calls, []string{"canary abort web-prod root"}) {
		t.Errorf("engine calls %v", u.eng.calls)
	}
}
