package daemon_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// cooldownConfig: NAME-web deploys staging pushes whose image is at least
// 15s old. %[1]s prefix, %[2]s mirror, %[3]s hook token.
const cooldownConfig = configHead + `api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
environments:
  staging: {}
deployments:
  - name: %[1]s-web
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 200ms}
    min_image_age: 15s
`

// cooling reads the deployment's cooling push from the API.
func (d *daemon) cooling(name string) *apiv1.Push {
	d.t.Helper()
	status, raw := d.apiRaw(tokRead, "GET", "/api/v1/deployments/"+name, "")
	var v apiv1.DeploymentDetail
	if status != 200 || json.Unmarshal(raw, &v) != nil {
		d.t.Fatalf("GET deployment %s: %d %s", name, status, raw)
	}
	return v.Cooling
}

// TestMinImageAgeWaitsAcrossARestart: on the real engine, an image built
// an hour ago deploys at once; one built now waits (deferred, nothing
// stopped, shown as cooling until its created time plus min_image_age),
// the wait survives a restart of liftoff, and the push then deploys under
// its own delivery.
func TestMinImageAgeWaitsAcrossARestart(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, cooldownConfig)
	name := d.prefix + "-web"

	d.pushImage("staging", testenv.AppImage{Version: "v1", Created: time.Now().Add(-time.Hour)})
	d.deployOK("staging")
	if c := d.cooling(name); c != nil {
		t.Fatalf("cooling after an old image deployed: %+v", c)
	}

	created := time.Now()
	d.pushImage("staging", testenv.AppImage{Version: "v2", Created: created})
	r := d.deploy("staging")
	if r.Outcome != deploy.Deferred {
		t.Fatalf("a young image: %s %v, want deferred", r.Outcome, r.Err)
	}
	want := created.Add(15 * time.Second)
	c := d.cooling(name)
	if c == nil || c.Delivery != r.Request.Delivery || c.Until.Sub(want).Abs() > time.Second {
		t.Fatalf("cooling: %+v, want delivery %s until %s", c, r.Request.Delivery, want)
	}
	d.serving(name, "v1")
	d.only(name)

	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d.launch(d.configPath, d.lookup, liftoff.Options{})
	if again := d.cooling(name); again == nil || again.Delivery != r.Request.Delivery || !again.Until.Equal(c.Until) {
		t.Fatalf("cooling after a restart: %+v, want delivery %s until %s", again, r.Request.Delivery, c.Until)
	}

	done := d.next()
	if done.Outcome != deploy.Succeeded || done.Request.Delivery != r.Request.Delivery {
		t.Fatalf("after the cool-down: %s %v (delivery %s, want %s)", done.Outcome, done.Err, done.Request.Delivery, r.Request.Delivery)
	}
	if !time.Now().After(c.Until) {
		t.Errorf("deployed before %s", c.Until)
	}
	d.serving(name, "v2")
	d.only(name)
	if c := d.cooling(name); c != nil {
		t.Errorf("still cooling after the deploy: %+v", c)
	}
	var ds apiv1.Deploys
	status, raw := d.apiRaw(tokRead, "GET", "/api/v1/deploys?delivery="+r.Request.Delivery, "")
	if status != 200 || json.Unmarshal(raw, &ds) != nil {
		t.Fatalf("deploys of the delivery: %d %s", status, raw)
	}
	var outcomes []string
	for _, x := range ds.Deploys {
		if x.Outcome != nil {
			outcomes = append(outcomes, *x.Outcome)
		}
	}
	if len(outcomes) != 2 || outcomes[0] != "succeeded" || outcomes[1] != "deferred" {
		t.Errorf("the delivery's deploys, newest first: %v, want [succeeded deferred]", outcomes)
	}
}

// approvedCoolConfig: NAME-prod needs approval and deploys images at
// least 15s old. %[1]s prefix, %[2]s mirror, %[3]s hook token.
const approvedCoolConfig = configHead + `api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
  - {name: lead, token: ` + tokApprover + `, scopes: ["approve:production"]}
environments:
  production:
    approval: {required: true, timeout: 10m}
deployments:
  - name: %[1]s-prod
    image: acme/%[1]s
    tags: [latest]
    environment: production
    stop_timeout: 1s
    health: {min_uptime: 200ms}
    min_image_age: 15s
`

