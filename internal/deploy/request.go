package deploy

import "time"

// Request asks for one deployment to be brought to an image tag (or digest).
type Request struct {
	Deployment string // deployment name
	Image      string // normalized repository, e.g. docker.io/acme/web
	Tag        string // the pushed tag
	Digest     string // optional: the digest to deploy (an API deploy by digest, a poll's)
	// Reported is the digest a webhook's sender said it pushed: never
	// deployed as such (the engine resolves the tag), but recorded with the
	// deploy when the tag resolves to another one.
	Reported string
	Trigger  string    // who asked: the webhook source ("dockerhub"), "api", or "resume"
	Delivery string    // id of the webhook delivery, for logs
	Pusher   string    // who pushed, as the sender says
	Received time.Time // when the request arrived
	// Actor names who asked through the API, or approved the push: the
	// API token's name. "" for a push nobody approved.
	Actor string

	// Set by the engine and kept by the journal.
	State   Disposition // where the accepted request waits
	Expires time.Time   // Pending: when its approval times out
	Until   time.Time   // Cooling: when its image is old enough (min_image_age)
	// ID is the accepted request's id in the journal (0 without one);
	// Attempts how many deploys of it began and were interrupted.
	ID       int64
	Attempts int
}

// Disposition is where Enqueue put a request.
type Disposition string

const (
	Queued  Disposition = "queued"  // deploys now, or after the deploy running
	Held    Disposition = "held"    // the deployment is paused: deploys when resumed
	Pending Disposition = "pending" // awaits approval
	Cooling Disposition = "cooling" // its image is younger than min_image_age: deploys when old enough
)

// Why says why a request put there does not deploy now, as a delivery's
// answer and history list it; "" for Queued. environment is the
// deployment's, whose approvers may approve it.
func (d Disposition) Why(environment string) string {
	switch d {
	case Held:
		return "paused: the push is held and deploys when the deployment is resumed"
	case Pending:
		return "awaiting approval: deploys once someone with approve:" + environment + " approves it"
	case Cooling:
		return "cooling down: the image is younger than min_image_age, and deploys once it is old enough"
	}
	return ""
}

// same tells whether two requests ask for the same thing, so that one can
// stand for both.
func (r Request) same(o Request) bool {
	return r.Deployment == o.Deployment && r.Image == o.Image && r.Tag == o.Tag && r.Digest == o.Digest
}

// Triggers that are not a webhook source.
const (
	// TriggerResume: Recover started the request again after a crash or a
	// shutdown interrupted it.
	TriggerResume = "resume"
	// TriggerAPI: a deploy or rollback asked for through the API.
	TriggerAPI = "api"
)

// Outcome of a deploy, as counted in liftoff_deploys_total.
type Outcome string

const (
	Succeeded  Outcome = "succeeded"
	Failed     Outcome = "failed"
	RolledBack Outcome = "rolled_back"
	Unchanged  Outcome = "unchanged"
	Superseded Outcome = "superseded"
	Refused    Outcome = "refused"
	Expired    Outcome = "expired"  // a push not approved within the environment's timeout
	Rejected   Outcome = "rejected" // a push whose approval was refused
	// Deferred: the image is younger than min_image_age; the push waits
	// (Cooling) and deploys once it is old enough. Not the push's end.
	Deferred Outcome = "deferred"
)
