package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// A deploy of a service: the steps' service ends (resolve, the spec) and
// the swap, which hands the update to Swarm and waits for its verdict.

// currentService finds the deployment's service, if any, as the container
// the steps before the swap know (its image, labels and id), and notes it
// as a.curSvc.
func (a *attempt) currentService(ctx context.Context) (*Container, error) {
	svc, err := a.e.services(a.d)
	if err != nil {
		return nil, err
	}
	if err := svc.SwarmManager(ctx); err != nil {
		return nil, fmt.Errorf("engine %q: %w", engineName(a.d), err)
	}
	s, err := svc.InspectService(ctx, a.name)
	switch {
	case errors.Is(err, ErrNotFound):
		a.curSvc = nil
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("inspect service %s: %w", a.name, err)
	}
	a.curSvc = &s
	c := serviceContainer(s)
	return &c, nil
}

// serviceContainer is a service as the API shows what runs: its id and
// name, its labels, and its tasks counted in Health.
func serviceContainer(s Service) Container {
	c := Container{ID: s.ID, Name: s.Name, Image: s.Image, Labels: s.Labels, StartedAt: s.Since,
		Running: s.Running > 0, Health: fmt.Sprintf("%d/%d tasks", s.Running, s.Replicas)}
	switch {
	case s.UpdateState == UpdateUpdating || s.UpdateState == UpdateRollbackStarted:
		c.Status = "updating"
	case s.UpdateState == UpdatePaused || s.UpdateState == UpdateRollbackPaused:
		c.Status = "paused"
	case s.Running >= s.Replicas && s.Replicas > 0:
		c.Status = "running"
	default:
		c.Status = "degraded"
	}
	return c
}

// resolvedService is resolve's end for a service: a service of that name
// that liftoff did not create fails the deploy; one that runs the digest
// already, all its tasks up and no update pending, is unchanged.
func (a *attempt) resolvedService(digest string) (Outcome, error) {
	s := a.curSvc
	if s == nil {
		return "", nil
	}
	a.res.Previous = s.Labels[LabelDigest]
	if !s.Managed() || s.Labels[LabelDeployment] != a.d.Name {
		return Failed, fmt.Errorf("service %q exists and was not created by liftoff for this deployment; remove it (docker service rm) to let liftoff create its own", a.name)
	}
	settled := s.UpdateState == "" || s.UpdateState == UpdateCompleted
	if s.Labels[LabelDigest] == digest && settled && s.Running >= s.Replicas && !a.e.isDown(a.d.Name) {
		a.res.ContainerID = s.ID
		return Unchanged, nil
	}
	return "", nil
}

// serviceSpec is the service to deploy: the container spec prepare built
// (environment, labels, networks, ports, volumes, health check), with the
// deployment's replicas and update settings.
func (a *attempt) serviceSpec() ServiceSpec {
	s, u := a.d.Service, a.d.Service.Update
	spec := ServiceSpec{
		Spec:      a.spec,
		Replicas:  max(s.Replicas, 1),
		StopGrace: a.d.StopTimeout,
		Auth:      a.auth,
		Update: ServiceUpdate{Parallelism: u.Parallelism, Delay: u.Delay, Order: u.Order,
			Monitor: u.Monitor, FailureAction: u.FailureAction},
		// The same digest again (a deployment down, or an update Swarm
		// paused): Swarm replaces the tasks only if told to.
		Force: a.curSvc != nil && a.curSvc.Labels[LabelDigest] == a.res.Digest,
	}
	if a.id != 0 {
		spec.ServiceLabels = map[string]string{LabelDeploy: strconv.FormatInt(a.id, 10)}
	}
	return spec
}

// serviceSwap deploys the service and waits for Swarm's update to end.
func (a *attempt) serviceSwap() (Outcome, error) {
	svc, err := a.e.services(a.d)
	if err != nil {
		return Failed, err
	}
	spec := a.serviceSpec()
	fresh := a.cur == nil
	a.prev = a.cur // journals the service's id as PrevID: it existed
	err = a.step(StepService, a.e.opts.OpTimeout, func(ctx context.Context) error {
		id, _, err := svc.DeployService(ctx, spec)
		if err == nil {
			a.newID = id
		}
		return err
	})
	switch {
	case err != nil && a.ctx.Err() != nil:
		// liftoff is stopping, and Swarm may have taken the update: the
		// next start tells from the service's labels (see settleService).
		a.unrepaired = true
		return Failed, fmt.Errorf("liftoff stopped while it asked Swarm to update the service: %w", err)
	case err != nil:
		// A create or update Swarm refused changed nothing.
		return Failed, err
	}
	a.res.ContainerID = a.newID
	bound := a.e.serviceWait(a.d)
	var o Outcome
	var why error
	err = a.step(StepGate, bound+a.e.opts.OpTimeout, func(ctx context.Context) error {
		var err error
		o, why, err = a.e.awaitService(ctx, svc, a.d, a.id, a.res.Digest, fresh, bound)
		return err
	})
	switch {
	case err != nil && a.ctx.Err() != nil:
		// liftoff is stopping: the update goes on in Swarm. The deploy
		// stays unfinished, so that the next start waits for it and
		// records how it ended.
		a.unrepaired = true
		return Failed, fmt.Errorf("liftoff stopped while Swarm updated the service: %w", err)
	case err != nil:
		return Failed, err
	case o == Failed && fresh:
		// As a first container that fails its gate is removed: nothing
		// of the deployment was serving.
		if rerr := a.step(StepRollback, a.e.opts.OpTimeout, func(ctx context.Context) error {
			return svc.RemoveService(ctx, a.name)
		}); rerr != nil {
			return Failed, errors.Join(why, rerr)
		}
		a.res.ContainerID = ""
		return Failed, fmt.Errorf("%w; the new service was removed", why)
	case o == RolledBack && a.prev != nil:
		a.res.ContainerID = a.prev.ID
		a.log.Warn().Err(why).Msg("Swarm rolled the service back")
	}
	return o, why
}