// TestApprovedPushCoolsDownAcrossRestarts: on the real engine and the
// real history file, a push that needs approval and whose image is young
// keeps its request id and digest pending across a restart; approved, it
// cools down with its approver, across another restart, while the tag
// moves to another image; then it deploys the digest approved, under the
// same request, without asking for approval again.
func TestApprovedPushCoolsDownAcrossRestarts(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, approvedCoolConfig)
	name := d.prefix + "-prod"
	detail := func() apiv1.DeploymentDetail {
		t.Helper()
		status, raw := d.apiRaw(tokRead, "GET", "/api/v1/deployments/"+name, "")
		var v apiv1.DeploymentDetail
		if status != 200 || json.Unmarshal(raw, &v) != nil {
			t.Fatalf("GET deployment %s: %d %s", name, status, raw)
		}
		return v
	}
	restart := func() {
		t.Helper()
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
		d.launch(d.configPath, d.lookup, liftoff.Options{})
	}

	digest := d.pushImage("latest", testenv.AppImage{Version: "v2", Created: time.Now()})
	if status, ans := d.hook("latest"); status != http.StatusAccepted || ans.Pending != 1 {
		t.Fatalf("push: %d %+v, want one pending", status, ans)
	}
	p := detail().Pending
	if p == nil || p.Request == 0 || p.Digest != digest {
		t.Fatalf("pending: %+v, want a request of %s", p, digest)
	}
	restart()
	if again := detail().Pending; again == nil || again.Request != p.Request || again.Digest != digest {
		t.Fatalf("pending after a restart: %+v, want request %d of %s", again, p.Request, digest)
	}

	d.apiOK(202, tokApprover, "POST", "/api/v1/deployments/"+name+"/approve", fmt.Sprintf(`{"request": %d}`, p.Request))
	if r := d.next(); r.Outcome != deploy.Deferred || r.Digest != digest || r.Request.ID != p.Request {
		t.Fatalf("approved young image: %s %s request %d %v, want deferred", r.Outcome, r.Digest, r.Request.ID, r.Err)
	}
	c := detail().Cooling
	if c == nil || c.Request != p.Request || c.Digest != digest || c.ApprovedBy != "lead" {
		t.Fatalf("cooling: %+v, want request %d of %s approved by lead", c, p.Request, digest)
	}
	d.pushImage("latest", testenv.AppImage{Version: "v3", Created: time.Now().Add(-time.Hour)})
	restart()
	if v := detail(); v.Pending != nil || v.Cooling == nil || *v.Cooling != *c {
		t.Fatalf("after a restart: pending %+v cooling %+v, want still cooling as %+v", v.Pending, v.Cooling, c)
	}

	r := d.next()
	if r.Outcome != deploy.Succeeded || r.Digest != digest || r.Request.ID != p.Request || r.Request.Actor != "lead" {
		t.Fatalf("after the cool-down: %s %s request %d by %q %v, want %s, request %d, lead",
			r.Outcome, r.Digest, r.Request.ID, r.Request.Actor, r.Err, digest, p.Request)
	}
	d.serving(name, "v2")
	d.only(name)
	if v := detail(); v.Pending != nil || v.Cooling != nil {
		t.Errorf("after the deploy: pending %+v cooling %+v", v.Pending, v.Cooling)
	}
}

// TestAppApprovedOnceCoolsDownOnce: on the real engine, an app of three
// processes whose environment requires approval and whose images must be
// 10s old: a young push is one pending push, approved once, one deferred
// deploy with nothing stopped, then one deploy that brings every process
// to the approved version, under the same request.
func TestAppApprovedOnceCoolsDownOnce(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o777); err != nil { // the containers write as root
		t.Fatal(err)
	}
	config := strings.NewReplacer("DATADIR", data, "    ORDER\n", "    min_image_age: 10s\n",
		"    env: {STAGE: staging}\n", "    env: {STAGE: staging}\n    approval: {required: true, timeout: 10m}\n",
		"scopes: [read]}\n", "scopes: [read]}\n  - {name: lead, token: "+tokApprover+", scopes: [\"approve:staging\"]}\n").Replace(appConfig)
	d := startDaemon(t, config)
	app := d.prefix + "-app"
	approve := func(version string) deploy.Result {
		t.Helper()
		if status, ans := d.hook("staging"); status != http.StatusAccepted || ans.Pending != 1 {
			t.Fatalf("push of %s: %d %+v, want one pending", version, status, ans)
		}
		got := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
		p, _ := got["pending"].(map[string]any)
		request, _ := p["request"].(float64)
		if request == 0 {
			t.Fatalf("pending of %s: %v", version, got["pending"])
		}
		d.apiOK(202, tokApprover, "POST", "/api/v1/deployments/"+app+"/approve", fmt.Sprintf(`{"request": %d}`, int64(request)))
		return d.next()
	}

	d.pushImage("staging", testenv.AppImage{Version: "v1", Created: time.Now().Add(-time.Hour)})
	if r := approve("v1"); r.Outcome != deploy.Succeeded {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	before := d.onVersion("v1")

	digest := d.pushImage("staging", testenv.AppImage{Version: "v2", Created: time.Now()})
	deferred := approve("v2")
	if deferred.Outcome != deploy.Deferred || deferred.Digest != digest {
		t.Fatalf("v2: %s %s %v, want deferred", deferred.Outcome, deferred.Digest, deferred.Err)
	}
	if c := d.cooling(app); c == nil || c.Request != deferred.Request.ID || c.ApprovedBy != "lead" {
		t.Fatalf("cooling: %+v, want request %d approved by lead", c, deferred.Request.ID)
	}
	if now := d.onVersion("v1"); !maps.Equal(now, before) {
		t.Errorf("containers changed while the app cools down: %v, were %v", now, before)
	}

	r := d.next()
	if r.Outcome != deploy.Succeeded || r.Digest != digest || r.Request.ID != deferred.Request.ID {
		t.Fatalf("after the cool-down: %s %s request %d %v, want request %d", r.Outcome, r.Digest, r.Request.ID, r.Err, deferred.Request.ID)
	}
	d.onVersion("v2")
	if got := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, ""); got["pending"] != nil || got["cooling"] != nil {
		t.Errorf("after the deploy: pending %v cooling %v", got["pending"], got["cooling"])
	}
	d.quiet()
}
