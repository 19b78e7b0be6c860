package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

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