// serviceWait bounds the wait for Swarm's update of d: each batch of
// tasks may take the health timeout to start and the monitor period to be
// trusted, and a rollback as long again.
func (e *Engine) serviceWait(d *deployments.Deployment) time.Duration {
	s := d.Service
	replicas, par := max(s.Replicas, 1), s.Update.Parallelism
	batches := uint64(1)
	if par > 0 {
		batches = (replicas + par - 1) / par
	}
	per := d.Health.Timeout + s.Update.Monitor + s.Update.Delay
	return 2*time.Duration(batches)*per + d.Health.MinUptime + e.opts.waits.serviceSlack
}

// awaitService waits, up to bound, for Swarm's update of the service to
// the spec of deploy id (digest) to end, and says how it ended: the
// outcome and, but for Succeeded, why. err is set only when the engine
// could not tell (it did not answer, the service is gone, ctx ended).
//
// A service created fresh has no update status: it has succeeded once all
// its tasks run the digest, for the deployment's min_uptime; a task of it
// that ends fails it. An update resets the status; Swarm sets it as it
// goes, and its end is the outcome.
func (e *Engine) awaitService(ctx context.Context, svc Services, d *deployments.Deployment, id int64, digest string, fresh bool, bound time.Duration) (o Outcome, why, err error) {
	name := d.ContainerName()
	deadline := time.Now().Add(bound)
	var up time.Time // since when all tasks run the digest
	var last Service
	// Why Swarm rolls back or pauses: its message as it begins to (it
	// names the task), and how the last task of the new spec ended.
	var reason, taskErr string
	detail := func(s Service) string {
		msg := s.UpdateMessage
		if reason != "" && reason != msg {
			msg = reason + "; " + msg
		}
		if taskErr != "" {
			msg += " (a new task: " + taskErr + ")"
		}
		return msg
	}
	for {
		s, err := svc.InspectService(ctx, name)
		if err != nil {
			return "", nil, fmt.Errorf("inspect service %s: %w", name, err)
		}
		last = s
		ours := s.Labels[LabelDigest] == digest && (id == 0 || s.Labels[LabelDeploy] == strconv.FormatInt(id, 10))
		if ours && s.TaskError != "" {
			taskErr = s.TaskError
		}
		switch s.UpdateState {
		case UpdateCompleted:
			if ours {
				return Succeeded, nil, nil
			}
			return Failed, fmt.Errorf("the service was changed during the deploy: it runs %s", s.Image), nil
		case UpdateRollbackCompleted:
			return RolledBack, fmt.Errorf("%w: Swarm rolled the update back: %s", ErrGate, detail(s)), nil
		case UpdatePaused, UpdateRollbackPaused:
			return Failed, fmt.Errorf("%w: Swarm's update is %s: %s", ErrGate, s.UpdateState, detail(s)), nil
		case "":
			switch {
			case !ours:
				up = time.Time{}
			case fresh && s.TaskError != "":
				return Failed, fmt.Errorf("%w: a task of the new service ended: %s", ErrGate, s.TaskError), nil
			case s.Replicas > 0 && s.Running >= s.Replicas:
				if up.IsZero() {
					up = time.Now()
				}
				if time.Since(up) >= d.Health.MinUptime {
					return Succeeded, nil, nil
				}
			default:
				up = time.Time{}
			}
		case UpdateRollbackStarted:
			reason, up = s.UpdateMessage, time.Time{}
		default: // updating
			up = time.Time{}
		}
		if time.Now().After(deadline) {
			return Failed, fmt.Errorf("%w: Swarm's update did not end within %s (state %q, %d/%d tasks of the new spec running): %s",
				ErrGate, bound, last.UpdateState, last.Running, last.Replicas, detail(last)), nil
		}
		select {
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(e.opts.waits.servicePoll):
		}
	}
}
