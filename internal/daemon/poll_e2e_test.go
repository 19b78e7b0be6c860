package daemon_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// pollConfig is one deployment that no webhook reaches: it polls its tag
// every second. %[1]s prefix, %[2]s mirror, %[3]s hook token.
const pollConfig = configHead + `api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
deployments:
  - name: %[1]s-polled
    image: acme/%[1]s
    tags: [staging]
    poll: {interval: 1s}
    stop_timeout: 1s
    health: {min_uptime: 300ms}
`

// A new digest under the polled tag deploys within two intervals, without
// a webhook, and the delivery says source poll; what runs is not
// delivered again.
func TestPollDeploysWithoutWebhook(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, pollConfig)
	app := d.prefix + "-polled"
	d.push("staging", "v1")
	if r := d.next(); r.Outcome != deploy.Succeeded || r.Request.Trigger != "poll" {
		t.Fatalf("first deploy: %s by %q: %v", r.Outcome, r.Request.Trigger, r.Err)
	}
	d.serving(app, "v1")

	digest := d.push("staging", "v2")
	pushed := time.Now() // the manifest is in the registry from here
	r := d.next()
	if r.Outcome != deploy.Succeeded || r.Request.Trigger != "poll" || r.Digest != digest {
		t.Fatalf("deploy after the push: %s by %q of %s: %v", r.Outcome, r.Request.Trigger, r.Digest, r.Err)
	}
	if took := r.Request.Received.Sub(pushed); took > 2*time.Second {
		t.Errorf("the poll delivered %s after the push, want within two intervals (2s)", took)
	}
	d.serving(app, "v2")
	d.quiet() // the next polls find what runs

	var found map[string]any
	for deadline := time.Now().Add(5 * time.Second); found == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		dl := d.apiOK(200, tokRead, "GET", "/api/v1/deliveries?limit=50", "")
		for _, x := range dl["deliveries"].([]any) {
			if m := x.(map[string]any); m["source"] == "poll" && m["tag"] == "staging" && strings.Contains(toString(m["accepted"]), app) {
				found = m
			}
		}
	}
	if found == nil {
		t.Fatal("no delivery of source poll in GET /api/v1/deliveries")
	}

	resp, err := http.Get(d.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`liftoff_polls_total{outcome="new",registry="docker.io"} 2`, "liftoff_poll_last_success_timestamp_seconds{deployment=\"" + app + "\"}"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func toString(v any) string {
	if l, ok := v.([]any); ok {
		var b strings.Builder
		for _, x := range l {
			s, _ := x.(string)
			b.WriteString(s + " ")
		}
		return b.String()
	}
	return ""
}
