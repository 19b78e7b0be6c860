package deploy

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// holdConfig: web in staging deploys at once; api in production waits for
// an approval, 300ms at most.
const holdConfig = `
hooks: [{source: dockerhub, token: 0123456789abcdef0123456789abcdef}]
api_tokens: [{name: lead, token: lead-token-0123456789abcdef, scopes: ["approve:production"]}]
environments:
  staging: {}
  production:
    approval: {required: true, timeout: 300ms}
deployments:
  - name: web
    image: acme/web
    tags: ["glob:*"]
    environment: staging
    health: {min_uptime: 10ms}
  - name: api
    image: acme/api
    tags: ["glob:*"]
    environment: production
    health: {min_uptime: 10ms}
`

type holdHarness struct {
	t   *testing.T
	cfg *deployments.Config
	rt  *fakeRuntime
	j   *rcJournal
	e   *rcEngine
}

func newHoldHarness(t *testing.T) *holdHarness {
	t.Helper()
	cfg, err := deployments.Parse([]byte(holdConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	h := &holdHarness{t: t, cfg: cfg, rt: newFakeRuntime(), j: newRCJournal()}
	h.restart()
	return h
}

// restart is a new engine over the same journal and runtime, as after a
// restart of liftoff.
func (h *holdHarness) restart() {
	h.t.Helper()
	h.e = newRCEngine(h.t, h.cfg, h.rt, h.j, nil)
	if err := h.e.Load(context.Background()); err != nil {
		h.t.Fatalf("load: %v", err)
	}
}

func (h *holdHarness) push(deployment, tag string) Disposition {
	h.t.Helper()
	h.rt.push("docker.io/acme/"+deployment+":"+tag, "sha256:"+tag)
	ds, err := h.e.Enqueue(context.Background(), Request{Deployment: deployment, Image: "docker.io/acme/" + deployment,
		Tag: tag, Trigger: "dockerhub", Delivery: "d-" + tag})
	if err != nil {
		h.t.Fatalf("enqueue: %v", err)
	}
	return ds[0]
}

// pending names the push awaiting approval of deployment, as an
// approver who looked at it would.
func (h *holdHarness) pending(deployment string) Decision {
	h.t.Helper()
	p := h.e.Status(deployment).Pending
	if p == nil {
		h.t.Fatalf("no push of %s awaits approval", deployment)
	}
	return Decision{Request: p.ID, Digest: p.Digest}
}

func (h *holdHarness) next() Result {
	h.t.Helper()
	select {
	case r := <-h.e.results:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("no deploy finished within 10s")
		return Result{}
	}
}

func (h *holdHarness) none() {
	h.t.Helper()
	select {
	case r := <-h.e.results:
		h.t.Fatalf("a deploy ran: %s %s %v", r.Request.Tag, r.Outcome, r.Err)
	case <-time.After(50 * time.Millisecond):
	}
}

func (h *holdHarness) runs(deployment, digest string) {
	h.t.Helper()
	if c, ok := h.rt.get(deployment); !ok || !c.Running || c.Labels[LabelDigest] != digest {
		h.t.Fatalf("%s runs %v (%v), want %s", deployment, c.Labels[LabelDigest], ok, digest)
	}
}

func TestPauseHoldsPushesUntilResumed(t *testing.T) {
	h := newHoldHarness(t)
	if d := h.push("web", "v1"); d != Queued {
		t.Fatalf("push before the pause: %s", d)
	}
	h.next()
	if err := h.e.Pause(context.Background(), "web", "lead"); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Pause(context.Background(), "web", "lead"); !errors.Is(err, ErrPaused) {
		t.Errorf("pausing twice: %v, want ErrPaused", err)
	}
	for _, tag := range []string{"v2", "v3", "v3"} {
		if d := h.push("web", tag); d != Held {
			t.Fatalf("push of %s while paused: %s, want held", tag, d)
		}
	}
	h.none()
	if s := h.e.Status("web"); s.Paused == nil || s.Paused.Actor != "lead" || s.Held == nil || s.Held.Tag != "v3" {
		t.Fatalf("status while paused: %+v", s)
	}
	if r := h.j.request(2); r.outcome != Superseded {
		t.Errorf("v2, held then replaced by v3: %+v", r)
	}

	// A restart keeps the pause and the held push.
	h.restart()
	if s := h.e.Status("web"); s.Paused == nil || s.Held == nil || s.Held.Tag != "v3" {
		t.Fatalf("status after a restart: %+v", s)
	}
	if err := h.e.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.none() // held is not recovered: it waits for the resume

	held, err := h.e.Unpause(context.Background(), "web", "lead")
	if err != nil || held == nil || held.Tag != "v3" || held.State != Queued {
		t.Fatalf("unpause: %+v %v", held, err)
	}
	if r := h.next(); r.Outcome != Succeeded || r.Request.Tag != "v3" {
		t.Fatalf("deploy on resume: %s %s %v", r.Request.Tag, r.Outcome, r.Err)
	}
	h.runs("web", "sha256:v3")
	if _, err := h.e.Unpause(context.Background(), "web", "lead"); !errors.Is(err, ErrNotPaused) {
		t.Errorf("resuming twice: %v, want ErrNotPaused", err)
	}
	if d := h.push("web", "v4"); d != Queued {
		t.Errorf("push after the resume: %s", d)
	}
	h.next()
}

func TestApprovalGatesPushes(t *testing.T) {
	h := newHoldHarness(t)
	if d := h.push("api", "v1"); d != Pending {
		t.Fatalf("push to production: %s, want pending", d)
	}
	h.none()
	if d := h.push("api", "v2"); d != Pending {
		t.Fatalf("second push: %s", d)
	}
	if s := h.e.Status("api"); s.Pending == nil || s.Pending.Tag != "v2" || s.Pending.Expires.IsZero() {
		t.Fatalf("status: %+v", s)
	}
	if r := h.j.request(1); r.outcome != Superseded {
		t.Errorf("v1, replaced while pending: %+v", r)
	}

	// Survives a restart, and is not deployed by Recover.
	h.restart()
	if err := h.e.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.none()
	r, err := h.e.Approve(context.Background(), "api", "lead", h.pending("api"))
	if err != nil || r.Tag != "v2" || r.Digest != "sha256:v2" {
		t.Fatalf("approve: %+v %v", r, err)
	}
	res := h.next()
	if res.Outcome != Succeeded || res.Request.Actor != "lead" || res.Request.Tag != "v2" {
		t.Fatalf("approved deploy: %+v", res)
	}
	h.runs("api", "sha256:v2")
	if _, err := h.e.Approve(context.Background(), "api", "lead", Decision{Request: r.ID}); !errors.Is(err, ErrNothingPending) {
		t.Errorf("approve with nothing pending: %v", err)
	}

	// An API deploy (with an actor) needs no approval.
	h.rt.push("docker.io/acme/api:v3", "sha256:v3")
	ds, err := h.e.Enqueue(context.Background(), Request{Deployment: "api", Image: "docker.io/acme/api", Tag: "v3", Trigger: TriggerAPI, Actor: "lead"})
	if err != nil || ds[0] != Queued {
		t.Fatalf("API deploy: %v %v", ds, err)
	}
	h.next()

	// Reject drops a pending push.
	h.push("api", "v4")
	if r, err := h.e.Reject(context.Background(), "api", "lead", h.pending("api")); err != nil || r.Tag != "v4" {
		t.Fatalf("reject: %+v %v", r, err)
	}
	h.none()
	h.runs("api", "sha256:v3")
	if got := testutil.ToFloat64(h.e.metrics.deploys.WithLabelValues("api", "production", string(Rejected))); got != 1 {
		t.Errorf("rejected = %v", got)
	}
}

func TestApprovalExpires(t *testing.T) {
	h := newHoldHarness(t)
	h.push("api", "v1")
	waitFor(t, "the pending push to expire", func() bool { return h.e.Status("api").Pending == nil })
	if got := testutil.ToFloat64(h.e.metrics.deploys.WithLabelValues("api", "production", string(Expired))); got != 1 {
		t.Errorf("expired = %v", got)
	}
	if r := h.j.request(1); r.outcome != Expired {
		t.Errorf("journal: %+v, want expired", r)
	}
	h.none()
	if _, err := h.e.Approve(context.Background(), "api", "lead", Decision{Request: 1}); !errors.Is(err, ErrNothingPending) {
		t.Errorf("approve after expiry: %v", err)
	}
	// Expired while liftoff was down: expires at the next start.
	h.push("api", "v2")
	h.e.mu.Lock()
	for _, t := range h.e.expiry {
		t.Stop()
	}
	h.e.mu.Unlock()
	h.restart()
	waitFor(t, "the pending push to expire after the restart", func() bool { return h.e.Status("api").Pending == nil })
	if open, _ := h.j.OpenRequests(context.Background()); len(open) != 0 {
		t.Errorf("open requests: %+v", open)
	}
}

// TestPauseHoldsTheWaitingPush: a push waiting behind a running deploy is
// held when the deployment is paused.
func TestPauseHoldsTheWaitingPush(t *testing.T) {
	h := newHoldHarness(t)
	gate := make(chan struct{})
	h.rt.resolveGate = gate
	h.push("web", "v1")
	h.push("web", "v2")
	if err := h.e.Pause(context.Background(), "web", "lead"); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if r := h.next(); r.Request.Tag != "v1" {
		t.Fatalf("ran %s", r.Request.Tag)
	}
	h.none()
	if s := h.e.Status("web"); s.Held == nil || s.Held.Tag != "v2" {
		t.Fatalf("status: %+v", s)
	}
	if open, _ := h.j.OpenRequests(context.Background()); len(open) != 1 || open[0].State != Held || !slices.ContainsFunc(open, func(r Request) bool { return r.Tag == "v2" }) {
		t.Errorf("journal: %+v, want v2 held", open)
	}
}
