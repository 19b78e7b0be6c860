package daemon_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// notifyConfig: NAME-staging, NAME-prod and NAME-canary (whose pushes
// await an approval nobody gives, and expire after 2s), and three
// receivers: audit (json, production's deploy outcomes), team (slack, the
// default events everywhere) and slow (slack, succeeded, a receiver that
// never answers). AUDIT_URL, TEAM_URL, SLOW_URL and KEYFILE are replaced
// by the test.
const notifyConfig = configHead + `public_url: https://liftoff.example.com/
api_tokens:
  - {name: lead, token: notify-e2e-token-0123456789abcdef, scopes: ["approve:canary"]}
notifications:
  - name: audit
    url: AUDIT_URL
    format: json
    events: [succeeded, failed, rolled_back, refused]
    environments: [production]
    secret_file: KEYFILE
  - {name: team, url: TEAM_URL, format: slack}
  - {name: slow, url: SLOW_URL, format: slack, events: [succeeded]}
environments:
  staging: {}
  production: {}
  canary:
    approval: {required: true, timeout: 2s}
deployments:
  - name: %[1]s-staging
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 500ms}
  - name: %[1]s-prod
    image: acme/%[1]s
    tags: [latest]
    environment: production
    stop_timeout: 1s
    health: {min_uptime: 500ms}
  - name: %[1]s-canary
    image: acme/%[1]s
    tags: [canary]
    environment: canary
    health: {min_uptime: 500ms}
`

// notifyMarker is in the path of every receiver's URL, notifyKey is the
// signing key: neither may appear in liftoff's log or answers.
const (
	notifyMarker = "notifyurlmarker-6e2c8a4f"
	notifyKey    = "notifykeymarker-0123456789abcdef"
)

// e2eReceiver is a notification receiver on 127.0.0.1.
type e2eReceiver struct {
	*httptest.Server
	bodies chan e2eCall
	n      atomic.Int32
}

type e2eCall struct {
	header http.Header
	body   []byte
}

func newE2EReceiver(t *testing.T, handle func(r *http.Request)) *e2eReceiver {
	t.Helper()
	rv := &e2eReceiver{bodies: make(chan e2eCall, 64)}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rv.n.Add(1)
		if !strings.Contains(r.URL.Path, notifyMarker) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if handle != nil {
			handle(r)
		}
		select {
		case rv.bodies <- e2eCall{header: r.Header.Clone(), body: body}:
		default:
		}
	}))
	t.Cleanup(rv.Close)
	return rv
}

// next is the next message the receiver got.
func (rv *e2eReceiver) next(t *testing.T) e2eCall {
	t.Helper()
	select {
	case c := <-rv.bodies:
		return c
	case <-time.After(90 * time.Second):
		t.Fatal("the receiver got nothing within 90s")
		return e2eCall{}
	}
}

func slackText(t *testing.T, c e2eCall) string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(c.body, &m); err != nil || len(m) != 1 {
		t.Fatalf("slack message %s: %v", c.body, err)
	}
	return m["text"]
}

