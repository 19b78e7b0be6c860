package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestListenOverrideAndLog: Options.Listen (serve's --listen,
// $LIFTOFF_LISTEN, which liftoff's image sets to 0.0.0.0:8080) replaces
// the config's listen, at start-up and at every reload (which then does
// not warn that listen changed); the start-up log says, a line per
// listener, which address serves what.
func TestListenOverrideAndLog(t *testing.T) {
	eng := testenv.Engine(t)
	d := &daemon{t: t, eng: eng, reg: eng.Registry(t), results: make(chan deploy.Result, 64), logs: &testenv.SyncBuffer{}}
	d.prefix = eng.UniqueName(t, "listen")
	d.repo = "acme/" + d.prefix
	path := filepath.Join(t.TempDir(), "liftoff.yaml")
	config := strings.Replace(configHead, "listen: 127.0.0.1:0", "listen: \":0\"", 1) + `metrics_listen: 127.0.0.1:0
api_tokens:
  - {name: ops, token: listen-test-token-0123456789abcdef, scopes: [read]}
`
	writeDaemonConfig(t, d, path, config)
	d.launch(path, func(string) (string, bool) { return "", false }, liftoff.Options{Listen: "127.0.0.1:0"})
	if !strings.HasPrefix(d.app.Addr(), "127.0.0.1:") {
		t.Fatalf("listening on %s: the config's \":0\" was not replaced by Options.Listen", d.app.Addr())
	}
	if err := d.app.Reload(); err != nil {
		t.Fatal(err)
	}
	// Run logs the listeners as it starts: wait for its lines.
	type line struct {
		Message, Key, Address string
		Serves                []string
	}
	var lines map[string]line
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lines = map[string]line{}
		sc := bufio.NewScanner(strings.NewReader(d.logs.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "listening" {
				lines[l.Key] = l
			}
		}
		if len(lines) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the start-up log does not name both listeners:\n%s", d.logs)
		}
	}
	main, metrics := lines["listen"], lines["metrics_listen"]
	if main.Address != "http://"+d.app.Addr() || !slices.Contains(main.Serves, "/hooks/") || !slices.Contains(main.Serves, "/api/v1") ||
		slices.Contains(main.Serves, "/metrics") {
		t.Errorf("listen's line: %+v", main)
	}
	if !strings.HasPrefix(metrics.Address, "http://127.0.0.1:") || !slices.Equal(metrics.Serves, []string{"/metrics"}) {
		t.Errorf("metrics_listen's line: %+v", metrics)
	}
	if strings.Contains(d.logs.String(), "applies only after a restart") {
		t.Errorf("the reload took the override for a change of listen:\n%s", d.logs)
	}
}

// TestApprovalBoundToWhatWasReviewed, on the real engine and a test
// registry: a push to production is resolved to a digest as it arrives,
// and the API shows it, pending, with its request id. Someone with the
// hook token moves the tag and pushes again seconds before the approver
// clicks: the approval of what the approver saw is a 409 naming the push
// now pending, and nothing deploys. Approved, the digest shown deploys,
// although the tag moves again after the approval, before the deploy
// looks at it.
func TestApprovalBoundToWhatWasReviewed(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	moved := make(chan struct{})
	var once sync.Once
	move := func() { once.Do(func() { close(moved) }) }
	d := startDaemonWith(t, apiConfig, daemonOptions{BeforeStep: func(deployment, step string) {
		if strings.HasSuffix(deployment, "-prod") && step == deploy.StepResolve {
			<-moved // the approved deploy starts only once the tag has moved
		}
	}})
	// Cleanups run last first: this one before the daemon stops, so that a
	// failure before the tag moves leaves no deploy blocked.
	t.Cleanup(move)
	app := d.prefix + "-prod"
	pending := func() (request float64, digest string) {
		t.Helper()
		got := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
		p, _ := got["pending"].(map[string]any)
		if p == nil {
			t.Fatalf("nothing pending: %v", got)
		}
		request, _ = p["request"].(float64)
		digest, _ = p["digest"].(string)
		return request, digest
	}

	reviewedDigest := d.push("latest", "reviewed")
	if status, _ := d.hook("latest"); status != http.StatusAccepted {
		t.Fatalf("push: %d", status)
	}
	reviewed, shown := pending()
	if reviewed == 0 || shown != reviewedDigest {
		t.Fatalf("pending: request %v digest %q, want an id and %s, what the tag pointed to", reviewed, shown, reviewedDigest)
	}

	swappedDigest := d.push("latest", "swapped")
	d.hook("latest")
	swapped, now := pending()
	if swapped == reviewed || now != swappedDigest {
		t.Fatalf("after the swap: request %v digest %q", swapped, now)
	}
	body := fmt.Sprintf(`{"request": %d, "digest": %q}`, int64(reviewed), reviewedDigest)
	status, raw := d.apiRaw(tokApprover, "POST", "/api/v1/deployments/"+app+"/approve", body)
	if status != http.StatusConflict || !strings.Contains(string(raw), fmt.Sprintf("request %d is (tag latest, digest %s)", int64(swapped), swappedDigest)) {
		t.Fatalf("approve what was reviewed, replaced since: %d %s, want 409 naming the push now pending", status, raw)
	}
	d.quiet()

	// The approver looks again and approves the push now pending; the tag
	// moves once more before the deploy begins.
	ans := d.apiOK(202, tokApprover, "POST", "/api/v1/deployments/"+app+"/approve", fmt.Sprintf(`{"request": %d}`, int64(swapped)))
	if ans["digest"] != swappedDigest {
		t.Errorf("approve answered %v, want digest %s", ans, swappedDigest)
	}
	d.push("latest", "later")
	move()
	r := d.next()
	if r.Outcome != deploy.Succeeded || r.Digest != swappedDigest {
		t.Fatalf("approved deploy: %s %s %v, want %s", r.Outcome, r.Digest, r.Err, swappedDigest)
	}
	d.serving(app, "swapped")
}
