package history

import (
	"context"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// TestVouched: a deploy's revisions are kept; Vouched finds the newest
// deploy of the deployment that succeeded (or was unchanged) with the
// label's revision, and a deploy vouched for reads back who vouched.
func TestVouched(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	const label = "org.opencontainers.image.revision"
	deployWith := func(deployment string, o deploy.Outcome, revs map[string]string) int64 {
		t.Helper()
		r := record(deployment)
		id, err := s.Begin(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		r.Step, r.Revisions = deploy.StepPrepare, revs
		if err := s.Step(ctx, id, r); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, id, deploy.Record{Outcome: o}, false); err != nil {
			t.Fatal(err)
		}
		return id
	}
	deployWith("web-staging", deploy.Succeeded, map[string]string{label: "aaa"})
	newer := deployWith("web-staging", deploy.Succeeded, map[string]string{label: "aaa", "com.example.sha": "x"})
	deployWith("web-staging", deploy.RolledBack, map[string]string{label: "bbb"})
	deployWith("web-other", deploy.Succeeded, map[string]string{label: "ccc"})

	for _, tc := range []struct {
		deployment, label, rev string
		want                   int64
	}{
		{"web-staging", label, "aaa", newer},
		{"web-staging", "com.example.sha", "x", newer},
		{"web-staging", label, "bbb", 0}, // rolled back: no vouch
		{"web-staging", label, "ccc", 0}, // another deployment's
		{"web-staging", "com.example.sha", "aaa", 0},
	} {
		r, ok, err := s.Vouched(ctx, tc.deployment, tc.label, tc.rev)
		if err != nil || ok != (tc.want != 0) || r.ID != tc.want {
			t.Errorf("Vouched(%s, %s, %s) = #%d %v %v, want #%d", tc.deployment, tc.label, tc.rev, r.ID, ok, err, tc.want)
		}
	}

	prod := record("web-prod")
	id, err := s.Begin(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	prod.Step, prod.VouchedBy, prod.VouchedRevision = deploy.StepPrepare, newer, "aaa"
	if err := s.Step(ctx, id, prod); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, id, deploy.Record{Outcome: deploy.Succeeded}, false); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "web-prod", 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("List: %v %v", got, err)
	}
	if g := got[0]; g.VouchedBy != newer || g.VouchedRevision != "aaa" || g.VouchedFrom != "web-staging" {
		t.Errorf("production's deploy: vouched by #%d of %q (%q), want #%d of web-staging (aaa)", g.VouchedBy, g.VouchedFrom, g.VouchedRevision, newer)
	}
}
