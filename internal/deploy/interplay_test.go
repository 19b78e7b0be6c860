package deploy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// How approvals, pauses, the cool-down, promote_from by revision and apps
// of several processes meet: each was built and tested alone.

// interplayConfig: api needs approval and cools down for an hour; app is
// the same, an app of two processes (worker ×2), and takes only a
// revision that succeeded in app-staging.
const interplayConfig = `
api_tokens: [{name: lead, token: lead-token-0123456789abcdef, scopes: ["approve:production"]}]
environments:
  staging: {}
  production:
    approval: {required: true, timeout: 10h}
deployments:
  - name: api
    image: acme/api
    tags: ["glob:*"]
    environment: production
    health: {min_uptime: 10ms}
    min_image_age: 1h
  - name: app-staging
    image: acme/app-dev
    tags: [staging]
    environment: staging
    health: {min_uptime: 10ms}
  - name: app
    image: acme/app
    tags: [latest]
    environment: production
    health: {min_uptime: 10ms}
    min_image_age: 1h
    promote_from: {deployment: app-staging, match: revision}
    processes:
      web: {command: [web]}
      worker: {command: [worker], scale: 2}
`

// infoRuntime is a fakeRuntime whose images have a created time and
// labels, by digest.
type infoRuntime struct {
	*fakeRuntime
	imu   sync.Mutex
	infos map[string]ImageInfo
	gate  chan struct{} // if set, received from before ImageInfo answers
}

func (r *infoRuntime) ImageInfo(ctx context.Context, ref string) (ImageInfo, error) {
	if err := r.call("image_info", ref); err != nil {
		return ImageInfo{}, err
	}
	r.imu.Lock()
	gate := r.gate
	r.imu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ImageInfo{}, ctx.Err()
		}
	}
	r.imu.Lock()
	defer r.imu.Unlock()
	_, digest, _ := strings.Cut(ref, "@")
	return r.infos[digest], nil
}

type playHarness struct {
	*holdHarness
	rt      *infoRuntime
	journal Journal // if set, the engine's journal instead of h.j
}

