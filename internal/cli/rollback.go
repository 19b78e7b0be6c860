package cli

import (
	"fmt"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

type rollbackCmd struct {
	Deployment string `arg:"" help:"The deployment, as named in the daemon's config."`
	To         int64  `placeholder:"ID" help:"Go back to what deploy ID deployed (an id of liftoff history; it must have succeeded)."`
	WaitFlags
}

func (c *rollbackCmd) Help() string {
	return `Without --to: back to the digest of the newest succeeded deploy whose
digest differs from the one running. The image is pulled again if the
engine no longer has it; the deploy goes through the health gate like any
other. Fails (409) when there is nothing to go back to. Needs the scope
deploy:<environment>.`
}

func (c *rollbackCmd) check() error {
	if c.To < 0 {
		return usagef("--to %d: want a deploy id", c.To)
	}
	return c.WaitFlags.check()
}

func (c *rollbackCmd) Run(s *session) error {
	what := "rollback of " + c.Deployment
	if c.To != 0 {
		what = fmt.Sprintf("rollback of %s to deploy #%d", c.Deployment, c.To)
	}
	var d apiv1.Enqueued
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "rollback"), apiv1.RollbackRequest{To: c.To}, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	return s.started(a, followed{deployment: c.Deployment, delivery: d.Delivery, what: what}, c.WaitFlags)
}
