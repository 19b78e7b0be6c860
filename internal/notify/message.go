package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Message is what a receiver is told of one event. It is the JSON
// format's document, field for field (the README documents it); the Slack
// format says the same in a line of text. Fields that do not apply are ""
// or null, never missing.
type Message struct {
	// ID is unique per message and the same on every try of it: a
	// receiver that got it twice (a try that timed out after all) can
	// tell.
	ID string `json:"id"`
	// Event is one of deployments.NotifyEvents().
	Event       string `json:"event"`
	Deployment  string `json:"deployment"`
	Environment string `json:"environment"`
	Image       string `json:"image"`
	Tag         string `json:"tag"`
	// Digest is what was deployed (or tried); PreviousDigest what ran
	// before (and, rolled back, runs again).
	Digest         string `json:"digest"`
	PreviousDigest string `json:"previous_digest"`
	// Outcome is the deploy's outcome (the event itself, but "" for
	// pending: nothing ended).
	Outcome string `json:"outcome"`
	// Error says why, for every event but succeeded and pending.
	Error string `json:"error"`
	// DurationSeconds is how long the deploy took; null for pending and
	// expired, which did not deploy.
	DurationSeconds *float64 `json:"duration_seconds"`
	// Actor is who asked through the API, or approved the push ("" for a
	// push nobody approved).
	Actor string `json:"actor"`
	// Delivery is the id of the webhook delivery (or API request) that
	// asked for it, as in the history.
	Delivery string `json:"delivery"`
	// Started and Ended bound the deploy; for pending and expired,
	// Started is when the push arrived. Expires is when a pending push's
	// approval times out.
	Started *time.Time `json:"started"`
	Ended   *time.Time `json:"ended"`
	Expires *time.Time `json:"expires"`
	// URL is the deployment's page on the status page (public_url), or "".
	URL string `json:"url"`
	// Canary is, for the canary events, the canary's steps and both
	// sides' figures in its last step; null for the other events.
	Canary *apiv1.Canary `json:"canary"`
	// Processes is, for a deploy of an app of several processes, what
	// each replica of each process runs after it, in swap order (which
	// process failed, the error says); null for a deployment without
	// processes, for a deploy that ended before any of them was touched
	// (refused, or failed before the swap), and for the events that are
	// not a deploy's outcome.
	Processes []Process `json:"processes"`
}

// Process is one replica of an app's process after a deploy.
type Process struct {
	Process   string `json:"process"`
	Replica   int    `json:"replica"`
	Container string `json:"container"`
	// Digest is what the replica's container runs after the deploy; ""
	// when none runs.
	Digest string `json:"digest"`
}

// Event names, as deployments lists them.
const (
	succeeded  = deployments.EventSucceeded
	failed     = deployments.EventFailed
	rolledBack = deployments.EventRolledBack
	refused    = deployments.EventRefused
	pending    = deployments.EventPending
	expired    = deployments.EventExpired

	canaryStarted  = deployments.EventCanaryStarted
	canaryPromoted = deployments.EventCanaryPromoted
	canaryAborted  = deployments.EventCanaryAborted
)

// fromResult is the message of a deploy's result, or false for an outcome
// that is not an event (unchanged, superseded, rejected).
func fromResult(r deploy.Result) (Message, bool) {
	var ev string
	switch r.Outcome {
	case deploy.Succeeded:
		ev = succeeded
	case deploy.Failed:
		ev = failed
	case deploy.RolledBack:
		ev = rolledBack
	case deploy.Refused:
		ev = refused
	case deploy.Expired:
		ev = expired
	default:
		return Message{}, false
	}
	m := Message{
		Event: ev, Outcome: string(r.Outcome), Deployment: r.Request.Deployment, Environment: r.Environment,
		Image: r.Request.Image, Tag: r.Request.Tag, Digest: r.Digest, PreviousDigest: r.Previous,
		Actor: r.Request.Actor, Delivery: r.Request.Delivery,
		Started: timePtr(r.Started), Ended: timePtr(r.Ended),
	}
	if m.Digest == "" {
		m.Digest = r.Request.Digest
	}
	for _, p := range r.Processes {
		m.Processes = append(m.Processes, Process{Process: p.Process, Replica: p.Replica, Container: p.Container, Digest: p.Digest})
	}
	if r.Err != nil {
		m.Error = r.Err.Error()
	}
	if ev != expired && !r.Started.IsZero() && !r.Ended.IsZero() {
		d := r.Ended.Sub(r.Started).Seconds()
		m.DurationSeconds = &d
	}
	return m, true
}

// fromPending is the message of a push that awaits approval.
func fromPending(r deploy.Request, environment string) Message {
	return Message{
		Event: pending, Deployment: r.Deployment, Environment: environment, Image: r.Image, Tag: r.Tag,
		Digest: r.Digest, Actor: r.Actor, Delivery: r.Delivery,
		Started: timePtr(r.Received), Expires: timePtr(r.Expires),
	}
}

