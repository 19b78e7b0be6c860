package daemon_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/notify"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// appNotifyConfig is an app of two processes, NAME-app (worker, then
// web), whose deploys notify a JSON receiver (AUDIT_URL) and a Slack one
// (TEAM_URL). The format verbs are those of e2eConfig; %[4]s, the secret
// file, is the signing key.
const appNotifyConfig = configHead + `notifications:
  - {name: audit, url: AUDIT_URL, format: json, events: [succeeded, rolled_back], secret_file: %[4]s}
  - {name: team, url: TEAM_URL, format: slack, events: [rolled_back]}
environments:
  staging: {}
deployments:
  - name: %[1]s-app
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 300ms}
    processes:
      web: {command: [web]}
      worker: {command: [worker]}
`

// TestAppNotification: the message of a real deploy of an app lists each
// replica of each process with its container and the digest it runs
// after the deploy: the new one on success; after a worker that exits at
// once, the previous one everywhere, and the error names the worker.
func TestAppNotification(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	audit, team := newE2EReceiver(t, nil), newE2EReceiver(t, nil)
	d := startDaemon(t, strings.NewReplacer("AUDIT_URL", audit.URL+"/"+notifyMarker,
		"TEAM_URL", team.URL+"/services/"+notifyMarker).Replace(appNotifyConfig))
	app := d.prefix + "-app"
	decode := func(c e2eCall) notify.Message {
		t.Helper()
		var m notify.Message
		if err := json.Unmarshal(c.body, &m); err != nil {
			t.Fatalf("message %s: %v", c.body, err)
		}
		return m
	}
	want := func(digest string) []notify.Process {
		return []notify.Process{
			{Process: "worker", Replica: 1, Container: app + "-worker-1", Digest: digest},
			{Process: "web", Replica: 1, Container: app + "-web-1", Digest: digest},
		}
	}

	v1 := d.push("staging", "v1")
	d.deployOK("staging")
	c := audit.next(t)
	if m := decode(c); m.Event != "succeeded" || m.Deployment != app || !slices.Equal(m.Processes, want(v1)) {
		t.Errorf("v1's message: %s, want processes %+v", c.body, want(v1))
	}

	d.push("staging", "v2", "TESTAPP_EXIT_ARG=worker")
	if r := d.deploy("staging"); r.Outcome != deploy.RolledBack {
		t.Fatalf("v2: %s %v, want rolled_back", r.Outcome, r.Err)
	}
	c = audit.next(t)
	if m := decode(c); m.Event != "rolled_back" || m.PreviousDigest != v1 || !strings.Contains(m.Error, "process worker") ||
		!slices.Equal(m.Processes, want(v1)) {
		t.Errorf("v2's message: %s, want processes %+v", c.body, want(v1))
	}
	for _, p := range want(v1) {
		if got := d.eng.Inspect(t, p.Container).Config.Labels[deploy.LabelDigest]; got != v1 {
			t.Errorf("%s runs %s, the message said %s", p.Container, got, v1)
		}
	}
	text := slackText(t, team.next(t))
	short := strings.TrimPrefix(v1, "sha256:")[:12]
	if !strings.HasSuffix(text, "\n• worker.1 `"+app+"-worker-1` runs "+short+"\n• web.1 `"+app+"-web-1` runs "+short) {
		t.Errorf("team's message:\n%s\nwant a line per process on %s", text, short)
	}
}
