package notify

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// appResult is a deploy's result of the app shop (web and two workers)
// with outcome. Rolled back, worker.2, a replica new in this deploy,
// runs nothing.
func appResult(o deploy.Outcome) deploy.Result {
	r := result("shop", "production", o)
	r.Request.Image, r.Request.Deployment = "docker.io/acme/shop", "shop"
	after, added := r.Digest, r.Digest
	if o == deploy.RolledBack {
		after, added = r.Previous, ""
		r.Err = fmt.Errorf("process worker (container shop-worker-2): health gate: the container exited with code 3; every process is back on %s", r.Previous)
	}
	r.Processes = []deploy.ProcessResult{
		{Process: "worker", Replica: 1, Container: "shop-worker-1", Digest: after},
		{Process: "worker", Replica: 2, Container: "shop-worker-2", Digest: added},
		{Process: "web", Replica: 1, Container: "shop-web-1", Digest: after},
	}
	return r
}

// TestAppProcesses: the message of an app's deploy lists its processes,
// in the JSON document (each replica's process, replica, container and
// digest) and as a line each in Slack's text; a deployment without
// processes has processes null (TestJSONDocument) and no such line.
func TestAppProcesses(t *testing.T) {
	rv, slack := newReceiver(t, nil), newReceiver(t, nil)
	cfg := config(t, fmt.Sprintf(`public_url: https://liftoff.example.com
notifications:
  - {name: audit, url: "%s/hook", format: json, events: [rolled_back], secret_file: KEYFILE}
  - {name: team, url: "%s/services/x", format: slack, events: [succeeded, rolled_back]}
`, rv.URL, slack.URL))
	h := newHarness(t, cfg, Options{})
	h.n.Deployed(appResult(deploy.RolledBack))
	h.n.Deployed(appResult(deploy.Succeeded))
	h.n.Deployed(result("web", "production", deploy.Succeeded))

	m := decode(t, rv.next(t))
	r := appResult(deploy.RolledBack)
	want := []Process{
		{Process: "worker", Replica: 1, Container: "shop-worker-1", Digest: r.Previous},
		{Process: "worker", Replica: 2, Container: "shop-worker-2", Digest: ""},
		{Process: "web", Replica: 1, Container: "shop-web-1", Digest: r.Previous},
	}
	if m.Event != "rolled_back" || m.Deployment != "shop" || m.Digest != r.Digest || m.PreviousDigest != r.Previous ||
		m.Error != r.Err.Error() || !slices.Equal(m.Processes, want) {
		t.Errorf("rolled back: %+v\nprocesses %+v, want %+v", m, m.Processes, want)
	}

	rb := decodeSlack(t, slack.next(t))
	if want := "\n• worker.1 `shop-worker-1` runs fedcba987654\n• worker.2 `shop-worker-2` runs nothing\n• web.1 `shop-web-1` runs fedcba987654"; !strings.HasSuffix(rb, want) ||
		!strings.HasPrefix(rb, ":leftwards_arrow_with_hook: *shop* (production) rolled back from `v1.2.3` (0123456789ab); fedcba987654 runs again") ||
		!strings.Contains(rb, "process worker (container shop-worker-2)") {
		t.Errorf("rolled back:\n%s\nwant the error naming the worker and ending\n%s", rb, want)
	}
	ok := decodeSlack(t, slack.next(t))
	if want := ":white_check_mark: *shop* (production) deployed `v1.2.3` (0123456789ab) in 2.5s, by lead <https://liftoff.example.com/deployments/shop|details>" +
		"\n• worker.1 `shop-worker-1` runs 0123456789ab\n• worker.2 `shop-worker-2` runs 0123456789ab\n• web.1 `shop-web-1` runs 0123456789ab"; ok != want {
		t.Errorf("succeeded:\n%s\nwant\n%s", ok, want)
	}
	if single := decodeSlack(t, slack.next(t)); strings.Contains(single, "\n") {
		t.Errorf("a deployment without processes got process lines: %q", single)
	}
}

// An app of many replicas gets maxSlackProcesses lines in Slack, then a
// count of the rest; the JSON document has them all.
func TestAppProcessesSlackBounded(t *testing.T) {
	r := result("shop", "production", deploy.Succeeded)
	for i := 1; i <= maxSlackProcesses+5; i++ {
		r.Processes = append(r.Processes, deploy.ProcessResult{Process: "worker", Replica: i, Container: fmt.Sprintf("shop-worker-%d", i), Digest: r.Digest})
	}
	m, _ := fromResult(r)
	if len(m.Processes) != maxSlackProcesses+5 {
		t.Errorf("the document has %d processes, want %d", len(m.Processes), maxSlackProcesses+5)
	}
	lines := strings.Split(m.slackText(), "\n")
	if len(lines) != 1+maxSlackProcesses+1 || lines[len(lines)-1] != "• and 5 more" ||
		lines[maxSlackProcesses] != fmt.Sprintf("• worker.%d `shop-worker-%d` runs 0123456789ab", maxSlackProcesses, maxSlackProcesses) {
		t.Errorf("slack text of %d lines, ending %q", len(lines), lines[len(lines)-1])
	}
}
