package deploy

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Cool and FirstSeen make rcJournal a Journal (cooldown.go).
func (j *rcJournal) Cool(ctx context.Context, id int64, until time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	r := j.reqs[id]
	if r == nil || r.outcome != "" {
		return context.Canceled
	}
	r.State, r.Until = Cooling, until
	return nil
}

func (j *rcJournal) FirstSeen(ctx context.Context, deployment, digest string) (time.Time, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var first time.Time
	for _, r := range j.recs {
		if r.Deployment == deployment && r.Digest == digest && (first.IsZero() || r.Started.Before(first)) {
			first = r.Started
		}
	}
	return first, nil
}

// agedRuntime is a fakeRuntime whose images have a created time.
type agedRuntime struct {
	*fakeRuntime
	mu      sync.Mutex
	created map[string]time.Time // digest → created; absent: none
}

func (a *agedRuntime) ImageInfo(ctx context.Context, ref string) (ImageInfo, error) {
	if err := a.call("image_info", ref); err != nil {
		return ImageInfo{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, digest, _ := strings.Cut(ref, "@")
	return ImageInfo{Created: a.created[digest]}, nil
}

func (a *agedRuntime) push(tag string, created time.Time) {
	digest := "sha256:" + tag
	a.fakeRuntime.push("docker.io/acme/web:"+tag, digest)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !created.IsZero() {
		a.created[digest] = created
	}
}

// cooldownConfig: web waits for images an hour old; api needs approval
// and waits too.
const cooldownConfig = `
environments:
  staging: {}
deployments:
  - name: web
    image: acme/web
    tags: ["glob:*"]
    environment: staging
    health: {min_uptime: 10ms}
    min_image_age: 1h
`

type coolHarness struct {
	*holdHarness
	rt *agedRuntime
}

func newCoolHarness(t *testing.T) *coolHarness {
	t.Helper()
	cfg, err := deployments.Parse([]byte(cooldownConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	rt := &agedRuntime{fakeRuntime: newFakeRuntime(), created: map[string]time.Time{}}
	h := &coolHarness{holdHarness: &holdHarness{t: t, cfg: cfg, rt: rt.fakeRuntime, j: newRCJournal()}, rt: rt}
	h.restart()
	return h
}

// restart closes the engine, if any, and starts another over the same
// journal and runtime, as a restart of liftoff does.
func (h *coolHarness) restart() { h.restartAt(time.Now) }

// restartAt restarts with a clock of its own.
func (h *coolHarness) restartAt(now func() time.Time) {
	h.t.Helper()
	if h.e != nil {
		h.e.Close(context.Background())
	}
	h.e = newRCEngine(h.t, h.cfg, h.rt, h.j, nil)
	h.e.opts.Now = now
	if err := h.e.Load(context.Background()); err != nil {
		h.t.Fatalf("load: %v", err)
	}
}

func (h *coolHarness) push(tag string, created time.Time, trigger string) Disposition {
	h.t.Helper()
	h.rt.push(tag, created)
	ds, err := h.e.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web",
		Tag: tag, Trigger: trigger, Delivery: "d-" + tag})
	if err != nil {
		h.t.Fatalf("enqueue: %v", err)
	}
	return ds[0]
}

// cooling checks that the push of tag waits as Cooling until until, in
// the engine and in the journal.
func (h *coolHarness) cooling(tag string, until time.Time) Request {
	h.t.Helper()
	c := h.e.Status("web").Cooling
	if c == nil || c.Tag != tag || !c.Until.Equal(until) {
		h.t.Fatalf("cooling: %+v, want %s until %s", c, tag, until)
	}
	if r := h.j.request(c.ID); r.outcome != "" || r.State != Cooling || !r.Until.Equal(until) {
		h.t.Fatalf("journal: %+v, want open and cooling until %s", r, until)
	}
	return *c
}

func TestYoungImageWaitsThenDeploys(t *testing.T) {
	h := newCoolHarness(t)
	// An old image deploys at once.
	h.push("v1", time.Now().Add(-2*time.Hour), "dockerhub")
	if r := h.next(); r.Outcome != Succeeded {
		t.Fatalf("old image: %s %v", r.Outcome, r.Err)
	}

	// One 2.5s short of the hour waits, nothing stopped. (The deploy must
	// reach its cool-down within those 2.5s: against fakes it takes
	// milliseconds.)
	created := time.Now().Add(-time.Hour + 2500*time.Millisecond)
	h.push("v2", created, "dockerhub")
	r := h.next()
	if r.Outcome != Deferred || r.Err == nil || !strings.Contains(r.Err.Error(), "min_image_age 1h0m0s") {
		t.Fatalf("young image: %s %v, want deferred", r.Outcome, r.Err)
	}
	c := h.cooling("v2", created.Add(time.Hour))
	h.runs("web", "sha256:v1")
	if n := h.rt.count("stop"); n != 0 {
		t.Errorf("%d stops while the image cools down", n)
	}

	// Once old enough, it deploys: the same request, settled by its deploy.
	r = h.next()
	if r.Outcome != Succeeded || r.Request.ID != c.ID || r.Request.Tag != "v2" {
		t.Fatalf("after the cool-down: %s %v (request %d, want %d)", r.Outcome, r.Err, r.Request.ID, c.ID)
	}
	h.runs("web", "sha256:v2")
	if s := h.e.Status("web"); s.Cooling != nil {
		t.Errorf("still cooling: %+v", s.Cooling)
	}
	if q := h.j.request(c.ID); q.outcome != Succeeded {
		t.Errorf("request after its deploy: %+v", q)
	}
}

func TestCoolingSurvivesARestart(t *testing.T) {
	h := newCoolHarness(t)
	created := time.Now().Add(-30 * time.Minute)
	h.push("v1", created, "dockerhub")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("young image: %s %v", r.Outcome, r.Err)
	}
	until := created.Add(time.Hour)
	h.cooling("v1", until)

	// The engine stops before the image is old enough: its timer with it.
	h.restart()
	c := h.cooling("v1", until)
	h.none()

	// It starts again after the image became old enough.
	h.restartAt(func() time.Time { return time.Now().Add(31 * time.Minute) })
	if err := h.e.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := h.next() // the timer Load re-armed, not Recover
	if r.Outcome != Succeeded || r.Request.ID != c.ID {
		t.Fatalf("after the restart: %s %v", r.Outcome, r.Err)
	}
	h.runs("web", "sha256:v1")
	h.none()
}

func TestNewerPushReplacesTheCoolingOne(t *testing.T) {
	h := newCoolHarness(t)
	h.push("v1", time.Now().Add(-30*time.Minute), "dockerhub")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("young image: %s %v", r.Outcome, r.Err)
	}
	first := h.e.Status("web").Cooling
	if first == nil {
		t.Fatal("v1 is not cooling")
	}
	h.push("v2", time.Now().Add(-2*time.Hour), "dockerhub")
	if r := h.next(); r.Outcome != Succeeded || r.Request.Tag != "v2" {
		t.Fatalf("newer push: %s %s %v", r.Request.Tag, r.Outcome, r.Err)
	}
	if q := h.j.request(first.ID); q.outcome != Superseded {
		t.Errorf("the cooling push after a newer one: %+v, want superseded", q)
	}
	if s := h.e.Status("web"); s.Cooling != nil || len(h.e.ripen) != 0 {
		t.Errorf("still cooling after a newer push: %+v (%d timers)", s.Cooling, len(h.e.ripen))
	}
	h.runs("web", "sha256:v2")
}

