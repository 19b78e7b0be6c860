package deploy

import (
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
	StepCanary   = "canary"   // proxy.canary: the new container takes a share of the requests (each step journaled)
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
	// Reported is the digest the webhook's sender said it pushed ("" when
	// it said none); Digest is what the tag resolved to, which may differ
	// (see Mismatch).
	Reported string
	// Revisions are the image's revision labels (those the config's
	// promote_from read; see vouch.go), by label.
	Revisions map[string]string
	// VouchedBy is the deploy of the promote_from deployment whose image
	// had the same revision, VouchedRevision; 0 unless matched by revision.
	// VouchedFrom is that deploy's deployment, as the journal reads it.
	VouchedBy       int64
	VouchedRevision string
	VouchedFrom     string

	Step    string  // last step journaled
	PrevID  string  // id of the container being replaced
	NewID   string  // id of the new container, once created
	Outcome Outcome // "" while unfinished
	Error   string
	Started time.Time
	Ended   time.Time // zero while unfinished
	Phases  map[string]time.Duration

	// ReleaseOutput and BackupOutput are the end of the release and
	// backup commands' output, secrets redacted: for the logs:<env> scope
	// only (the log and read see a short tail, the error its last line).
	ReleaseOutput string
	BackupOutput  string

	// Open is set by reading the journal: the accepted request the deploy
	// serves is still open, so another deploy of it may follow (it was
	// interrupted, and will be resumed).
	Open bool
}

// Journal records accepted requests and deploys durably, as the Engine
// holds it (Options.Journal): the parts that its callers need, each
// declared where it is used. The history package implements all of them
// over SQLite. Every method must be safe for concurrent use.
//
//   - Requests (queue.go): the accepted pushes, which Enqueue, the holds
//     and Recover keep track of;
//   - Pauses (hold.go): the deployments paused through the API;
//   - Deploys (attempt.go): each deploy, step by step;
//   - Interrupted (repair.go): the deploys reconcile and repair find cut
//     short;
//   - Successes (release.go): what promote_from and the metrics read of
//     past deploys.
type Journal interface {
	Requests
	Pauses
	Deploys
	Interrupted
	Successes
	Coolings
	Revisions
}

// Mismatch tells whether the tag resolved to another digest than the
// webhook's sender reported: the tag moved between the push and the
// deploy, or the sender named another manifest than the registry serves.
func (r Record) Mismatch() bool {
	return r.Reported != "" && r.Digest != "" && r.Reported != r.Digest
}
