package notify

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

func canaryEvent(kind, why, actor string) deploy.CanaryEvent {
	start := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	return deploy.CanaryEvent{Kind: kind, Why: why, Actor: actor, Status: deploy.CanaryStatus{
		Deployment: "web", Delivery: "dlv-1", Tag: "v1.2.4",
		Digest:   "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Previous: "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
		Steps:    []int{5, 25, 50}, Step: 0, Weight: 5, Started: start, StepSince: start,
		Old: deploy.Window{Requests: 1900, P99: 5 * time.Millisecond},
		New: deploy.Window{Requests: 100, Errors: 5, ErrorRate: 0.05, P99: 10 * time.Millisecond}}}
}

// TestCanaryMessages: a canary's start, promotion and abort are events a
// receiver asks for; the JSON document carries the canary's figures and,
// aborted, why; Slack says it in a line.
func TestCanaryMessages(t *testing.T) {
	rv := newReceiver(t, nil)
	slack := newReceiver(t, nil)
	cfg := config(t, fmt.Sprintf(`notifications:
  - {name: audit, url: "%s/hook", format: json, events: [canary_aborted], secret_file: KEYFILE}
  - {name: team, url: "%s/services/x", format: slack, events: [canary_started, canary_promoted, canary_aborted]}
`, rv.URL, slack.URL))
	h := newHarness(t, cfg, Options{})
	why := "canary step 1 (5%) failed: error rate 5.00% above max_error_rate 1%"
	h.n.Canary(canaryEvent(deploy.CanaryStarted, "", ""))
	h.n.Canary(canaryEvent(deploy.CanaryPromoted, "promoted by lead", "lead"))
	h.n.Canary(canaryEvent(deploy.CanaryAborted, why, ""))

	m := decode(t, rv.next(t)) // the audit receiver asked for aborted only
	if m.Event != "canary_aborted" || m.Deployment != "web" || m.Environment != "production" || m.Image != "docker.io/acme/web" ||
		m.Tag != "v1.2.4" || m.Error != why || m.Delivery != "dlv-1" || m.Canary == nil ||
		m.Canary.Step != 1 || m.Canary.Weight != 5 || m.Canary.New.Errors != 5 || m.Canary.Old.Requests != 1900 {
		t.Errorf("aborted: %+v %+v", m, m.Canary)
	}
	for _, want := range []string{
		":hatching_chick: *web* (production) started a canary of `v1.2.4` (0123456789ab), steps 5%, 25%, 50%",
		":white_check_mark: *web* (production) promoted the canary of `v1.2.4` (0123456789ab), by lead",
		":leftwards_arrow_with_hook: *web* (production) aborted the canary of `v1.2.4` (0123456789ab): " + why,
	} {
		if got := decodeSlack(t, slack.next(t)); !strings.HasPrefix(got, want) {
			t.Errorf("slack:\n%s\nwant\n%s", got, want)
		}
	}
}