func newPlayHarness(t *testing.T) *playHarness {
	t.Helper()
	cfg, err := deployments.Parse([]byte(interplayConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	rt := &infoRuntime{fakeRuntime: newFakeRuntime(), infos: map[string]ImageInfo{}}
	h := &playHarness{holdHarness: &holdHarness{t: t, cfg: cfg, rt: rt.fakeRuntime, j: newRCJournal()}, rt: rt}
	h.restartAt(time.Now)
	return h
}

// restartAt closes the engine and starts another over the same journal
// and runtime, with a clock of its own, as a restart of liftoff does
// (after a SIGKILL too: the fakes keep only what was journaled or runs).
func (h *playHarness) restartAt(now func() time.Time) {
	h.t.Helper()
	if h.e != nil {
		h.e.Close(context.Background())
	}
	var j Journal = h.j
	if h.journal != nil {
		j = h.journal
	}
	h.e = newRCEngine(h.t, h.cfg, h.rt, j, nil)
	h.e.opts.Now = now
	if err := h.e.Load(context.Background()); err != nil {
		h.t.Fatalf("load: %v", err)
	}
	if err := h.e.Recover(context.Background()); err != nil {
		h.t.Fatalf("recover: %v", err)
	}
}

// image makes repo's tag point to digest, an image built at created with
// labels.
func (h *playHarness) image(repo, tag, digest string, created time.Time, labels map[string]string) {
	h.rt.push("docker.io/acme/"+repo+":"+tag, digest)
	h.rt.imu.Lock()
	h.rt.infos[digest] = ImageInfo{Created: created, Labels: labels}
	h.rt.imu.Unlock()
}

func (h *playHarness) arrive(deployment, repo, tag, delivery string) Disposition {
	h.t.Helper()
	ds, err := h.e.Enqueue(context.Background(), Request{Deployment: deployment, Image: "docker.io/acme/" + repo,
		Tag: tag, Trigger: "dockerhub", Delivery: delivery})
	if err != nil {
		h.t.Fatalf("enqueue: %v", err)
	}
	return ds[0]
}

// approve approves what is pending now, as an approver who looked.
func (h *playHarness) approve(deployment string) Request {
	h.t.Helper()
	r, err := h.e.Approve(context.Background(), deployment, "lead", h.pending(deployment))
	if err != nil {
		h.t.Fatalf("approve: %v", err)
	}
	return r
}

// cooling asserts that request id of deployment cools down with digest,
// approved by actor, in the engine and in the journal.
func (h *playHarness) cooling(deployment string, id int64, digest, actor string) {
	h.t.Helper()
	c := h.e.Status(deployment).Cooling
	if c == nil || c.ID != id || c.Digest != digest || c.Actor != actor {
		h.t.Fatalf("cooling: %+v, want request %d of %s approved by %q", c, id, digest, actor)
	}
	if r := h.j.request(id); r.outcome != "" || r.State != Cooling || r.Digest != digest || r.Actor != actor {
		h.t.Fatalf("journal: %+v, want open, cooling, %s, approved by %q", r, digest, actor)
	}
}

// An approved push whose image is too young cools down with the approval
// and the digest approved; once old enough (here after a restart, as
// after a SIGKILL) it deploys that digest under the same request, asking
// no one again, though the tag moved meanwhile.
func TestApprovedPushCoolsDownOnceAndDeploysWhatWasApproved(t *testing.T) {
	h := newPlayHarness(t)
	young := time.Now().Add(-30 * time.Minute)
	h.image("api", "release", "sha256:reviewed", young, nil)
	if d := h.arrive("api", "api", "release", "d1"); d != Pending {
		t.Fatalf("push: %s, want pending", d)
	}
	approved := h.approve("api")
	if r := h.next(); r.Outcome != Deferred || r.Digest != "sha256:reviewed" {
		t.Fatalf("approved young image: %s %s %v, want deferred", r.Outcome, r.Digest, r.Err)
	}
	h.cooling("api", approved.ID, "sha256:reviewed", "lead")

	// The tag moves to an old image; the push is not sent again.
	h.image("api", "release", "sha256:later", time.Now().Add(-48*time.Hour), nil)

	// liftoff dies; it starts again once the image is old enough.
	h.restartAt(func() time.Time { return time.Now().Add(31 * time.Minute) })
	r := h.next()
	if r.Outcome != Succeeded || r.Digest != "sha256:reviewed" || r.Request.ID != approved.ID || r.Request.Actor != "lead" {
		t.Fatalf("after the cool-down: %s %s request %d actor %q %v, want sha256:reviewed, request %d, lead",
			r.Outcome, r.Digest, r.Request.ID, r.Request.Actor, r.Err, approved.ID)
	}
	if s := h.e.Status("api"); s.Pending != nil || s.Cooling != nil {
		t.Errorf("after the deploy: pending %+v cooling %+v", s.Pending, s.Cooling)
	}
	h.runs("api", "sha256:reviewed")
	h.none()
}

// A push awaiting approval does not replace an approved push that cools
// down: a hook token's holder cannot undo an approval by pushing. The
// approved one deploys; the newer one stays pending, and replaces the
// cooling one once approved itself.
func TestPendingPushLeavesTheApprovedCoolingOne(t *testing.T) {
	for _, when := range []string{"while cooling", "before the deferral", "across a restart"} {
		t.Run(when, func(t *testing.T) {
			h := newPlayHarness(t)
			ctx := context.Background()
			h.image("api", "v1", "sha256:v1", time.Now().Add(-30*time.Minute), nil)
			h.arrive("api", "api", "v1", "d1")
			if when == "before the deferral" {
				// v2 arrives while v1's deploy runs: it is pending when
				// v1 is deferred.
				h.rt.gate = make(chan struct{})
			}
			first := h.approve("api")
			if when == "before the deferral" {
				h.image("api", "v2", "sha256:v2", time.Now().Add(-30*time.Minute), nil)
				h.arrive("api", "api", "v2", "d2")
				h.rt.imu.Lock()
				close(h.rt.gate)
				h.rt.gate = nil
				h.rt.imu.Unlock()
			}
			if r := h.next(); r.Outcome != Deferred {
				t.Fatalf("v1: %s %v, want deferred", r.Outcome, r.Err)
			}
			if when != "before the deferral" {
				h.image("api", "v2", "sha256:v2", time.Now().Add(-30*time.Minute), nil)
				if d := h.arrive("api", "api", "v2", "d2"); d != Pending {
					t.Fatalf("v2: %s, want pending", d)
				}
			}
			if when == "across a restart" {
				h.restartAt(time.Now)
			}
			h.cooling("api", first.ID, "sha256:v1", "lead")
			if q := h.j.request(first.ID); q.outcome != "" {
				t.Fatalf("the approved push: %+v, want still open", q)
			}
			second := h.pending("api")
			if second.Digest != "sha256:v2" {
				t.Fatalf("pending: %+v, want v2", second)
			}

			// v2 approved too: the newest approved push wins, v1 is
			// superseded, v2 cools for its own hour.
			if _, err := h.e.Approve(ctx, "api", "lead", second); err != nil {
				t.Fatal(err)
			}
			if r := h.next(); r.Outcome != Deferred || r.Request.ID != second.Request {
				t.Fatalf("v2 approved: %s request %d %v, want deferred", r.Outcome, r.Request.ID, r.Err)
			}
			if q := h.j.request(first.ID); q.outcome != Superseded {
				t.Errorf("v1 after v2's approval: %+v, want superseded", q)
			}
			h.cooling("api", second.Request, "sha256:v2", "lead")
		})
	}
}

// A rejected newer push leaves the approved cooling one to deploy.
func TestRejectedPushLeavesTheApprovedCoolingOneToDeploy(t *testing.T) {
	h := newPlayHarness(t)
	ctx := context.Background()
	h.image("api", "v1", "sha256:v1", time.Now().Add(-30*time.Minute), nil)
	h.arrive("api", "api", "v1", "d1")
	first := h.approve("api")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	h.image("api", "v2", "sha256:v2", time.Now(), nil)
	h.arrive("api", "api", "v2", "d2")
	if _, err := h.e.Reject(ctx, "api", "lead", h.pending("api")); err != nil {
		t.Fatal(err)
	}
	h.restartAt(func() time.Time { return time.Now().Add(31 * time.Minute) })
	if r := h.next(); r.Outcome != Succeeded || r.Request.ID != first.ID || r.Digest != "sha256:v1" {
		t.Fatalf("after the cool-down: %s request %d %s %v", r.Outcome, r.Request.ID, r.Digest, r.Err)
	}
	h.runs("api", "sha256:v1")
}

// A paused deployment whose cooling push becomes old enough holds it,
// as the pause holds any push; resumed, it deploys. The push was not
// approved (web's environment does not ask), and pausing while it cools
// leaves it cooling.
func TestCoolingPushRipensWhilePaused(t *testing.T) {
	h := newCoolHarness(t)
	ctx := context.Background()
	created := time.Now().Add(-30 * time.Minute)
	h.push("v1", created, "dockerhub")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("young image: %s %v", r.Outcome, r.Err)
	}
	c := h.cooling("v1", created.Add(time.Hour))
	if err := h.e.Pause(ctx, "web", "lead"); err != nil {
		t.Fatal(err)
	}
	h.cooling("v1", created.Add(time.Hour))

	// liftoff restarts after the hour: the timer fires at once, into the
	// pause.
	h.restartAt(func() time.Time { return time.Now().Add(31 * time.Minute) })
	// The timer fires on its own goroutine: wait until the push moved.
	for deadline := time.Now().Add(10 * time.Second); h.e.Status("web").Held == nil && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	h.none()
	s := h.e.Status("web")
	if s.Cooling != nil || s.Held == nil || s.Held.ID != c.ID {
		t.Fatalf("ripened while paused: cooling %+v held %+v, want request %d held", s.Cooling, s.Held, c.ID)
	}
	if q := h.j.request(c.ID); q.outcome != "" || q.State != Held {
		t.Fatalf("journal: %+v, want open and held", q)
	}
	if _, err := h.e.Unpause(ctx, "web", "lead"); err != nil {
		t.Fatal(err)
	}
	if r := h.next(); r.Outcome != Succeeded || r.Request.ID != c.ID {
		t.Fatalf("resumed: %s request %d %v", r.Outcome, r.Request.ID, r.Err)
	}
	h.runs("web", "sha256:v1")
}

// An app of several processes that needs approval, cools down and takes
// a revision vouched for in staging: one pending push, one approval, one
// deferred deploy, then one deploy of every process on the approved
// digest, vouched for by staging's deploy.
func TestAppApprovalCoolDownAndRevision(t *testing.T) {
	h := newPlayHarness(t)
	rev := map[string]string{"org.opencontainers.image.revision": "abc123"}
	h.image("app-dev", "staging", "sha256:dev", time.Now().Add(-2*time.Hour), rev)
	h.arrive("app-staging", "app-dev", "staging", "s1")
	staging := h.next()
	if staging.Outcome != Succeeded {
		t.Fatalf("staging: %s %v", staging.Outcome, staging.Err)
	}

	h.image("app", "latest", "sha256:prod", time.Now().Add(-30*time.Minute), rev)
	if d := h.arrive("app", "app", "latest", "p1"); d != Pending {
		t.Fatalf("push: %s, want pending", d)
	}
	if d := h.arrive("app", "app", "latest", "p1-again"); d != Pending {
		t.Fatalf("the push's second delivery: %s, want pending", d)
	}
	approved := h.approve("app")
	if r := h.next(); r.Outcome != Deferred || r.Digest != "sha256:prod" {
		t.Fatalf("approved: %s %s %v, want deferred", r.Outcome, r.Digest, r.Err)
	}
	h.cooling("app", approved.ID, "sha256:prod", "lead")
	if n := h.rt.count("stop"); n != 0 {
		t.Errorf("%d stops while the app cools down", n)
	}
	h.image("app", "latest", "sha256:moved", time.Now().Add(-48*time.Hour), rev)

	h.restartAt(func() time.Time { return time.Now().Add(31 * time.Minute) })
	r := h.next()
	if r.Outcome != Succeeded || r.Digest != "sha256:prod" || r.Request.ID != approved.ID {
		t.Fatalf("after the cool-down: %s %s request %d %v", r.Outcome, r.Digest, r.Request.ID, r.Err)
	}
	h.none()
	for _, u := range []string{"app-web-1", "app-worker-1", "app-worker-2"} {
		h.runs(u, "sha256:prod")
	}
	var deploys, vouched int
	var stagingID int64
	h.j.mu.Lock()
	for _, rec := range h.j.recs {
		if rec.Deployment == "app-staging" && rec.Outcome == Succeeded {
			stagingID = rec.ID
		}
	}
	for _, rec := range h.j.recs {
		if rec.Deployment == "app" {
			deploys++
			if rec.Outcome == Succeeded && stagingID != 0 && rec.VouchedBy == stagingID {
				vouched++
			}
		}
	}
	h.j.mu.Unlock()
	if deploys != 2 || vouched != 1 {
		t.Errorf("app's history: %d deploys (%d vouched for by staging's %d), want the deferred one and one vouched for", deploys, vouched, stagingID)
	}
}

// An approved push that becomes old enough while its deployment is paused
// deploys, as approving a pending push during a pause deploys it: the
// approval asked for it. (A push nobody approved is held:
// TestCoolingPushRipensWhilePaused.)
func TestApprovedCoolingPushDeploysThroughAPause(t *testing.T) {
	h := newPlayHarness(t)
	h.image("api", "v1", "sha256:v1", time.Now().Add(-30*time.Minute), nil)
	h.arrive("api", "api", "v1", "d1")
	approved := h.approve("api")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	if err := h.e.Pause(context.Background(), "api", "lead"); err != nil {
		t.Fatal(err)
	}
	h.restartAt(func() time.Time { return time.Now().Add(31 * time.Minute) })
	if r := h.next(); r.Outcome != Succeeded || r.Request.ID != approved.ID || r.Digest != "sha256:v1" {
		t.Fatalf("ripened while paused: %s request %d %s %v", r.Outcome, r.Request.ID, r.Digest, r.Err)
	}
	if s := h.e.Status("api"); s.Paused == nil || s.Held != nil {
		t.Errorf("after the deploy: paused %+v held %+v, want still paused, nothing held", s.Paused, s.Held)
	}
}

// agedSwarm is a fakeSwarm whose images have a created time.
type agedSwarm struct {
	*fakeSwarm
	created time.Time
}

func (a *agedSwarm) ImageInfo(ctx context.Context, ref string) (ImageInfo, error) {
	if err := a.call("image_info", ref); err != nil {
		return ImageInfo{}, err
	}
	return ImageInfo{Created: a.created}, nil
}

// A Swarm service takes the same path: approval, then the cool-down with
// nothing sent to Swarm, then one update pinned to the approved digest.
func TestServiceApprovalAndCoolDown(t *testing.T) {
	conf := strings.Replace(svcConfig, `env: {DEBUG: "False"}`, `env: {DEBUG: "False"}
    approval: {required: true, timeout: 10h}`, 1)
	conf = strings.Replace(conf, "    stop_timeout: 3s\n", "    stop_timeout: 3s\n    min_image_age: 1h\n", 1)
	conf = strings.Replace(conf, "hooks:", "api_tokens: [{name: lead, token: lead-token-0123456789abcdef, scopes: [\"approve:production\"]}]\nhooks:", 1)
	cfg, err := deployments.Parse([]byte(conf), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if d := cfg.Deployment("web"); d.Service == nil || d.MinImageAge != time.Hour {
		t.Fatalf("web: %+v", d)
	}
	rt := &agedSwarm{fakeSwarm: newFakeSwarm(), created: time.Now().Add(-30 * time.Minute)}
	h := &holdHarness{t: t, cfg: cfg, rt: rt.fakeRuntime, j: newRCJournal()}
	start := func(now func() time.Time) {
		if h.e != nil {
			h.e.Close(context.Background())
		}
		h.e = newRCEngine(t, cfg, rt, h.j, nil)
		h.e.opts.Now = now
		if err := h.e.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := h.e.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	start(time.Now)
	rt.push("docker.io/acme/web:latest", "sha256:approved")
	ds, err := h.e.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web", Tag: "latest",
		Trigger: "dockerhub", Delivery: "d1"})
	if err != nil || ds[0] != Pending {
		t.Fatalf("push: %v %v, want pending", ds, err)
	}
	approved, err := h.e.Approve(context.Background(), "web", "lead", h.pending("web"))
	if err != nil {
		t.Fatal(err)
	}
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("approved: %s %v, want deferred", r.Outcome, r.Err)
	}
	if n := rt.count("deploy_service"); n != 0 {
		t.Fatalf("%d service updates while the image cools down", n)
	}
	rt.push("docker.io/acme/web:latest", "sha256:moved")
	start(func() time.Time { return time.Now().Add(31 * time.Minute) })
	r := h.next()
	if r.Outcome != Succeeded || r.Request.ID != approved.ID || r.Digest != "sha256:approved" {
		t.Fatalf("after the cool-down: %s request %d %s %v", r.Outcome, r.Request.ID, r.Digest, r.Err)
	}
	if s := rt.lastSpec(); rt.count("deploy_service") != 1 || s.Image != "docker.io/acme/web@sha256:approved" {
		t.Errorf("%d service updates, last %s, want one of the approved digest", rt.count("deploy_service"), s.Image)
	}
	h.none()
}

