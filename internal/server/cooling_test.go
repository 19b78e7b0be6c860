package server

import (
	"slices"
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

// TestPageShowsWhoApprovedTheCoolingPush: an approved push cooling down
// names its approver, in the API and on the card.
func TestPageShowsWhoApprovedTheCoolingPush(t *testing.T) {
	u := newUIHarness(t)
	u.eng.status["web-prod"] = deploy.Status{Cooling: &deploy.Request{ID: 12, Deployment: "web-prod", Image: "docker.io/acme/web",
		Tag: "latest", Digest: digestV2, Delivery: "d12", Pusher: "bob", Actor: "lead", Received: testNow.Add(-3 * time.Minute),
		State: deploy.Cooling, Until: testNow.Add(7 * time.Minute)}}
	var d apiv1.DeploymentDetail
	u.apiGet(t, "/api/v1/deployments/web-prod", &d)
	if c := d.Cooling; c == nil || c.Request != 12 || c.ApprovedBy != "lead" || c.Digest != digestV2 {
		t.Errorf("web-prod cooling: %+v, want request 12 of %s approved by lead", c, digestV2)
	}
	b := u.browser(t)
	b.login(uiRead)
	if body := b.get("/deployments/web-prod").Body.String(); !strings.Contains(body, ", approved by lead, is younger than min_image_age") {
		t.Errorf("web-prod's page does not say who approved the cooling push:\n%s", body)
	}
}

// TestPageShowsVouchAndMismatch: the deployment's history on the page
// names the deploy that vouched for a revision, and what a sender
// reported when the tag resolved to another digest; the API says both.
func TestPageShowsVouchAndMismatch(t *testing.T) {
	u := newUIHarness(t)
	started := testNow.Add(-time.Hour)
	u.hist.deploys = append([]deploy.Record{
		{ID: 7, Deployment: "web-prod", Environment: "production", Image: "docker.io/acme/web", Tag: "latest", Digest: digestV2,
			Trigger: "dockerhub", Delivery: "d7", Outcome: deploy.Succeeded, Started: started, Ended: started.Add(time.Second),
			VouchedBy: 5, VouchedFrom: "web-staging", VouchedRevision: "3f9a0c1d2e4b", Reported: digestV1},
	}, u.hist.deploys...)
	b := u.browser(t)
	b.login(uiRead)
	body := b.get("/deployments/web-prod").Body.String()
	for _, want := range []string{`class="vouched"`, "revision <code>3f9a0c1d2e4b</code>, vouched for by", `href="/deployments/web-staging#deploy-5">#5</a> of web-staging`,
		`class="mismatch"`, "sender said <code>111111111111</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("web-prod's page lacks %q", want)
		}
	}
	var ds apiv1.Deploys
	u.apiGet(t, "/api/v1/deploys?deployment=web-prod", &ds)
	i := slices.IndexFunc(ds.Deploys, func(d apiv1.Deploy) bool { return d.ID == 7 })
	if i < 0 {
		t.Fatalf("no deploy 7 in %+v", ds.Deploys)
	}
	d := ds.Deploys[i]
	if v := d.VouchedBy; v == nil || v.ID != 5 || v.Deployment != "web-staging" || v.Revision != "3f9a0c1d2e4b" || !d.DigestMismatch || d.ReportedDigest != digestV1 {
		t.Errorf("the deploy in the API: %+v (vouched by %+v)", d, d.VouchedBy)
	}
}
