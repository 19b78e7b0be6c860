package history

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/liftoff-deploy/liftoff/deploy"
)

func TestRequestsPromise(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	req := func(tag string) deploy.Request {
		return deploy.Request{Deployment: "web", Image: "docker.io/acme/web", Tag: tag, Digest: "", Trigger: "dockerhub",
			Delivery: "d-" + tag, Pusher: "ci", Received: t0}
	}
	ids, err := s.Accept(ctx, []deploy.Request{req("v1"), req("v2"), req("v3")})
	if err != nil || len(ids) != 3 || ids[0] >= ids[1] || ids[1] >= ids[2] {
		t.Fatalf("Accept = %v, %v", ids, err)
	}
	open := func() []deploy.Request {
		t.Helper()
		rs, err := s.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	want := []deploy.Request{req("v1"), req("v2"), req("v3")}
	for i := range want {
		want[i].ID = ids[i]
	}
	if got := open(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Open:\n got %+v\nwant %+v", got, want)
	}

	// v1 is superseded; v2's deploy is interrupted (finished without
	// settling), then a second deploy of it succeeds and settles it.
	if err := s.Settle(ctx, []int64{ids[0]}, deploy.Superseded, "later push"); err != nil {
		t.Fatal(err)
	}
	r := record("web")
	r.Request = ids[1]
	d1, _ := s.Begin(ctx, r)
	if err := s.Finish(ctx, d1, deploy.Record{Outcome: deploy.RolledBack, Error: "interrupted"}, false); err != nil {
		t.Fatal(err)
	}
	got := open()
	if len(got) != 2 || got[0].ID != ids[1] || got[0].Attempts != 1 || got[1].ID != ids[2] || got[1].Attempts != 0 {
		t.Fatalf("Open after v1 superseded and v2 interrupted once: %+v", got)
	}
	d2, _ := s.Begin(ctx, r)
	if err := s.Finish(ctx, d2, deploy.Record{Outcome: deploy.Succeeded}, true); err != nil {
		t.Fatal(err)
	}
	if got := open(); len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("Open after v2 succeeded: %+v", got)
	}
	// A settled request keeps its first outcome.
	if err := s.Settle(ctx, []int64{ids[0], ids[1]}, deploy.Failed, "again"); err != nil {
		t.Fatal(err)
	}
	var outcome, reason string
	if err := s.r.QueryRowContext(ctx, "SELECT outcome, reason FROM requests WHERE id = ?", ids[1]).Scan(&outcome, &reason); err != nil {
		t.Fatal(err)
	}
	if outcome != string(deploy.Succeeded) {
		t.Errorf("v2's request: %s %q, want succeeded kept", outcome, reason)
	}
	if recs, _ := s.List(ctx, "web", 10); len(recs) != 2 || recs[0].Request != ids[1] {
		t.Errorf("deploys: %+v, want both linked to v2's request", recs)
	}
}

// TestMigrateKeepsVersionOneFiles: a history written by the first schema
// opens, keeps its deploys, and gains the requests table.
func TestMigrateKeepsVersionOneFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(migrations()[0] + `PRAGMA user_version = 1;
		INSERT INTO deploys (deployment, environment, image, tag, digest, previous_digest, "trigger", delivery, pusher,
			step, prev_container, new_container, error, started_at)
		VALUES ('web', 'staging', 'docker.io/acme/web', 'v1', 'sha256:a', '', 'dockerhub', 'd', 'ci', 'gate', '', 'c1', '', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open a version 1 file: %v", err)
	}
	defer s.Close()
	un, err := s.Unfinished(context.Background())
	if err != nil || len(un) != 1 || un[0].Tag != "v1" || un[0].Request != 0 {
		t.Fatalf("unfinished after migration: %+v, %v", un, err)
	}
	if open, err := s.Open(context.Background()); err != nil || len(open) != 0 {
		t.Errorf("open requests after migration: %+v, %v", open, err)
	}
}
