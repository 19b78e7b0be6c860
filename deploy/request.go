package deploy

import "time"

// Request asks for one deployment to be brought to an image tag (or digest).
type Request struct {
	Deployment string    // deployment name
	Image      string    // normalized repository, e.g. docker.io/acme/web
	Tag        string    // the pushed tag
	Digest     string    // optional: the digest the sender reported
	Trigger    string    // who asked: "dockerhub", "api", ...
	Delivery   string    // id of the webhook delivery, for logs
	Pusher     string    // who pushed, as the sender says
	Received   time.Time // when the request arrived
}

// same tells whether two requests ask for the same thing, so that one can
// stand for both.
func (r Request) same(o Request) bool {
	return r.Deployment == o.Deployment && r.Image == o.Image && r.Tag == o.Tag && r.Digest == o.Digest
}

// Outcome of a deploy, as counted in liftoff_deploys_total.
type Outcome string

const (
	Succeeded  Outcome = "succeeded"
	Failed     Outcome = "failed"
	RolledBack Outcome = "rolled_back"
	Unchanged  Outcome = "unchanged"
	Superseded Outcome = "superseded"
	Refused    Outcome = "refused"
)
