// Package control is what liftoff lets a person or a client do to its
// deployments, beside the webhooks: deploy a tag or a digest, roll back,
// pause, resume, approve and reject; and what it shows of them. The
// management API and the status page both act and read through one
// Service, so that a button and a route cannot differ in what they check,
// do, log or record.
//
// It knows neither HTTP nor SQL: the deploy engine and the history are
// the small interfaces below, and its errors are sentinels the HTTP side
// maps to a status (internal/server/httperr).
package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/poll"
)

// Engine is what the service asks of the deploy engine (*deploy.Engine).
type Engine interface {
	// Enqueue records and queues requests; deploy.ErrClosed once deploys
	// are no longer taken.
	Enqueue(ctx context.Context, rs ...deploy.Request) ([]deploy.Disposition, error)
	Status(deployment string) deploy.Status
	Running(ctx context.Context, deployment string) (*deploy.Container, error)
	Down() map[string]error
	Pause(ctx context.Context, deployment, actor string) error
	Unpause(ctx context.Context, deployment, actor string) (*deploy.Request, error)
	// Approve and Reject decide the push awaiting approval when it is
	// the one the Decision names (deploy.ErrNotThePending otherwise).
	Approve(ctx context.Context, deployment, actor string, want deploy.Decision) (deploy.Request, error)
	Reject(ctx context.Context, deployment, actor string, want deploy.Decision) (deploy.Request, error)
}

// History is what the service reads of the deploy history
// (*history.Store).
type History interface {
	// Deploys returns the deploys q selects, newest first, and the cursor
	// of the next page (0: none).
	Deploys(ctx context.Context, q deploy.DeployQuery) ([]deploy.Record, int64, error)
	Deploy(ctx context.Context, id int64) (deploy.Record, bool, error)
	// LastSucceeded is the newest succeeded deploy of a deployment whose
	// digest is not except.
	LastSucceeded(ctx context.Context, deployment, except string) (deploy.Record, bool, error)
	// Deliveries returns deliveries newest first and the cursor of the
	// next page (0: none).
	Deliveries(ctx context.Context, limit int, before int64) ([]deploy.Delivery, int64, error)
}

// Polls tells what the polls of a deployment's tags did last
// (*poll.Poller); false for a deployment it does not poll.
type Polls interface {
	Status(deployment string) (poll.Status, bool)
}

// Catalogue finds a deployment of the configuration in force.
type Catalogue interface {
	Deployment(name string) *deployments.Deployment
}

// Errors of the service, each a sentinel the HTTP side maps to a status.
var (
	ErrForbidden    = errors.New("forbidden")
	ErrNoDeployment = errors.New("no such deployment")
	ErrConflict     = errors.New("conflict")
	ErrUnavailable  = errors.New("unavailable")
	// ErrNotRecorded: the engine could not record the request (its
	// journal failed), so it promises nothing; the caller should retry.
	ErrNotRecorded = fmt.Errorf("%w: the push could not be recorded, retry later", ErrUnavailable)
	// ErrDraining: liftoff is shutting down and takes no deploy.
	ErrDraining = fmt.Errorf("%w: shutting down, retry later", ErrUnavailable)
)

// Action is something done to a deployment.
type Action string

// The actions, as the API's routes and the page's buttons name them.
const (
	Deploy   Action = "deploy"
	Rollback Action = "rollback"
	Pause    Action = "pause"
	Resume   Action = "resume"
	Approve  Action = "approve"
	Reject   Action = "reject"
)

// scopes is the scope verb each action takes: the one table the API's
// routes and the page's buttons check.
var scopes = map[Action]deployments.Verb{
	Deploy: deployments.VerbDeploy, Rollback: deployments.VerbDeploy,
	Pause: deployments.VerbDeploy, Resume: deployments.VerbDeploy,
	Approve: deployments.VerbApprove, Reject: deployments.VerbApprove,
}

// ParseAction returns the action named a, if there is one.
func ParseAction(a string) (Action, bool) {
	_, ok := scopes[Action(a)]
	return Action(a), ok
}

// Verb is the scope verb a takes.
func (a Action) Verb() deployments.Verb { return scopes[a] }

// Options configure a Service. Engine, History and Catalogue are required.
type Options struct {
	Engine  Engine
	History History
	// Catalogue returns the configuration in force, read once per call.
	Catalogue func() Catalogue
	Logger    zerolog.Logger
	// Polls, if set, says what the polls did, for the deployments the
	// config polls; nil when nothing is polled.
	Polls Polls
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OnDelivery, if set, is told of every request that acted (the
	// history records them, with source "api"). It must not block.
	OnDelivery func(deploy.Delivery)
}

// Service acts on deployments and reads them. It is safe for concurrent
// use.
type Service struct {
	engine     Engine
	history    History
	polls      Polls
	catalogue  func() Catalogue
	log        zerolog.Logger
	now        func() time.Time
	onDelivery func(deploy.Delivery)
}

// New returns a Service for opts.
func New(opts Options) *Service {
	s := &Service{engine: opts.Engine, history: opts.History, polls: opts.Polls, catalogue: opts.Catalogue, log: opts.Logger,
		now: opts.Now, onDelivery: opts.OnDelivery}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// May checks that p has the scope for verb in env.
func May(p deployments.Principal, verb deployments.Verb, env string) error {
	if !p.Can(verb, env) {
		return fmt.Errorf("%w: this token lacks scope %s", ErrForbidden, deployments.Scope(verb, env))
	}
	return nil
}

// Target finds the deployment name and checks that p has the scope for
// verb in its environment.
func (s *Service) Target(p deployments.Principal, name string, verb deployments.Verb) (*deployments.Deployment, error) {
	cat := s.catalogue()
	if cat == nil {
		return nil, ErrNoDeployment
	}
	d := cat.Deployment(name)
	if d == nil {
		return nil, ErrNoDeployment // the name is not echoed: it may be anything
	}
	if err := May(p, verb, d.Environment); err != nil {
		return nil, err
	}
	return d, nil
}

// record hands a delivery to OnDelivery.
func (s *Service) record(d deploy.Delivery) {
	if s.onDelivery != nil {
		s.onDelivery(d)
	}
}

// TagOr names what a request deploys: its tag, else its digest.
func TagOr(tag, digest string) string {
	if tag != "" {
		return tag
	}
	return digest
}
