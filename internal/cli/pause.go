package cli

import (
	"fmt"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

type pauseCmd struct {
	Deployment string `arg:"" help:"The deployment to pause."`
}

func (c *pauseCmd) Help() string {
	return `While paused, pushes matching the deployment are recorded and held, not
deployed; resume deploys the newest one. A deploy in progress finishes.
liftoff deploy and rollback still deploy. Fails (409) if already paused.
Needs the scope deploy:<environment>.`
}

func (c *pauseCmd) Run(s *session) error {
	var d apiv1.Acted
	return s.act(c.Deployment, "pause", &d, func() {
		fmt.Fprintf(s.stdout, "Paused %s: pushes are held until liftoff resume %s.\n", c.Deployment, c.Deployment)
	})
}

type resumeCmd struct {
	Deployment string `arg:"" help:"The deployment to resume."`
}

func (c *resumeCmd) Help() string {
	return `Pushes deploy again; the newest push held while paused deploys now.
Fails (409) if not paused. Needs the scope deploy:<environment>.`
}

func (c *resumeCmd) Run(s *session) error {
	var d apiv1.Acted // with the push held meanwhile, sent on: queued, or pending approval
	return s.act(c.Deployment, "resume", &d, func() {
		fmt.Fprintf(s.stdout, "Resumed %s: pushes deploy again.\n", c.Deployment)
		if h := d.Resumed; h != nil {
			what := "deploys now"
			if h.State == "pending" {
				what = "awaits approval"
			}
			fmt.Fprintf(s.stdout, "The push held meanwhile, %s (delivery %s), %s: liftoff history --delivery %s\n",
				refOf(h.Tag, h.Digest), h.Delivery, what, h.Delivery)
		}
	})
}

// act asks the daemon for action on deployment (reject, pause, resume),
// decodes its answer into v, and prints it: the JSON with --json, else
// what done says.
func (s *session) act(deployment, action string, v any, done func()) error {
	a, err := s.api.post(s.ctx, deploymentPath(deployment, action), struct{}{}, v)
	if err != nil {
		return s.explainFor(err, deployment)
	}
	if s.json {
		return s.printJSON(a.body)
	}
	done()
	return nil
}
