package history

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
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
		rs, err := s.OpenRequests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	want := []deploy.Request{req("v1"), req("v2"), req("v3")}
	for i := range want {
		want[i].ID, want[i].State = ids[i], deploy.Queued
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
	if open, err := s.OpenRequests(context.Background()); err != nil || len(open) != 0 {
		t.Errorf("open requests after migration: %+v, %v", open, err)
	}
}

// TestHeldAndPending: where an open request waits, who approved it, and
// which deployments are paused survive in the file.
func TestHeldAndPending(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	expires := t0.Add(24 * time.Hour)
	ids, err := s.Accept(ctx, []deploy.Request{
		{Deployment: "web", Image: "i", Tag: "v1", Trigger: "dockerhub", Received: t0, State: deploy.Held},
		{Deployment: "api", Image: "i", Tag: "v1", Trigger: "dockerhub", Received: t0, State: deploy.Pending, Expires: expires},
	})
	if err != nil {
		t.Fatal(err)
	}
	open, _ := s.OpenRequests(ctx)
	if len(open) != 2 || open[0].State != deploy.Held || open[1].State != deploy.Pending || !open[1].Expires.Equal(expires) {
		t.Fatalf("open: %+v", open)
	}
	if err := s.Move(ctx, ids[1], deploy.Queued, "lead"); err != nil {
		t.Fatal(err)
	}
	open, _ = s.OpenRequests(ctx)
	if open[1].State != deploy.Queued || open[1].Actor != "lead" {
		t.Errorf("approved: %+v", open[1])
	}
	if err := s.Settle(ctx, []int64{ids[0]}, deploy.Superseded, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Move(ctx, ids[0], deploy.Queued, ""); err == nil {
		t.Error("a settled request moved")
	}

	if err := s.SetPaused(ctx, deploy.Pause{Deployment: "web", Paused: true, Actor: "lead", Since: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPaused(ctx, deploy.Pause{Deployment: "api", Paused: true, Actor: "ci", Since: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPaused(ctx, deploy.Pause{Deployment: "api"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Paused(ctx)
	if want := []deploy.Pause{{Deployment: "web", Paused: true, Actor: "lead", Since: t0}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Paused = %+v, %v; want %+v", got, err, want)
	}
}

// TestDeploysQuery: filters, newest first, pages by cursor.
func TestDeploysQuery(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	add := func(deployment, env, digest string, o deploy.Outcome, delivery string) int64 {
		r := record(deployment)
		r.Environment, r.Delivery = env, delivery
		id, err := s.Begin(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, id, deploy.Record{Outcome: o, Digest: digest}, false); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a1 := add("web", "staging", "sha256:a", deploy.Succeeded, "d1")
	add("web", "staging", "sha256:b", deploy.RolledBack, "d2")
	p1 := add("api", "production", "sha256:p", deploy.Succeeded, "d2")
	a3 := add("web", "staging", "sha256:c", deploy.Succeeded, "d3")

	ids := func(rs []deploy.Record) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		q    deploy.DeployQuery
		want []int64
	}{
		{deploy.DeployQuery{}, []int64{a3, p1, p1 - 1, a1}},
		{deploy.DeployQuery{Deployment: "web", Outcome: "succeeded"}, []int64{a3, a1}},
		{deploy.DeployQuery{Environment: "production"}, []int64{p1}},
		{deploy.DeployQuery{Delivery: "d2"}, []int64{p1, p1 - 1}},
		{deploy.DeployQuery{Before: p1}, []int64{p1 - 1, a1}},
	} {
		got, next, err := s.Deploys(ctx, tc.q)
		if err != nil || next != 0 || !reflect.DeepEqual(ids(got), tc.want) {
			t.Errorf("Deploys(%+v) = %v next %d %v, want %v", tc.q, ids(got), next, err, tc.want)
		}
	}
	page, next, _ := s.Deploys(ctx, deploy.DeployQuery{Limit: 2})
	if !reflect.DeepEqual(ids(page), []int64{a3, p1}) || next != p1 {
		t.Errorf("first page %v next %d", ids(page), next)
	}
	page, next, _ = s.Deploys(ctx, deploy.DeployQuery{Limit: 2, Before: next})
	if !reflect.DeepEqual(ids(page), []int64{p1 - 1, a1}) || next != 0 {
		t.Errorf("second page %v next %d", ids(page), next)
	}

	if r, ok, err := s.LastSucceeded(ctx, "web", "sha256:c"); err != nil || !ok || r.ID != a1 {
		t.Errorf("LastSucceeded(web, not c) = %d %v %v, want %d", r.ID, ok, err, a1)
	}
	if _, ok, _ := s.LastSucceeded(ctx, "api", "sha256:p"); ok {
		t.Error("LastSucceeded(api, not p) found one")
	}
	add("web", "staging", "sha256:u", deploy.Unchanged, "d4")
	for _, tc := range []struct {
		deployment, digest string
		want               bool
	}{
		{"web", "sha256:a", true}, {"web", "sha256:c", true}, {"api", "sha256:p", true},
		{"web", "sha256:b", false}, // rolled back
		{"web", "sha256:u", true},  // found running: unchanged
		{"api", "sha256:a", false}, // succeeded elsewhere
		{"web", "sha256:z", false},
	} {
		if ok, err := s.Succeeded(ctx, tc.deployment, tc.digest); err != nil || ok != tc.want {
			t.Errorf("Succeeded(%s, %s) = %v %v, want %v", tc.deployment, tc.digest, ok, err, tc.want)
		}
	}
	if r, ok, err := s.Deploy(ctx, a3); err != nil || !ok || r.Digest != "sha256:c" {
		t.Errorf("Deploy(%d) = %+v %v %v", a3, r, ok, err)
	}
	if _, ok, _ := s.Deploy(ctx, 999); ok {
		t.Error("Deploy(999) found one")
	}
}