// fromCanary is the message of a canary's start or end: its error says
// why a canary was aborted (the figures of the step that failed, or who
// asked).
func fromCanary(ev deploy.CanaryEvent, d *deployments.Deployment) Message {
	st := ev.Status
	m := Message{Event: ev.Kind, Deployment: st.Deployment, Tag: st.Tag, Digest: st.Digest, PreviousDigest: st.Previous,
		Actor: ev.Actor, Delivery: st.Delivery, Started: timePtr(st.Started),
		Canary: &apiv1.Canary{Tag: st.Tag, Digest: st.Digest, PreviousDigest: st.Previous, Steps: st.Steps, Step: st.Step + 1,
			Weight: st.Weight, Started: st.Started.UTC(), StepStarted: st.StepSince.UTC(), Old: side(st.Old), New: side(st.New)}}
	if d != nil {
		m.Environment, m.Image = d.Environment, d.Image
	}
	if ev.Kind == canaryAborted {
		m.Error = ev.Why
	}
	return m
}

func side(w deploy.Window) apiv1.Side {
	return apiv1.Side{Requests: w.Requests, Errors: w.Errors, Unreachable: w.ConnErrors, ErrorRate: w.ErrorRate,
		P99Seconds: w.P99.Seconds()}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// newID returns a random id for a message.
func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// body renders the message in the receiver's format.
func (m *Message) body(format string) ([]byte, error) {
	if format == deployments.NotifySlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{m.slackText()})
	}
	return json.Marshal(m)
}

// Sign returns the X-Liftoff-Signature of body under key:
// "sha256=" and the hex HMAC-SHA256. A receiver checks it with hmac.Equal.
func Sign(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// maxSlackError bounds the error quoted in a Slack message;
// maxSlackProcesses the lines of an app's processes.
const (
	maxSlackError     = 300
	maxSlackProcesses = 20
)

// slackText is the message as a line of Slack text: what happened to
// which deployment, the tag and short digest, why, and a link; then, for
// an app of several processes, a short line per replica of each process:
// its container and what it runs now.
func (m *Message) slackText() string {
	var b strings.Builder
	icon, what := ":information_source:", m.Event
	switch m.Event {
	case succeeded:
		icon, what = ":white_check_mark:", "deployed"
	case failed:
		icon, what = ":x:", "failed to deploy"
	case rolledBack:
		icon, what = ":leftwards_arrow_with_hook:", "rolled back from"
	case refused:
		icon, what = ":no_entry:", "refused"
	case pending:
		icon, what = ":raised_hand:", "awaits approval of"
	case expired:
		icon, what = ":hourglass:", "expired, not approved:"
	case canaryStarted:
		icon, what = ":hatching_chick:", "started a canary of"
	case canaryPromoted:
		icon, what = ":white_check_mark:", "promoted the canary of"
	case canaryAborted:
		icon, what = ":leftwards_arrow_with_hook:", "aborted the canary of"
	}
	fmt.Fprintf(&b, "%s *%s*", icon, slackEscape(m.Deployment))
	if m.Environment != "" {
		fmt.Fprintf(&b, " (%s)", slackEscape(m.Environment))
	}
	fmt.Fprintf(&b, " %s `%s`", what, slackEscape(m.Tag))
	if d := apiv1.ShortDigest(m.Digest); d != "" {
		fmt.Fprintf(&b, " (%s)", d)
	}
	if m.Event == rolledBack {
		if d := apiv1.ShortDigest(m.PreviousDigest); d != "" {
			fmt.Fprintf(&b, "; %s runs again", d)
		}
	}
	if k := m.Canary; k != nil && m.Event == canaryStarted {
		steps := make([]string, len(k.Steps))
		for i, w := range k.Steps {
			steps[i] = fmt.Sprintf("%d%%", w)
		}
		fmt.Fprintf(&b, ", steps %s", strings.Join(steps, ", "))
	}
	if m.DurationSeconds != nil && m.Event == succeeded {
		fmt.Fprintf(&b, " in %s", (time.Duration(*m.DurationSeconds * float64(time.Second))).Round(100*time.Millisecond))
	}
	if m.Actor != "" {
		if m.Event == succeeded || m.Event == failed || m.Event == rolledBack || m.Event == refused ||
			m.Event == canaryPromoted || m.Event == canaryAborted {
			fmt.Fprintf(&b, ", by %s", slackEscape(m.Actor))
		}
	}
	if m.Error != "" && m.Event != succeeded {
		e := m.Error
		if len(e) > maxSlackError {
			e = strings.ToValidUTF8(e[:maxSlackError], "") + "…"
		}
		fmt.Fprintf(&b, ": %s", slackEscape(e))
	}
	if m.Event == pending && m.Expires != nil {
		fmt.Fprintf(&b, " (until %s)", m.Expires.Format("2006-01-02 15:04 UTC"))
	}
	if m.URL != "" {
		fmt.Fprintf(&b, " <%s|details>", slackEscape(m.URL))
	}
	for i, p := range m.Processes {
		if i == maxSlackProcesses {
			fmt.Fprintf(&b, "\n• and %d more", len(m.Processes)-i)
			break
		}
		runs := "runs nothing"
		if d := apiv1.ShortDigest(p.Digest); d != "" {
			runs = "runs " + d
		}
		fmt.Fprintf(&b, "\n• %s.%d `%s` %s", slackEscape(p.Process), p.Replica, slackEscape(p.Container), runs)
	}
	return b.String()
}

// slackEscape escapes what Slack's text format gives a meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
