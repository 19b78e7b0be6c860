package history

import (
	"context"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// TestCoolingRequest: a request deferred by min_image_age stays open as
// cooling with its time, across a reopen; its deferred deploy is not an
// interrupted attempt; FirstSeen is its deployment's first deploy of the
// digest.
func TestCoolingRequest(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	ids, err := s.Accept(ctx, []deploy.Request{{Deployment: "web", Image: "docker.io/acme/web", Tag: "v1",
		Trigger: "dockerhub", Delivery: "d-v1", Received: t0, Reported: "sha256:reported"}})
	if err != nil {
		t.Fatal(err)
	}
	r := record("web")
	r.Request, r.Digest = ids[0], "sha256:v1"
	id, err := s.Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, id, deploy.Record{Outcome: deploy.Deferred, Digest: "sha256:v1", Ended: t0.Add(time.Second)}, false); err != nil {
		t.Fatal(err)
	}
	until := t0.Add(10 * time.Minute)
	for range 2 { // safe to repeat
		if err := s.Cool(ctx, ids[0], until); err != nil {
			t.Fatal(err)
		}
	}
	later := record("web")
	later.Digest, later.Started = "sha256:v1", t0.Add(time.Minute)
	if _, err := s.Begin(ctx, later); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	rs, err := s2.OpenRequests(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("open requests: %+v %v", rs, err)
	}
	if got := rs[0]; got.State != deploy.Cooling || !got.Until.Equal(until) || got.Attempts != 0 || got.Reported != "sha256:reported" {
		t.Errorf("cooling request: %+v, want cooling until %s, no attempts, reported digest kept", got, until)
	}
	first, err := s2.FirstSeen(ctx, "web", "sha256:v1")
	if err != nil || !first.Equal(t0) {
		t.Errorf("FirstSeen = %s %v, want %s", first, err, t0)
	}
	if never, err := s2.FirstSeen(ctx, "web", "sha256:other"); err != nil || !never.IsZero() {
		t.Errorf("FirstSeen of a digest never deployed = %s %v, want zero", never, err)
	}
	if err := s2.Settle(ctx, ids, deploy.Superseded, "later"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Cool(ctx, ids[0], until); err == nil {
		t.Error("Cool of a settled request: no error")
	}
}
