package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// A deployment with deployments[].service runs as a Docker Swarm service
// on its engine, which must be an active swarm manager. A deploy takes the
// same steps up to the release as for a container (the image is pulled on
// the manager, so that its ENV is known and the release can run it); then
// liftoff creates the service, or updates it to the new digest and
// environment (step service), and waits for Swarm's rolling update to end
// (step gate), mapping how it ended: completed is succeeded,
// rollback_completed rolled_back, paused and rollback_paused failed. The
// update itself (its order, batches, monitor and rollback) is Swarm's;
// liftoff touches no task or container of the service.

// Services is what the engine needs of a runtime for deployments that are
// Swarm services. The docker package's Client implements it; a runtime
// without it cannot run them.
type Services interface {
	// SwarmManager returns nil if the engine is an active swarm manager,
	// and otherwise an error saying why it is not (wrapping ErrUnavailable
	// if the engine cannot be reached).
	SwarmManager(ctx context.Context) error
	// InspectService returns the service with that name, its tasks
	// counted, or ErrNotFound.
	InspectService(ctx context.Context, name string) (Service, error)
	// DeployService creates the service spec describes, or updates the
	// service of that name to it (Swarm then rolls it out as the spec's
	// Update says), sending the registry credentials along. It returns
	// the service's id, and whether the service existed (an update).
	DeployService(ctx context.Context, spec ServiceSpec) (id string, updated bool, err error)
	// RemoveService removes a service; one that is gone is not an error.
	RemoveService(ctx context.Context, name string) error
}

// ServiceSpec is a Swarm service to create or update to.
type ServiceSpec struct {
	// Spec is the container of each task, and Spec.Name the service's
	// name. Ports are published on every node (Swarm's routing mesh);
	// Networks must be swarm-scoped (overlay); Restart becomes the tasks'
	// restart policy ("" leaves Swarm's default: restart on any exit).
	Spec
	// ServiceLabels go on the service only, beside Spec.Labels: a change
	// of them replaces no task.
	ServiceLabels map[string]string
	Replicas      uint64
	Update        ServiceUpdate
	// StopGrace is how long a task's container has to stop before it is
	// killed.
	StopGrace time.Duration
	// Auth is sent with the create or update, for the nodes to pull the
	// image (docker service update --with-registry-auth).
	Auth Auth
	// Force makes Swarm replace the tasks even if the spec is unchanged.
	Force bool
}

// ServiceUpdate is how Swarm rolls a new spec out (and back).
type ServiceUpdate struct {
	Parallelism uint64        // tasks updated at once
	Delay       time.Duration // between two batches
	Order       string        // deployments.StartFirst or StopFirst
	Monitor     time.Duration // each new task is watched this long for a failure
	// FailureAction is rollback, pause or continue. A rollback that
	// fails pauses (unless this is continue).
	FailureAction string
}

// Swarm's update states (UpdateStatus.State).
const (
	UpdateUpdating          = "updating"
	UpdatePaused            = "paused"
	UpdateCompleted         = "completed"
	UpdateRollbackStarted   = "rollback_started"
	UpdateRollbackPaused    = "rollback_paused"
	UpdateRollbackCompleted = "rollback_completed"
)

// Service is what the engine knows of a Swarm service.
type Service struct {
	ID     string
	Name   string
	Image  string            // the spec's image
	Labels map[string]string // the service's labels
	// Replicas is how many tasks the spec wants; Running how many tasks
	// of the spec (its image, and its force-update count) run, past their
	// health check if they have one.
	Replicas, Running uint64
	// UpdateState is Swarm's state of the service's last update (one of
	// the Update* constants), "" when it has none: the service was
	// created and never updated, or the last update changed nothing.
	UpdateState   string
	UpdateMessage string
	// TaskError says how the newest task of the spec that ended ended
	// (failed, rejected, or exited), "" if none did.
	TaskError string
	// Since is when the service was created or its last update ended.
	Since time.Time
}

// Managed tells whether liftoff created the service.
func (s Service) Managed() bool { return s.Labels[LabelManaged] == "true" }

// LabelDeploy is the journal id of the deploy that set the service's spec;
// it is on the service, not on its tasks. After a crash it tells whether
// the interrupted deploy's update reached Swarm.
const LabelDeploy = "liftoff.deploy"

// servicePoll is how often a deploy looks at Swarm's update.
const servicePoll = 250 * time.Millisecond

// services returns d's engine as a Services, with an error if it cannot
// run them.
func (e *Engine) services(d *deployments.Deployment) (Services, error) {
	if rt, err := e.runtime(d); err == nil {
		if s, ok := rt.(Services); ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("deployment %s is a service, and engine %q cannot run Swarm services", d.Name, engineName(d))
}

// strategyOf names how d is swapped, for the log: a service's update
// order is Swarm's.
func strategyOf(d *deployments.Deployment) string {
	if d.Service != nil {
		return "swarm " + d.Service.Update.Order
	}
	return d.Strategy
}

func engineName(d *deployments.Deployment) string {
	if d.Engine == "" {
		return deployments.LocalEngine
	}
	return d.Engine
}

// CheckServices checks that the engine of every deployment that is a
// service is an active swarm manager; the error names each deployment
// and engine that is not. An engine that cannot be reached is not
// checked (the deploy checks again).
func (e *Engine) CheckServices(ctx context.Context) error {
	var errs []error
	cfg := e.opts.Config()
	for i := range cfg.Deployments {
		d := &cfg.Deployments[i]
		if d.Service == nil {
			continue
		}
		s, err := e.services(d)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = s.SwarmManager(cctx)
			cancel()
		}
		switch {
		case errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded):
			e.log.Warn().Err(err).Str("deployment", d.Name).Str("engine", engineName(d)).
				Msg("cannot tell whether the engine is a swarm manager: it does not answer; each deploy of the service checks again")
		case err != nil:
			errs = append(errs, fmt.Errorf("deployment %s is a Swarm service, but its engine %q is no swarm manager: %w", d.Name, engineName(d), err))
		}
	}
	return errors.Join(errs...)
}

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
	bound := serviceWait(a.d)
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
func serviceWait(d *deployments.Deployment) time.Duration {
	s := d.Service
	replicas, par := max(s.Replicas, 1), s.Update.Parallelism
	batches := uint64(1)
	if par > 0 {
		batches = (replicas + par - 1) / par
	}
	per := d.Health.Timeout + s.Update.Monitor + s.Update.Delay
	return 2*time.Duration(batches)*per + d.Health.MinUptime + 10*time.Second
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
		case <-time.After(servicePoll):
		}
	}
}

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
	if j := e.opts.Journal; j != nil {
		for i, r := range recs {
			r.Outcome, r.Ended, r.Error = v.outcome, e.opts.Now(), v.why
			if i < len(recs)-1 {
				r.Outcome, r.Error = Failed, fmt.Sprintf("interrupted at step %s; a later deploy followed", r.Step)
			}
			// Swarm's verdict on the update ends the deploy as it would
			// have ended; one that never reached Swarm is deployed again.
			settle := i == len(recs)-1 && !v.again
			if err := j.Finish(ctx, r.ID, r, settle); err != nil {
				return true, fmt.Errorf("journal: %w", err)
			}
			e.metrics.deploys.WithLabelValues(d.Name, d.Environment, string(r.Outcome)).Inc()
		}
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
	o, cause, err := e.awaitService(ctx, svc, d, last.ID, last.Digest, fresh, serviceWait(d))
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