func TestImageWithoutCreatedCountsFromFirstSeen(t *testing.T) {
	h := newCoolHarness(t)
	h.push("v1", time.Time{}, "poll")
	r := h.next()
	if r.Outcome != Deferred || !strings.Contains(r.Err.Error(), "first seen") {
		t.Fatalf("image without created: %s %v", r.Outcome, r.Err)
	}
	c := h.e.Status("web").Cooling
	if c == nil || c.Until.Sub(r.Started) != time.Hour {
		t.Fatalf("cooling %+v: want until an hour after its deploy began (%s)", c, r.Started)
	}
	// The same digest pushed again replaces the push, not its age.
	h.push("v1", time.Time{}, "poll")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("same digest again: %s %v", r.Outcome, r.Err)
	}
	again := h.e.Status("web").Cooling
	if again == nil || again.ID == c.ID || !again.Until.Equal(c.Until) {
		t.Fatalf("cooling after the second push: %+v, want a new request until %s", again, c.Until)
	}
	if q := h.j.request(c.ID); q.outcome != Superseded {
		t.Errorf("first push: %+v, want superseded", q)
	}
}

func TestAPIDeployDoesNotCoolDown(t *testing.T) {
	h := newCoolHarness(t)
	h.rt.push("v1", time.Now())
	ds, err := h.e.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web", Tag: "v1",
		Trigger: TriggerAPI, Actor: "lead"})
	if err != nil || ds[0] != Queued {
		t.Fatalf("enqueue: %v %v", ds, err)
	}
	if r := h.next(); r.Outcome != Succeeded {
		t.Fatalf("API deploy of a new image: %s %v", r.Outcome, r.Err)
	}
}

// A push accepted after the cooling one, and not yet deployed when
// liftoff died, replaces it at the next start: the older image never
// deploys after the newer one.
func TestRecoveredPushReplacesTheCoolingOne(t *testing.T) {
	h := newCoolHarness(t)
	h.push("v1", time.Now().Add(-30*time.Minute), "dockerhub")
	if r := h.next(); r.Outcome != Deferred {
		t.Fatalf("young image: %s %v", r.Outcome, r.Err)
	}
	cooling := h.e.Status("web").Cooling
	// v2 accepted in the journal, but liftoff died before it was placed.
	h.rt.push("v2", time.Now().Add(-2*time.Hour))
	ids, err := h.j.Accept(context.Background(), []Request{{Deployment: "web", Image: "docker.io/acme/web", Tag: "v2",
		Trigger: "dockerhub", Delivery: "d-v2", Received: time.Now(), State: Queued}})
	if err != nil {
		t.Fatal(err)
	}
	h.restart()
	if err := h.e.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := h.next(); r.Outcome != Succeeded || r.Request.ID != ids[0] {
		t.Fatalf("after the restart: %s %s %v, want v2 deployed", r.Request.Tag, r.Outcome, r.Err)
	}
	h.none()
	h.runs("web", "sha256:v2")
	if q := h.j.request(cooling.ID); q.outcome != Superseded {
		t.Errorf("the cooling push: %+v, want superseded by the recovered one", q)
	}
}
