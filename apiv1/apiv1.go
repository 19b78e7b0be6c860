// Package apiv1 is the one package of liftoff meant to be imported from
// outside: the JSON answers and requests of liftoff's management API under
// /api/v1, for the liftoff CLI and other Go clients, and the few helpers
// that format what they hold as liftoff shows it. The server writes these
// types and the client reads them, so the two cannot drift apart.
//
// A field that may be absent is a pointer (null in JSON) or has omitempty;
// times are UTC.
package apiv1

import "time"

// Deployment is a deployment as the API shows it now: GET /deployments
// lists them, GET /deployments/{name} is one (with History), and pause
// and resume answer it (with Resumed).
type Deployment struct {
	Name        string     `json:"name"`
	Environment string     `json:"environment"`
	Engine      string     `json:"engine"` // the Docker engine it runs on
	Image       string     `json:"image"`
	Tags        []string   `json:"tags"`
	Strategy    string     `json:"strategy"`
	Paused      bool       `json:"paused"`
	PausedBy    string     `json:"paused_by,omitempty"`
	PausedSince *time.Time `json:"paused_since,omitempty"`
	Running     *Running   `json:"running"`
	// EngineError says why what runs is not known: the deployment's
	// engine does not answer (in the list only; GET of the one
	// deployment answers 503 then).
	EngineError *string `json:"engine_error,omitempty"`
	// Down says why no container of the deployment passes its health
	// gate, after a rollback or a repair that could not leave one.
	Down    *string `json:"down"`
	Last    *Last   `json:"last"`
	Pending *Push   `json:"pending"` // awaiting approval
	Held    *Push   `json:"held"`    // held while paused
	// Cooling is the push whose image is younger than the deployment's
	// min_image_age: it deploys at its Until.
	Cooling *Push `json:"cooling,omitempty"`
	// Poll is how liftoff polls the deployment's registry for new
	// digests; absent for a deployment that is not polled.
	Poll *Poll `json:"poll,omitempty"`
	// Processes are what runs as each replica of each process of an app
	// of several processes, in the order a deploy swaps them; absent for
	// a deployment without processes (then Running is its container; for
	// an app, Running is its first process's).
	Processes []Process `json:"processes,omitempty"`
	// Canary is the canary release in progress, with its live figures;
	// absent when none runs.
	Canary *Canary `json:"canary,omitempty"`
}

// Process is one replica of a process of an app: what runs as it (null:
// no container).
type Process struct {
	Process string   `json:"process"`
	Replica int      `json:"replica"`
	Running *Running `json:"running"`
}

// Poll is what the polls of a deployment's tags did last (poll.interval in
// the config, or its registry's poll_interval).
type Poll struct {
	IntervalSeconds float64    `json:"interval_seconds"`
	Polled          *time.Time `json:"polled"` // when the last poll ended; null before the first
	// Result is "ok", or what the registry answered the last poll that
	// failed, in one line (credentials redacted); "" before the first.
	Result string     `json:"result"`
	Next   *time.Time `json:"next"` // when the next poll is due; null until planned
}

// Running is the container a deployment runs.
type Running struct {
	Container string     `json:"container"`
	ID        string     `json:"id"`
	Tag       string     `json:"tag"`
	Digest    string     `json:"digest"`
	Since     *time.Time `json:"since"`
	State     string     `json:"state"`
	Health    string     `json:"health"`
}

// Last is a deployment's newest deploy, in short.
type Last struct {
	ID       int64      `json:"id"`
	Delivery string     `json:"delivery"`
	Trigger  string     `json:"trigger"`
	Actor    string     `json:"actor"`
	Step     string     `json:"step,omitempty"` // while it runs: how far it got
	Outcome  *string    `json:"outcome"`        // null while it runs
	Tag      string     `json:"tag"`
	Digest   string     `json:"digest"`
	Started  time.Time  `json:"started"`
	Ended    *time.Time `json:"ended"`
	Error    string     `json:"error"`
}

