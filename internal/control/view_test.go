package control

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// viewEngine is an Engine whose Status is st; nothing runs.
type viewEngine struct {
	Engine
	st deploy.Status
}

func (e viewEngine) Status(string) deploy.Status { return e.st }
func (e viewEngine) Running(context.Context, string) (*deploy.Container, error) {
	return nil, nil
}
func (e viewEngine) Down() map[string]error { return nil }

// viewHistory has no deploys.
type viewHistory struct{ History }

func (viewHistory) Deploys(context.Context, deploy.DeployQuery) ([]deploy.Record, int64, error) {
	return nil, 0, nil
}

// TestViewNamesEveryWaitingPush: the pending, held and cooling pushes each
// carry their request id (a held or cooling push showed 0), the digest
// bound to them, and a cooling push who approved it.
func TestViewNamesEveryWaitingPush(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	push := func(id int64, digest, actor string) *deploy.Request {
		return &deploy.Request{ID: id, Deployment: "api", Tag: "release", Digest: digest, Delivery: "d", Pusher: "ci",
			Received: now, Expires: now.Add(time.Hour), Until: now.Add(10 * time.Minute), Actor: actor}
	}
	st := deploy.Status{Pending: push(7, "sha256:p", ""), Held: push(8, "sha256:h", ""), Cooling: push(6, "sha256:c", "lead")}
	s := New(Options{Engine: viewEngine{st: st}, History: viewHistory{}, Logger: zerolog.Nop()})
	v, _, err := s.View(context.Background(), &deployments.Deployment{Name: "api", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		p          *apiv1.Push
		request    int64
		digest     string
		approvedBy string
	}{
		{"pending", v.Pending, 7, "sha256:p", ""},
		{"held", v.Held, 8, "sha256:h", ""},
		{"cooling", v.Cooling, 6, "sha256:c", "lead"},
	} {
		if p := tc.p; p == nil || p.Request != tc.request || p.Digest != tc.digest || p.ApprovedBy != tc.approvedBy {
			t.Fatalf("%s: %+v, want request %d, digest %s, approved by %q", tc.name, p, tc.request, tc.digest, tc.approvedBy)
		}
	}
	if !v.Cooling.Until.Equal(now.Add(10*time.Minute)) || !v.Held.Expires.IsZero() || v.Held.ApprovedBy != "" {
		t.Errorf("cooling until %s, held %+v", v.Cooling.Until, v.Held)
	}
}
