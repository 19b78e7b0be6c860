package deploy

import "time"

// Request asks for one deployment to be brought to an image tag (or digest).
type Request struct {
	Deployment string    // deployment name
	Image      string    // normalized repository, e.g. docker.io/acme/web
	Tag        string    // the pushed tag
	Digest     string    // optional: the digest the sender reported
	Trigger    string    // who asked: the webhook source ("dockerhub"), or "resume"
	Delivery   string    // id of the webhook delivery, for logs
	Pusher     string    // who pushed, as the sender says
	Received   time.Time // when the request arrived

	// Set by the journal: the accepted request's id (0 without a
	// journal), and how many deploys of it began and were interrupted.
	ID       int64
	Attempts int
}

// same tells whether two requests ask for the same thing, so that one can
// stand for both.
func (r Request) same(o Request) bool {
	return r.Deployment == o.Deployment && r.Image == o.Image && r.Tag == o.Tag && r.Digest == o.Digest
}

// TriggerResume is the Trigger of a deploy that Recover started again for a
// request interrupted by a crash or a shutdown.
const TriggerResume = "resume"

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
