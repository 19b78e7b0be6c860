package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Canaries is what the service asks of the deploy engine about canary
// releases (*deploy.Engine); an Engine without it has none.
type Canaries interface {
	Canary(deployment string) (deploy.CanaryStatus, bool)
	PromoteCanary(ctx context.Context, deployment, actor string) error
	AbortCanary(ctx context.Context, deployment, actor string) error
}

var _ Canaries = (*deploy.Engine)(nil)

// Canary actions, as the API's routes name them; both need deploy:<env>.
const (
	CanaryPromote Action = "canary/promote"
	CanaryAbort   Action = "canary/abort"
)

// Canary is d's canary release in progress, with its live figures, or nil.
func (s *Service) Canary(d *deployments.Deployment) *apiv1.Canary {
	c, ok := s.engine.(Canaries)
	if !ok {
		return nil
	}
	st, ok := c.Canary(d.Name)
	if !ok {
		return nil
	}
	return &apiv1.Canary{Tag: st.Tag, Digest: st.Digest, PreviousDigest: st.Previous, Steps: st.Steps,
		Step: st.Step + 1, Weight: st.Weight, Started: st.Started.UTC(), StepStarted: st.StepSince.UTC(),
		Old: side(st.Old), New: side(st.New)}
}

func side(w deploy.Window) apiv1.Side {
	return apiv1.Side{Requests: w.Requests, Errors: w.Errors, Unreachable: w.ConnErrors, ErrorRate: w.ErrorRate,
		P99Seconds: w.P99.Seconds()}
}

// EndCanary promotes (the new container gets all traffic) or aborts (all
// traffic back to the old one, the deploy rolled back) d's canary in
// progress as actor, and returns the delivery of its deploy. ErrConflict
// when none runs.
func (s *Service) EndCanary(ctx context.Context, d *deployments.Deployment, actor string, a Action) (string, error) {
	c, ok := s.engine.(Canaries)
	if !ok {
		return "", fmt.Errorf("%w: %s has no canary in progress", ErrConflict, d.Name)
	}
	st, _ := c.Canary(d.Name)
	end := c.AbortCanary
	if a == CanaryPromote {
		end = c.PromoteCanary
	}
	err := end(ctx, d.Name, actor)
	if errors.Is(err, deploy.ErrNoCanary) {
		return "", fmt.Errorf("%w: %s has no canary in progress", ErrConflict, d.Name)
	}
	if err != nil {
		return "", err
	}
	s.log.Info().Str("deployment", d.Name).Str("actor", actor).Str("action", string(a)).Str("delivery", st.Delivery).
		Msg("api: canary ended by hand")
	return st.Delivery, nil
}