// TestNotifications: real deploys notify a signed JSON receiver and a Slack
// one; events a receiver did not ask for send it nothing (each receiver's
// messages go in order, so the first it gets after them is the one it
// asked for); a receiver that never answers holds up no deploy.
func TestNotifications(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	audit, team := newE2EReceiver(t, nil), newE2EReceiver(t, nil)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	slow := newE2EReceiver(t, func(r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	keyFile := filepath.Join(t.TempDir(), "notify-key")
	if err := os.WriteFile(keyFile, []byte(notifyKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := strings.NewReplacer("AUDIT_URL", audit.URL+"/"+notifyMarker, "TEAM_URL", team.URL+"/services/"+notifyMarker,
		"SLOW_URL", slow.URL+"/"+notifyMarker, "KEYFILE", keyFile).Replace(notifyConfig)
	d := startDaemon(t, config)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the daemon stops: its drain then has nothing left to wait for
	staging, prod, canary := d.prefix+"-staging", d.prefix+"-prod", d.prefix+"-canary"

	// 1. Staging succeeds: only slow wants that (audit wants production,
	// team no success). slow never answers.
	d.push("staging", "v1")
	d.deployOK("staging")
	<-entered

	// 2. Production succeeds while slow still hangs on the first message:
	// the deploy's result comes all the same. audit gets it, signed.
	digest := d.push("latest", "v2")
	r := d.deployOK("latest")
	if slow.n.Load() == 0 {
		t.Fatal("slow was never called")
	}
	c := audit.next(t)
	mac := hmac.New(sha256.New, []byte(notifyKey))
	mac.Write(c.body)
	if got, want := c.header.Get("X-Liftoff-Signature"), "sha256="+hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
	if ua := c.header.Get("User-Agent"); !strings.HasPrefix(ua, "liftoff/") {
		t.Errorf("User-Agent %q", ua)
	}
	var doc map[string]any
	if err := json.Unmarshal(c.body, &doc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"event": "succeeded", "outcome": "succeeded", "deployment": prod, "environment": "production",
		"tag": "latest", "digest": digest, "previous_digest": "", "error": "", "delivery": r.Request.Delivery,
		"image": "docker.io/acme/" + d.prefix, "url": "https://liftoff.example.com/deployments/" + prod} {
		if doc[k] != want {
			t.Errorf("audit's first message: %s = %v, want %v (the staging success must not reach audit)", k, doc[k], want)
		}
	}
	if s, _ := doc["duration_seconds"].(float64); s <= 0 {
		t.Errorf("duration_seconds %v", doc["duration_seconds"])
	}

	// 3. Production rolls back: audit and team get it; team's first
	// message, as neither success was for it.
	d.push("latest", "v3", "TESTAPP_EXIT=3")
	if r := d.deploy("latest"); r.Outcome != deploy.RolledBack {
		t.Fatalf("v3: %s %v", r.Outcome, r.Err)
	}
	c = audit.next(t)
	if err := json.Unmarshal(c.body, &doc); err != nil || doc["event"] != "rolled_back" || doc["previous_digest"] != digest || doc["error"] == "" {
		t.Errorf("audit's second message: %s", c.body)
	}
	if text := slackText(t, team.next(t)); !strings.Contains(text, "*"+prod+"* (production) rolled back from `latest`") ||
		!strings.Contains(text, "|details>") {
		t.Errorf("team's first message: %s", text)
	}

	// 4. A canary push awaits approval, then expires: team hears of both.
	d.push("canary", "v4")
	if status, ans := d.hook("canary"); status != 202 || ans.Accepted != 0 {
		t.Fatalf("canary push: %d %+v", status, ans)
	}
	if text := slackText(t, team.next(t)); !strings.Contains(text, "*"+canary+"* (canary) awaits approval of `canary`") {
		t.Errorf("team's second message: %s", text)
	}
	if text := slackText(t, team.next(t)); !strings.Contains(text, "*"+canary+"* (canary) expired") {
		t.Errorf("team's third message: %s", text)
	}

	// Counted once answered.
	deadline := time.Now().Add(time.Minute)
	for _, line := range []string{`liftoff_notifications_total{outcome="sent",receiver="audit"} 2`,
		`liftoff_notifications_total{outcome="sent",receiver="team"} 3`, `liftoff_notifications_total{outcome="dropped",receiver="slow"} 0`} {
		for !strings.Contains(d.get("/metrics"), line+"\n") {
			if time.Now().After(deadline) {
				t.Fatalf("/metrics lacks %s:\n%s", line, grepLines(d.get("/metrics"), "liftoff_notifications_total"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// slow now answers: it gets its one message (and at most the tries of
	// it that timed out meanwhile).
	unblock()
	if text := slackText(t, slow.next(t)); !strings.Contains(text, "*"+staging+"* (staging) deployed `staging`") {
		t.Errorf("slow's message: %s", text)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if got := audit.n.Load(); got != 2 {
		t.Errorf("audit got %d requests, want 2", got)
	}
	if got := team.n.Load(); got != 3 {
		t.Errorf("team got %d requests, want 3", got)
	}
	log := d.logs.String()
	for _, s := range []string{notifyMarker, notifyKey} {
		if strings.Contains(log, s) {
			t.Errorf("the log holds %q", s)
		}
	}
	if !strings.Contains(log, `"receiver":"slow"`) {
		t.Error("nothing logged of slow's first message")
	}
}
