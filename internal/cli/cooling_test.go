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