// The same push delivered again (a poll finds the tag's digest not
// running yet, a sender retries) while its approved push cools down is
// that push: no second request of the same digest to approve. The tag
// moved to another image is a new push, pending.
func TestRedeliveryOfAnApprovedCoolingPush(t *testing.T) {
	h := newPlayHarness(t)
	h.image("api", "release", "sha256:v1", time.Now().Add(-30*time.Minute), nil)
	h.arrive("api", "api", "release", "d1")
	approved := h.approve("api")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	for _, r := range []Request{
		{Deployment: "api", Image: "docker.io/acme/api", Tag: "release", Trigger: "dockerhub", Delivery: "d1-again"},
		{Deployment: "api", Image: "docker.io/acme/api", Tag: "release", Digest: "sha256:v1", Trigger: "poll", Delivery: "poll-1"},
	} {
		ds, err := h.e.Enqueue(context.Background(), r)
		if err != nil || ds[0] != Cooling {
			t.Fatalf("%s: %v %v, want cooling", r.Delivery, ds, err)
		}
		if s := h.e.Status("api"); s.Pending != nil {
			t.Fatalf("%s: pending %+v, want none", r.Delivery, s.Pending)
		}
		h.cooling("api", approved.ID, "sha256:v1", "lead")
	}
	h.image("api", "release", "sha256:v2", time.Now(), nil)
	if d := h.arrive("api", "api", "release", "d2"); d != Pending {
		t.Fatalf("the tag moved: %s, want pending", d)
	}
	h.cooling("api", approved.ID, "sha256:v1", "lead")
	h.none()
}

