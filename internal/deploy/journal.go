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
}
