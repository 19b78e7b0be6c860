package cli

import (
	"strings"
	"testing"
	"time"
)

// TestCLIStatusShowsCooling: a push whose image is younger than
// min_image_age is marked COOLING, with when it deploys.
func TestCLIStatusShowsCooling(t *testing.T) {
	t.Parallel()
	now := time.Now()
	until := now.Add(7*time.Minute + 30*time.Second)
	f := newFakeDaemon(t)
	f.on("GET /api/v1/deployments/web-prod", 200, `{"name":"web-prod","environment":"production","paused":false,
 "running":null,"down":null,"last":null,"pending":null,"held":null,
 "cooling":{"delivery":"d-cool","tag":"v2","pusher":"bob","received":"`+ts(now.Add(-2*time.Minute))+`","until":"`+ts(until)+`"},
 "history":[]}`)
	r := runClientTest(t, f.srv.URL, nil, "status", "web-prod")
	want := "web-prod: COOLING v2, pushed 2m ago: its image is younger than min_image_age; deploys in 7m (" + until.UTC().Format(time.RFC3339)
	if r.code != ExitOK || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "COOLING") {
		t.Errorf("status web-prod: %s\nwant %q", r, want)
	}
}

// TestCLIStatusShowsWhoApprovedTheCoolingPush: an approved push cooling
// down says who approved it (it deploys without asking again).
func TestCLIStatusShowsWhoApprovedTheCoolingPush(t *testing.T) {
	t.Parallel()
	now := time.Now()
	until := now.Add(7*time.Minute + 30*time.Second)
	f := newFakeDaemon(t)
	f.on("GET /api/v1/deployments/api", 200, `{"name":"api","environment":"production","paused":false,
 "running":null,"down":null,"last":null,"pending":null,"held":null,
 "cooling":{"request":6,"delivery":"d-cool","tag":"v2","digest":"`+digestA+`","pusher":"bob","received":"`+ts(now.Add(-2*time.Minute))+`","until":"`+ts(until)+`","approved_by":"lead"},
 "history":[]}`)
	r := runClientTest(t, f.srv.URL, nil, "status", "api")
	if want := "pushed 2m ago, approved by lead: its image is younger than min_image_age; deploys in 7m"; r.code != ExitOK || !strings.Contains(r.stdout, want) {
		t.Errorf("status api: %s\nwant %q", r, want)
	}
}

// TestCLIHistoryVouchedAndMismatch: a deploy let through by a revision
// says which deploy vouched for it; one whose tag resolved to another
// digest than the sender reported says what the sender said.
func TestCLIHistoryVouchedAndMismatch(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	vouched := strings.Replace(deployJSONText(12, "web-prod", "v2", digestA, "dockerhub", "", "alice", "succeeded", "", now.Add(-time.Minute), time.Second, ""),
		`"id":12,`, `"id":12,"vouched_by":{"id":9,"deployment":"web-staging","revision":"3f9a0c1d2e4b5a69"},`, 1)
	mismatch := strings.Replace(deployJSONText(11, "web-prod", "v1", digestA, "generic", "", "ci", "succeeded", "", now.Add(-time.Hour), time.Second, ""),
		`"id":11,`, `"id":11,"reported_digest":"`+digestB+`","digest_mismatch":true,`, 1)
	f.on("GET /api/v1/deploys", 200, `{"deploys":[`+vouched+`,`+mismatch+`],"next":null}`)
	r := runClientTest(t, f.srv.URL, nil, "history", "web-prod")
	if r.code != ExitOK || !strings.Contains(r.stdout, "(revision 3f9a0c1d2e4…, vouched by #9 of web-staging)") ||
		!strings.Contains(r.stdout, "(sender said "+digestB[7:19]+")") {
		t.Errorf("history web-prod: %s", r)
	}
}

// TestCLIWaitThroughACoolDown: a deploy deferred by min_image_age ends
// unsettled; approve --wait says the push cools down, not that it was
// interrupted, and follows the same delivery to its deploy.
func TestCLIWaitThroughACoolDown(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web-staging/approve", 202, `{"delivery":"d-50"}`)
	deferred := strings.Replace(ended(now, "deferred", "min_image_age 10m0s: the image was built 2m0s ago; it deploys at 2026-12-07T08:00:00Z"),
		`"settled":true`, `"settled":false`, 1)
	done := strings.Replace(ended(now, "succeeded", ""), `"id":50`, `"id":51`, 1)
	script := &deploysScript{answers: []string{deploysPage(deferred), deploysPage(deferred), deploysPage(done)}}
	f.mux.HandleFunc("GET /api/v1/deploys", script.serve)
	r := runClientTest(t, f.srv.URL, nil, "approve", "web-staging", "--request", "50", "--wait")
	if r.code != ExitOK {
		t.Fatalf("approve --wait through a cool-down: %s", r)
	}
	if want := "cooling down: min_image_age 10m0s: the image was built 2m0s ago; it deploys at 2026-12-07T08:00:00Z"; !strings.Contains(r.stdout, want) ||
		strings.Count(r.stdout, "cooling down") != 1 || strings.Contains(r.stdout, "interrupted") {
		t.Errorf("stdout: want %q once and no interruption:\n%s", want, r.stdout)
	}
}
