package cli

import (
	"fmt"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

type approveCmd struct {
	Deployment string `arg:"" help:"The deployment whose pending push to approve."`
	WaitFlags
}

func (c *approveCmd) Help() string {
	return `In an environment with approval required, a push is not deployed until
someone approves it (liftoff status marks it PENDING). Fails (409) when no
push is pending. Needs the scope approve:<environment>.`
}

func (c *approveCmd) Run(s *session) error {
	var d apiv1.Decided
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "approve"), struct{}{}, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	return s.started(a, followed{deployment: c.Deployment, delivery: d.Delivery, what: "approved push to " + c.Deployment}, c.WaitFlags)
}

type rejectCmd struct {
	Deployment string `arg:"" help:"The deployment whose pending push to reject."`
}

func (c *rejectCmd) Help() string {
	return `The pending push is dropped (outcome rejected); a later push may be
approved. Fails (409) when no push is pending. Needs the scope
approve:<environment>.`
}

func (c *rejectCmd) Run(s *session) error {
	var d apiv1.Decided
	return s.act(c.Deployment, "reject", &d, func() {
		fmt.Fprintf(s.stdout, "Rejected the push pending for %s (delivery %s): it will not be deployed.\n", c.Deployment, d.Delivery)
	})
}