// Push is a push a deployment keeps: pending approval (with Expires),
// held while it is paused, or cooling down (with Until). Request is the
// accepted request's id, which an approval or a rejection names
// (DecideRequest); Digest is what the tag pointed to when the push arrived,
// which an approval deploys (empty for a pending push whose tag could not
// be resolved: it cannot be approved).
type Push struct {
	Request  int64     `json:"request"`
	Delivery string    `json:"delivery"`
	Tag      string    `json:"tag"`
	Digest   string    `json:"digest,omitempty"`
	Pusher   string    `json:"pusher"`
	Received time.Time `json:"received"`
	Expires  time.Time `json:"expires,omitzero"`
	Until    time.Time `json:"until,omitzero"` // cooling: when the image is old enough, and deploys
	// ApprovedBy names who approved a cooling push (its environment
	// requires approval): it deploys without asking again.
	ApprovedBy string `json:"approved_by,omitempty"`
}

// Deploy is one deploy of the history.
type Deploy struct {
	ID             int64  `json:"id"`
	Deployment     string `json:"deployment"`
	Environment    string `json:"environment"`
	Image          string `json:"image"`
	Tag            string `json:"tag"`
	Digest         string `json:"digest"`
	PreviousDigest string `json:"previous_digest"`
	// ReportedDigest is the digest the webhook's sender said it pushed,
	// shown only when the tag resolved to another one (DigestMismatch):
	// Digest is what deployed.
	ReportedDigest string `json:"reported_digest,omitempty"`
	DigestMismatch bool   `json:"digest_mismatch,omitempty"`
	// VouchedBy is the deploy of promote_from's deployment whose image
	// had the same revision label (promote_from with match: revision).
	VouchedBy *Vouch  `json:"vouched_by,omitempty"`
	Trigger   string  `json:"trigger"`
	Actor     string  `json:"actor"`
	Pusher    string  `json:"pusher"`
	Delivery  string  `json:"delivery"`
	Outcome   *string `json:"outcome"` // null while it runs
	// Settled: the push this deploy served reached its end; false while
	// the deploy runs, and for one interrupted that a resumed deploy of
	// the same delivery follows.
	Settled bool       `json:"settled"`
	Step    string     `json:"step,omitempty"` // while it runs: how far it got
	Error   string     `json:"error"`
	Started time.Time  `json:"started"`
	Ended   *time.Time `json:"ended"`
	// Phases are the seconds each step took, by step name. The output of
	// its backup and release commands is not here: a failed step's last
	// line is in Error, the rest in DeployLogs (scope logs:<env>).
	Phases map[string]float64 `json:"phases"`
}

// DeployLogs is what GET /deploys/{id}/logs answers (scope logs:<env>):
// the end of the output of the deploy's backup and release commands (64
// KiB of each at most), secrets redacted; "" for a command that did not
// run or printed nothing.
type DeployLogs struct {
	ID          int64  `json:"id"`
	Deployment  string `json:"deployment"`
	Environment string `json:"environment"`
	Backup      string `json:"backup"`
	Release     string `json:"release"`
}

// Delivery is one webhook delivery or API request that asked for
// something, as GET /deliveries lists it.
type Delivery struct {
	ID       string    `json:"id"`
	Source   string    `json:"source"` // the webhook source, or "api"
	Image    string    `json:"image"`
	Tag      string    `json:"tag"`
	Pusher   string    `json:"pusher"`
	Actor    string    `json:"actor"`
	Received time.Time `json:"received"`
	Accepted []string  `json:"accepted"` // deployments queued
	Ignored  []Ignored `json:"ignored"`  // and why the others were not
}

// Ignored says why a push does not deploy a deployment, or, with Tag
// instead, is not deployable at all.
type Ignored struct {
	Deployment string `json:"deployment,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Reason     string `json:"reason"`
}

// Vouch is the deploy that let an image of the same revision through
// promote_from: its id and deployment, and the revision they share.
type Vouch struct {
	ID         int64  `json:"id"`
	Deployment string `json:"deployment"`
	Revision   string `json:"revision"`
}
