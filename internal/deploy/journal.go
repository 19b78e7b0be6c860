package deploy

import (
	"context"
	"time"
)

// Steps of a deploy as journaled: each is written before it is taken, so
// that after a crash reconcile knows how far the deploy got.
const (
	StepResolve  = "resolve"  // looking up the tag's digest
	StepPull     = "pull"     // pulling image@digest
	StepPrepare  = "prepare"  // building the container's config, checking policy
	StepBackup   = "backup"   // running the environment's backup in a one-off container
	StepRelease  = "release"  // running the release command in a one-off container
	StepService  = "service"  // a service: creating it, or updating it to the new spec
	StepStop     = "stop"     // stopping the previous container
	StepRename   = "rename"   // renaming the previous container to <name>.liftoff-prev
	StepCreate   = "create"   // creating the new container
	StepStart    = "start"    // starting the new container
	StepGate     = "gate"     // waiting for the new container to prove itself
	StepPublish  = "publish"  // start-first: giving the new container its network aliases
	StepCleanup  = "cleanup"  // removing the previous container (the new one passed)
	StepRollback = "rollback" // removing the new container, restoring the previous one
)

// Pause is a deployment paused (or resumed) through the API.
type Pause struct {
	Deployment string
	Paused     bool
	Actor      string
	Since      time.Time
}

// Record is one deploy as the journal keeps it.
type Record struct {
	ID          int64
	Deployment  string
	Environment string
	Image       string // normalized repository
	Tag         string
	Digest      string // resolved digest ("" until resolved)
	Previous    string // digest of the container replaced ("" if none)
	Trigger     string // dockerhub, api, resume, ...
	Delivery    string
	Pusher      string
	Actor       string // API token that asked for it or approved it
	Request     int64  // the accepted request it serves (0: none)

	Step    string  // last step journaled
	PrevID  string  // id of the container being replaced
	NewID   string  // id of the new container, once created
	Outcome Outcome // "" while unfinished
	Error   string
	Started time.Time
	Ended   time.Time // zero while unfinished
	Phases  map[string]time.Duration

	// ReleaseOutput is the end of the release command's output, secrets
	// redacted.
	ReleaseOutput string

	// Open is set by reading the journal: the accepted request the deploy
	// serves is still open, so another deploy of it may follow (it was
	// interrupted, and will be resumed).
	Open bool
}

// Journal records accepted requests and deploys durably; the history
// package implements it over SQLite. Every method must be safe for
// concurrent use.
//
// An accepted request is a promise: Enqueue records it before its sender
// is answered, and it stays open until a deploy of it reaches an outcome
// (Finish with settle) or it is settled otherwise (superseded, not
// retried). After a crash, Recover deploys what is still open.
type Journal interface {
	// Accept records requests taken by the engine and returns their ids,
	// in order. It returns only once they are durable.
	Accept(ctx context.Context, rs []Request) ([]int64, error)
	// Settle closes accepted requests that no deploy will serve, with the
	// outcome (superseded, failed) and why. Settled requests are left as
	// they are.
	Settle(ctx context.Context, ids []int64, o Outcome, why string) error
	// Open returns the accepted requests not settled yet, oldest first,
	// each with ID, State and Attempts set.
	Open(ctx context.Context) ([]Request, error)
	// Move records that an open request now waits as state (a held or
	// pending push is queued, a waiting one held), with actor if not "".
	Move(ctx context.Context, id int64, state Disposition, actor string) error

	// Paused returns the deployments paused now.
	Paused(ctx context.Context) ([]Pause, error)
	// SetPaused pauses (p.Paused) or resumes a deployment.
	SetPaused(ctx context.Context, p Pause) error

	// Begin records a deploy that starts now and returns its id;
	// r.Request links it to its accepted request (0: none).
	Begin(ctx context.Context, r Record) (int64, error)
	// Step records, before it is taken, that deploy id takes step; it also
	// stores r's Digest, Previous, PrevID, NewID and Phases as they are
	// now.
	Step(ctx context.Context, id int64, r Record) error
	// Finish records the outcome, error, end time and phase durations;
	// with settle, the deploy's accepted request is settled with the same
	// outcome, in the same transaction.
	Finish(ctx context.Context, id int64, r Record, settle bool) error
	// Unfinished returns the deploys begun and not finished, oldest first.
	Unfinished(ctx context.Context) ([]Record, error)
	// Succeeded tells whether a deploy of digest to deployment succeeded,
	// or found it running already (unchanged): promote_from.
	Succeeded(ctx context.Context, deployment, digest string) (bool, error)
	// LastSuccess returns when the deployment's newest successful deploy
	// ended; zero if none did. The metrics start from it.
	LastSuccess(ctx context.Context, deployment string) (time.Time, error)
}
