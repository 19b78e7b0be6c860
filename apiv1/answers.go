package apiv1

// The answers of the API's routes, and the bodies its POSTs take. A list
// is paged: Next, when not null, is the before= of the next page.

import "time"

// Deployments answers GET /deployments.
type Deployments struct {
	Deployments []Deployment `json:"deployments"`
}

// DeploymentDetail answers GET /deployments/{name}: the deployment and its
// newest deploys.
type DeploymentDetail struct {
	Deployment
	History []Deploy `json:"history"`
}

// Deploys answers GET /deploys.
type Deploys struct {
	Deploys []Deploy `json:"deploys"`
	Next    *string  `json:"next"`
}

// Deliveries answers GET /deliveries.
type Deliveries struct {
	Deliveries []Delivery `json:"deliveries"`
	Next       *string    `json:"next"`
}

// DeployRequest is the body of POST /deployments/{name}/deploy: a tag or a
// digest, not both.
type DeployRequest struct {
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// RollbackRequest is the body of POST /deployments/{name}/rollback: the id
// of a succeeded deploy to go back to, or 0 for the newest succeeded one
// with another digest than the one running.
type RollbackRequest struct {
	To int64 `json:"to,omitempty"`
}

// DecideRequest is the body of POST /deployments/{name}/approve and
// .../reject: the pending push decided, by its request id (required), and
// optionally its digest. The answer is 409 when that push is no longer
// the one pending (another push replaced it): look again.
type DecideRequest struct {
	Request int64  `json:"request"`
	Digest  string `json:"digest,omitempty"`
}

// Enqueued answers a deploy or a rollback (202): the delivery that follows
// it, what it deploys, and for a rollback the deploy it goes back to.
type Enqueued struct {
	Delivery   string `json:"delivery"`
	Deployment string `json:"deployment"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
	RollbackTo int64  `json:"rollback_to,omitempty"`
}

// Acted answers a pause or a resume (200): the deployment, and for a
// resume the push it sent on, if one was held.
type Acted struct {
	Deployment
	Resumed *Resumed `json:"resumed,omitempty"`
}

// Resumed is the push a resume sent on: State is queued (it deploys now)
// or pending (it awaits approval).
type Resumed struct {
	Delivery string `json:"delivery"`
	Tag      string `json:"tag"`
	Digest   string `json:"digest,omitempty"`
	State    string `json:"state"`
}

// Decided answers an approval (202, Outcome queued) or a rejection (200,
// Outcome rejected) with the push's delivery.
type Decided struct {
	Request    int64  `json:"request"`
	Delivery   string `json:"delivery"`
	Deployment string `json:"deployment"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
	Outcome    string `json:"outcome"`
}

// HookAnswer is what a webhook delivery is answered with (202; 200 for a
// ping or a redelivery): the delivery's id, how many deployments it
// queued (Accepted), left awaiting approval (Pending) or held while paused
// (Held), and how many deployments and tags it did not deploy for another
// reason (Ignored). It names no deployment and gives no reason, so that
// the holder of a hook token learns nothing of the config: GET
// /api/v1/deliveries, the status page and the log have the names and
// reasons.
type HookAnswer struct {
	Delivery string `json:"delivery"`
	Accepted int    `json:"accepted"`
	Pending  int    `json:"pending"`
	Held     int    `json:"held"`
	Ignored  int    `json:"ignored"`
	// Redelivery: the sender's delivery id was answered 202 already
	// (status 200); nothing was deployed.
	Redelivery bool `json:"redelivery,omitempty"`
}

// Error is the body of every failure: why, and for a webhook delivery its
// id.
type Error struct {
	Error    string `json:"error"`
	Delivery string `json:"delivery,omitempty"`
}

// Previews answers GET /deployments/{name}/previews: the deployment's
// previews that run, least recently pushed first.
type Previews struct {
	Previews []Preview `json:"previews"`
}

// Preview is one running preview (deployments[].previews): its own
// container, served by the front door at URL.
type Preview struct {
	Name       string    `json:"name"`       // its name and its container's: "web-pr-12"
	Deployment string    `json:"deployment"` // the deployment it previews
	Tag        string    `json:"tag"`
	Host       string    `json:"host"`
	URL        string    `json:"url"` // https://host/ (http:// when the front door has no TLS)
	Pushed     time.Time `json:"pushed"`
	Expires    time.Time `json:"expires"`
}

// PreviewRemoved answers DELETE /deployments/{name}/previews/{tag}.
type PreviewRemoved struct {
	Removed string `json:"removed"` // the preview's name
}
