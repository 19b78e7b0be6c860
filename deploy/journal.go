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
	StepStop     = "stop"     // stopping the previous container
	StepRename   = "rename"   // renaming the previous container to <name>.liftoff-prev
	StepCreate   = "create"   // creating the new container
	StepStart    = "start"    // starting the new container
	StepGate     = "gate"     // waiting for the new container to prove itself
	StepPublish  = "publish"  // start-first: giving the new container its network aliases
	StepCleanup  = "cleanup"  // removing the previous container (the new one passed)
	StepRollback = "rollback" // removing the new container, restoring the previous one
)

// Record is one deploy as the journal keeps it.
type Record struct {
	ID          int64
	Deployment  string
	Environment string
	Image       string // normalized repository
	Tag         string
	Digest      string // resolved digest ("" until resolved)
	Previous    string // digest of the container replaced ("" if none)
	Trigger     string // dockerhub, api, reconcile, ...
	Delivery    string
	Pusher      string

	Step    string  // last step journaled
	PrevID  string  // id of the container being replaced
	NewID   string  // id of the new container, once created
	Outcome Outcome // "" while unfinished
	Error   string
	Started time.Time
	Ended   time.Time // zero while unfinished
	Phases  map[string]time.Duration
}

// Delivery is one accepted webhook delivery.
type Delivery struct {
	ID       string
	Source   string
	Image    string
	Tag      string
	Pusher   string
	Received time.Time
	Accepted []string // deployments queued
}

// Journal records deliveries and deploys durably; the history package
// implements it over SQLite. Every method must be safe for concurrent use.
type Journal interface {
	// Begin records a deploy that starts now and returns its id.
	Begin(ctx context.Context, r Record) (int64, error)
	// Step records, before it is taken, that deploy id takes step; it also
	// stores r's Digest, Previous, PrevID and NewID as they are now.
	Step(ctx context.Context, id int64, r Record) error
	// Finish records the outcome, error, end time and phase durations.
	Finish(ctx context.Context, id int64, r Record) error
	// Unfinished returns the deploys begun and not finished, oldest first.
	Unfinished(ctx context.Context) ([]Record, error)
	// RecordDelivery records an accepted webhook delivery.
	RecordDelivery(ctx context.Context, d Delivery) error
	// List returns the newest deploys of a deployment ("" for all), newest
	// first, at most limit.
	List(ctx context.Context, deployment string, limit int) ([]Record, error)
}
