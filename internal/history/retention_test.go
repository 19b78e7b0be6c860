package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// pruneAll calls Prune until it deletes nothing, and checks that no call
// deleted more than batch rows of a table.
func pruneAll(t *testing.T, s *Store, r Retention, batch int) Pruned {
	t.Helper()
	var sum Pruned
	for range 10_000 {
		p, err := s.Prune(context.Background(), r, batch)
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if p.Deliveries > batch || p.Requests > batch || p.Deploys > batch {
			t.Fatalf("Prune(batch %d) deleted %+v", batch, p)
		}
		if p.Total() == 0 {
			return sum
		}
		sum.Deliveries, sum.Requests, sum.Deploys = sum.Deliveries+p.Deliveries, sum.Requests+p.Requests, sum.Deploys+p.Deploys
	}
	t.Fatal("Prune never finished")
	return sum
}

// TestPruneDeploysKeepsWhatRollbackAndPromotionNeed: beyond each
// deployment's newest N deploys, Prune deletes the rest in batches, but
// keeps an unfinished deploy, a deploy serving an open request, and the
// newest success of each of the N newest succeeded digests: the deploy a
// rollback goes back to and the success promote_from looks for.
func TestPruneDeploysKeepsWhatRollbackAndPromotionNeed(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	add := func(deployment, digest string, o deploy.Outcome, request int64) int64 {
		t.Helper()
		r := record(deployment)
		r.Digest, r.Request = digest, request
		id, err := s.Begin(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if o != "" {
			if err := s.Finish(ctx, id, deploy.Record{Outcome: o}, false); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	unfinished := add("web", "sha256:u", "", 0)
	reqs, err := s.Accept(ctx, []deploy.Request{{Deployment: "web", Image: "docker.io/acme/web", Tag: "v9", Trigger: "api", Delivery: "d-open", Received: t0}})
	if err != nil {
		t.Fatal(err)
	}
	serving := add("web", "sha256:r", deploy.Failed, reqs[0])
	add("web", "sha256:a", deploy.Succeeded, 0)
	a := add("web", "sha256:a", deploy.Succeeded, 0) // the rollback target
	for i := range 20 {
		add("web", fmt.Sprintf("sha256:f%d", i), deploy.RolledBack, 0)
	}
	b := add("web", "sha256:b", deploy.Succeeded, 0) // running now
	for range 3 {
		add("web", "sha256:b", deploy.Unchanged, 0)
	}
	var stage []int64
	for i := range 6 {
		stage = append(stage, add("stage", fmt.Sprintf("sha256:s%d", i), deploy.Succeeded, 0))
	}

	p := pruneAll(t, s, Retention{Deploys: 3}, 4)
	if p.Deliveries != 0 || p.Requests != 0 {
		t.Errorf("Retention{Deploys} pruned %+v", p)
	}
	kept := map[int64]bool{}
	for _, d := range []string{"web", "stage"} {
		rs, err := s.List(ctx, d, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			kept[r.ID] = true
		}
	}
	// web: the 3 newest (unchanged of b), b (its newest success), the
	// newer success of a, the unfinished one, the one serving a request.
	for name, id := range map[string]int64{"unfinished": unfinished, "serving an open request": serving, "b": b} {
		if !kept[id] {
			t.Errorf("deploy %d (%s) was pruned", id, name)
		}
	}
	if r, ok, err := s.LastSucceeded(ctx, "web", "sha256:b"); err != nil || !ok || r.Digest != "sha256:a" || r.ID != a {
		t.Errorf("rollback target after pruning: %+v %v %v, want the newest success of sha256:a", r, ok, err)
	}
	if ok, _ := s.Succeeded(ctx, "web", "sha256:a"); !ok {
		t.Error("promote_from: sha256:a no longer succeeded in web")
	}
	if len(kept) != 3+1+1+1+1+3 {
		t.Errorf("kept %d deploys, want 7 of web and 3 of stage: %v", len(kept), kept)
	}
	// stage: only its 3 newest (which are also its 3 newest digests).
	for i, id := range stage {
		if want := i >= 3; kept[id] != want {
			t.Errorf("stage deploy %d (sha256:s%d) kept %v, want %v", id, i, kept[id], want)
		}
	}
	if ok, _ := s.Succeeded(ctx, "stage", "sha256:s3"); !ok {
		t.Error("promote_from: sha256:s3 no longer succeeded in stage")
	}
	rows, err := s.Rows(ctx)
	if err != nil || rows["deploys"] != int64(len(kept)) || rows["requests"] != 1 {
		t.Errorf("Rows = %v, %v", rows, err)
	}
}

// TestPruneDeliveries: deliveries older than the age and beyond the
// newest MaxDeliveries go, in batches, and so do requests settled before
// the age; the delivery of an open request and the open request stay.
func TestPruneDeliveries(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(60 * 24 * time.Hour)
	s, _ := open(t, WithClock(func() time.Time { return now }))
	var ds []deploy.Delivery
	for i := range 300 {
		at := now.Add(-time.Duration(300-i) * time.Minute) // recent
		if i < 50 {
			at = t0 // older than 30 days
		}
		ds = append(ds, deploy.Delivery{ID: fmt.Sprintf("d-%03d", i), Source: "dockerhub", Image: "docker.io/acme/web", Tag: "pr-1", Received: at})
	}
	if err := s.RecordDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	// d-000 (old) is the delivery of a request still pending; d-001 of
	// one settled long ago.
	ids, err := s.Accept(ctx, []deploy.Request{
		{Deployment: "web", Image: "docker.io/acme/web", Tag: "pr-1", Trigger: "dockerhub", Delivery: "d-000", Received: t0},
		{Deployment: "web", Image: "docker.io/acme/web", Tag: "pr-1", Trigger: "dockerhub", Delivery: "d-001", Received: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE requests SET outcome = 'superseded', settled_at = ? WHERE id = ?`, t0.UnixNano(), ids[1]); err != nil {
		t.Fatal(err)
	}

	p := pruneAll(t, s, Retention{DeliveryAge: 30 * 24 * time.Hour, MaxDeliveries: 200}, 16)
	// 49 old ones (d-000 stays), and of the 250 recent ones the 50 oldest
	// are beyond the newest 200.
	if p.Deliveries != 49+50 || p.Requests != 1 || p.Deploys != 0 {
		t.Errorf("pruned %+v, want 99 deliveries and 1 request", p)
	}
	got, _, err := s.Deliveries(ctx, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, d := range got {
		have[d.ID] = true
	}
	if len(got) != 201 || !have["d-000"] || have["d-001"] || have["d-099"] || !have["d-100"] || !have["d-299"] {
		t.Errorf("kept %d deliveries (d-000 %v, d-001 %v, d-099 %v, d-100 %v, d-299 %v), want d-000 and d-100..d-299",
			len(got), have["d-000"], have["d-001"], have["d-099"], have["d-100"], have["d-299"])
	}
	if open, err := s.OpenRequests(ctx); err != nil || len(open) != 1 || open[0].ID != ids[0] {
		t.Errorf("open requests after pruning: %+v %v", open, err)
	}
	if rows, err := s.Rows(ctx); err != nil || rows["deliveries"] != 201 || rows["requests"] != 1 {
		t.Errorf("Rows = %v, %v", rows, err)
	}
	// Nothing beyond the retention: nothing to do.
	if p, err := s.Prune(ctx, Retention{DeliveryAge: 30 * 24 * time.Hour, MaxDeliveries: 200, Deploys: 3}, 16); err != nil || p.Total() != 0 {
		t.Errorf("second Prune: %+v %v", p, err)
	}
}
