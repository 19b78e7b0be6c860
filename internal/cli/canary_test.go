package cli

import (
	"context"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// In the round trip (roundtrip_test.go), web-prod has a canary release in
// progress and the others none.

var _ control.Canaries = (*rtEngine)(nil)

func (e *rtEngine) Canary(d string) (deploy.CanaryStatus, bool) {
	if d != "web-prod" {
		return deploy.CanaryStatus{}, false
	}
	return deploy.CanaryStatus{Deployment: d, Delivery: "d-canary", Tag: "v3", Digest: digestA, Previous: "sha256:" + "b" + digestA[8:],
		Steps: []int{5, 25, 50}, Step: 1, Weight: 25, Started: e.now.Add(-time.Minute), StepSince: e.now.Add(-10 * time.Second),
		Old: deploy.Window{Requests: 2660, P99: 5 * time.Millisecond},
		New: deploy.Window{Requests: 140, Errors: 3, ConnErrors: 1, ErrorRate: 3.0 / 140, P99: 25 * time.Millisecond}}, true
}

func (e *rtEngine) PromoteCanary(_ context.Context, d, _ string) error {
	if d != "web-prod" {
		return deploy.ErrNoCanary
	}
	return nil
}

func (e *rtEngine) AbortCanary(ctx context.Context, d, actor string) error {
	return e.PromoteCanary(ctx, d, actor)
}