// lostCool is a journal that loses the cool-down's record, as liftoff
// SIGKILLed between the deferred deploy's outcome and Journal.Cool does.
type lostCool struct {
	*rcJournal
	lose atomic.Bool
}

func (j *lostCool) Cool(ctx context.Context, id int64, until time.Time) error {
	if j.lose.Load() {
		return errors.New("killed")
	}
	return j.rcJournal.Cool(ctx, id, until)
}

// An approved push whose cool-down was never journaled (liftoff died
// first) is still open and approved: Recover deploys it again, it is
// deferred again and cools under the same request with its approver and
// digest, then deploys what was approved.
func TestApprovedPushKilledBeforeItsCoolDownWasJournaled(t *testing.T) {
	h := newPlayHarness(t)
	lc := &lostCool{rcJournal: h.j}
	lc.lose.Store(true)
	h.journal = lc
	h.restartAt(time.Now)
	h.image("api", "release", "sha256:reviewed", time.Now().Add(-30*time.Minute), nil)
	h.arrive("api", "api", "release", "d1")
	approved := h.approve("api")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("approved young image: %s %v", r.Outcome, r.Err)
	}
	if q := h.j.request(approved.ID); q.outcome != "" || q.State != Queued || q.Actor != "lead" {
		t.Fatalf("journal after the lost cool-down: %+v, want open, queued, approved by lead", q)
	}
	h.image("api", "release", "sha256:later", time.Now().Add(-48*time.Hour), nil)

	lc.lose.Store(false)
	h.restartAt(time.Now) // Recover resumes it
	if r := h.next(); r.Outcome != Deferred || r.Request.ID != approved.ID || r.Digest != "sha256:reviewed" {
		t.Fatalf("resumed: %s request %d %s %v, want deferred again", r.Outcome, r.Request.ID, r.Digest, r.Err)
	}
	h.cooling("api", approved.ID, "sha256:reviewed", "lead")
	if h.e.Status("api").Pending != nil {
		t.Fatal("the resumed approved push asks for approval again")
	}
	h.restartAt(func() time.Time { return time.Now().Add(31 * time.Minute) })
	if r := h.next(); r.Outcome != Succeeded || r.Request.ID != approved.ID || r.Digest != "sha256:reviewed" {
		t.Fatalf("after the cool-down: %s request %d %s %v", r.Outcome, r.Request.ID, r.Digest, r.Err)
	}
	h.runs("api", "sha256:reviewed")
}
