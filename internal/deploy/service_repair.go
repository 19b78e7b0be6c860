package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// What runs as a service, for Engine.Running and the metrics, and the
// repair of a service's interrupted deploys.

// runningService is Engine.Running for a service.
func (e *Engine) runningService(ctx context.Context, d *deployments.Deployment) (*Container, error) {
	svc, err := e.services(d)
	if err != nil {
		return nil, err
	}
	s, err := svc.InspectService(ctx, d.ContainerName())
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	c := serviceContainer(s)
	return &c, nil
}

// observeService sets liftoff_deployed_info from the deployment's
// service.
func (e *Engine) observeService(ctx context.Context, d *deployments.Deployment) {
	c, err := e.runningService(ctx, d)
	if err != nil || c == nil || !c.Managed() || c.Labels[LabelDeployment] != d.Name {
		return
	}
	e.metrics.setDeployed(prometheus.Labels{
		"deployment": d.Name, "environment": c.Labels[LabelEnvironment],
		"image": c.Labels[LabelImage], "tag": c.Labels[LabelTag], "digest": c.Labels[LabelDigest],
	})
}

// repairService closes the interrupted deploys of a deployment that is a
// service. It touches no container of the service (Swarm owns its
// tasks): an update the interrupted deploy started is waited for, bounded
// as a deploy waits, and how it ended is the deploy's outcome; a deploy
// interrupted before it reached Swarm failed, and its request is deployed
// again (see Recover). The backup and release containers it left are
// removed.
func (e *Engine) repairService(ctx context.Context, log zerolog.Logger, d *deployments.Deployment, self int64) (bool, error) {
	recs, err := e.interrupted(ctx, d.Name, self)
	if err != nil {
		return false, err
	}
	if err := e.removeOneOffs(ctx, d); err != nil {
		return false, err
	}
	if len(recs) == 0 {
		return false, nil
	}
	last := recs[len(recs)-1]
	v, err := e.settleService(ctx, log, d, last)
	if err != nil {
		return false, fmt.Errorf("reconcile %s: %w", d.Name, err)
	}
	log.Warn().Str("step", last.Step).Str("outcome", string(v.outcome)).Str("repair", v.repair).Msg("reconciled an interrupted deploy of a service")
	e.metrics.repairs.WithLabelValues(d.Name, v.repair).Inc()
	// Swarm's verdict on the update ends the deploy as it would have
	// ended; one that never reached Swarm is deployed again.
	if err := e.finishInterrupted(ctx, d, recs, v.outcome, v.why, !v.again); err != nil {
		return true, err
	}
	return true, nil
}

// verdict is how a repair closes an interrupted deploy of a service.
type verdict struct {
	outcome Outcome
	repair  string // repairFinished, ...
	why     string
	// again: the deploy never reached Swarm; its request stays open, to
	// be deployed again.
	again bool
}

// settleService decides the outcome of an interrupted deploy of a service
// from what Swarm shows, waiting for an update in progress to end.
func (e *Engine) settleService(ctx context.Context, log zerolog.Logger, d *deployments.Deployment, last Record) (verdict, error) {
	at := fmt.Sprintf("interrupted at step %s", last.Step)
	if slices.Contains([]string{"", StepResolve, StepPull, StepPrepare, StepBackup, StepRelease}, last.Step) {
		return verdict{Failed, repairUntouched, at + ", before the service was touched", true}, nil
	}
	svc, err := e.services(d)
	if err != nil {
		return verdict{}, err
	}
	s, err := svc.InspectService(ctx, d.ContainerName())
	switch {
	case errors.Is(err, ErrNotFound):
		return verdict{Failed, repairRemoved, at + "; the service is gone", true}, nil
	case err != nil:
		return verdict{}, err
	}
	if last.Step == StepService && (s.Labels[LabelDeploy] != strconv.FormatInt(last.ID, 10) || s.Labels[LabelDigest] != last.Digest) {
		// The update may never have reached Swarm (or was rolled back
		// already): deploying the push again tells.
		return verdict{Failed, repairUntouched, at + "; the service does not run this deploy's spec", true}, nil
	}
	fresh := last.PrevID == ""
	log.Info().Str("state", s.UpdateState).Msg("reconcile: waiting for Swarm's update of the service that an interrupted deploy started")
	o, cause, err := e.awaitService(ctx, svc, d, last.ID, last.Digest, fresh, e.serviceWait(d))
	switch {
	case err != nil:
		return verdict{}, err
	case o == Succeeded:
		return verdict{o, repairFinished, at + "; Swarm's update of the service completed", false}, nil
	case o == RolledBack:
		return verdict{o, repairRestored, fmt.Sprintf("%s; %v", at, cause), false}, nil
	case fresh:
		if err := svc.RemoveService(ctx, d.ContainerName()); err != nil {
			return verdict{}, err
		}
		return verdict{o, repairRemoved, fmt.Sprintf("%s; %v; the new service was removed", at, cause), false}, nil
	}
	return verdict{o, repairUntouched, fmt.Sprintf("%s; %v", at, cause), false}, nil
}
