package cli

import (
	"fmt"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

type canaryCmd struct {
	Action     string `arg:"" enum:"status,promote,abort" help:"status, promote or abort."`
	Deployment string `arg:"" help:"The deployment whose canary release to show or end."`
}

func (c *canaryCmd) Help() string {
	return `A deployment with proxy.canary gives a new version a share of its clients,
step by step, before all of them, and judges each step by the front
door's figures of both versions (5xx rate, p99). status shows the canary in
progress: its step, the share of clients, and both sides' figures in the
step so far (the read scope). promote gives the new version all traffic
now; abort sends all traffic back to the old version and removes the new
one (the deploy ends rolled_back). Both need the scope
deploy:<environment>, and fail (409) when no canary is in progress.`
}

func (c *canaryCmd) Run(s *session) error {
	if c.Action == "status" {
		var d apiv1.DeploymentDetail
		a, err := s.api.get(s.ctx, deploymentPath(c.Deployment, ""), nil, &d)
		if err != nil {
			return s.explainFor(err, c.Deployment)
		}
		if s.json {
			return s.printJSON(a.body)
		}
		k := d.Deployment.Canary
		if k == nil {
			fmt.Fprintf(s.stdout, "%s: no canary in progress.\n", c.Deployment)
			return nil
		}
		fmt.Fprintf(s.stdout, "%s: canary of %s\n", c.Deployment, k.Summary(s.now()))
		return nil
	}
	var ended apiv1.CanaryEnded
	return s.act(c.Deployment, "canary/"+c.Action, &ended, func() {
		what := "promoted: the new version gets all traffic"
		if c.Action == "abort" {
			what = "aborted: all traffic goes back to the old version, the new one is removed"
		}
		fmt.Fprintf(s.stdout, "Canary of %s %s (delivery %s): liftoff history --delivery %s\n",
			c.Deployment, what, ended.Delivery, ended.Delivery)
	})
}
