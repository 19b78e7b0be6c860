package server

import (
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// TestAPIAndPageShowCooling: a push whose image is younger than
// min_image_age shows, with when it deploys, in the API and on the card;
// a deployment with none has no cooling at all.
func TestAPIAndPageShowCooling(t *testing.T) {
	u := newUIHarness(t)
	until := testNow.Add(7 * time.Minute)
	u.eng.status["web-staging"] = deploy.Status{Cooling: &deploy.Request{Deployment: "web-staging", Image: "docker.io/acme/web",
		Tag: "staging", Delivery: "d9", Pusher: "bob", Received: testNow.Add(-3 * time.Minute), State: deploy.Cooling, Until: until}}

	var d apiv1.DeploymentDetail
	u.apiGet(t, "/api/v1/deployments/web-staging", &d)
	if c := d.Cooling; c == nil || c.Tag != "staging" || c.Delivery != "d9" || !c.Until.Equal(until) {
		t.Errorf("web-staging cooling: %+v, want staging until %s", c, until)
	}
	var list apiv1.Deployments
	u.apiGet(t, "/api/v1/deployments", &list)
	for _, d := range list.Deployments {
		if (d.Cooling != nil) != (d.Name == "web-staging") {
			t.Errorf("%s: cooling %+v", d.Name, d.Cooling)
		}
	}

	b := u.browser(t)
	b.login(uiRead)
	body := b.get("/deployments/web-staging").Body.String()
	for _, want := range []string{`class="cooling"`, "cooling down: staging", "is younger than min_image_age", "deploys <time", "in 7m"} {
		if !strings.Contains(body, want) {
			t.Errorf("web-staging's page lacks %q", want)
		}
	}
	if body := b.get("/deployments/web-prod").Body.String(); strings.Contains(body, `class="cooling"`) {
		t.Error("web-prod's page shows a cooling push; it has none")
	}
}
