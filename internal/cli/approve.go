package cli

import (
	"fmt"
	"regexp"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// DecideFlags name the pending push an approval or a rejection decides.
type DecideFlags struct {
	Request int64  `placeholder:"ID" help:"The pending push's request id, as liftoff approve DEPLOYMENT (without it) or liftoff status --json shows it. Required: a push that replaced it meanwhile is refused (409)."`
	Digest  string `placeholder:"sha256:..." help:"Also require the pending push's digest to be this one."`
}

var digestFlag = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

type approveCmd struct {
	Deployment string `arg:"" help:"The deployment whose pending push to approve."`
	DecideFlags
	WaitFlags
}

func (c *approveCmd) Help() string {
	return `In an environment with approval required, a push is not deployed until
someone approves it (liftoff status marks it PENDING). The push's tag was
resolved to a digest when it arrived: approving deploys that digest,
whatever the tag points to by then.

Without --request it shows the push awaiting approval (request id, tag,
digest, pusher) and how to approve it, and approves nothing (exit 2). With
--request ID it approves that push, and fails (409) if another push has
replaced it meanwhile or none is pending. Needs the scope
approve:<environment> (and read to show the pending push).`
}

func (c *approveCmd) Run(s *session) error {
	if c.Request == 0 {
		return s.showPending(c.Deployment, "approve")
	}
	if err := c.DecideFlags.valid(); err != nil {
		return err
	}
	var d apiv1.Decided
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "approve"), c.body(), &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	return s.started(a, followed{deployment: c.Deployment, delivery: d.Delivery,
		what: fmt.Sprintf("approved push to %s (request %d, %s)", c.Deployment, d.Request, d.Digest)}, c.WaitFlags)
}

type rejectCmd struct {
	Deployment string `arg:"" help:"The deployment whose pending push to reject."`
	DecideFlags
}

func (c *rejectCmd) Help() string {
	return `The pending push is dropped (outcome rejected); a later push may be
approved. Without --request it shows the push awaiting approval and rejects
nothing (exit 2); with --request ID it rejects that push, and fails (409)
if another push has replaced it or none is pending. Needs the scope
approve:<environment>.`
}

func (c *rejectCmd) Run(s *session) error {
	if c.Request == 0 {
		return s.showPending(c.Deployment, "reject")
	}
	if err := c.DecideFlags.valid(); err != nil {
		return err
	}
	var d apiv1.Decided
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "reject"), c.body(), &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	if s.json {
		return s.printJSON(a.body)
	}
	fmt.Fprintf(s.stdout, "Rejected the push pending for %s (request %d, delivery %s): it will not be deployed.\n",
		c.Deployment, d.Request, d.Delivery)
	return nil
}

func (f DecideFlags) valid() error {
	switch {
	case f.Request < 0:
		return usagef("--request: want the pending push's request id (a positive number)")
	case f.Digest != "" && !digestFlag.MatchString(f.Digest):
		return usagef("--digest: want sha256: and 64 lowercase hex digits")
	}
	return nil
}

func (f DecideFlags) body() apiv1.DecideRequest {
	return apiv1.DecideRequest{Request: f.Request, Digest: f.Digest}
}

// showPending prints the push of deployment awaiting approval and the
// command that decides it, and fails: nothing is decided without the id
// of what the decider looked at.
func (s *session) showPending(deployment, action string) error {
	var v apiv1.DeploymentDetail
	a, err := s.api.get(s.ctx, deploymentPath(deployment, ""), nil, &v)
	if err != nil {
		return s.explainFor(err, deployment)
	}
	p := v.Pending
	if p == nil {
		return failf("no push of %s awaits approval", deployment)
	}
	if s.json {
		if err := s.printJSON(a.body); err != nil {
			return err
		}
	} else {
		digest := p.Digest
		if digest == "" {
			digest = "unknown (its tag could not be resolved when it was pushed: it cannot be approved)"
		}
		fmt.Fprintf(s.stdout, "Awaiting approval for %s: request %d\n  tag      %s\n  digest   %s\n  pushed   %s by %s (delivery %s)\n  expires  %s\n",
			deployment, p.Request, p.Tag, digest, ago(s.now(), p.Received), orDash(p.Pusher), p.Delivery, ago(s.now(), p.Expires))
	}
	cmd := fmt.Sprintf("liftoff %s %s --request %d", action, deployment, p.Request)
	if p.Digest != "" {
		cmd += " --digest " + p.Digest
	}
	return usagef("nothing %sd: to %s this push, run: %s", action, action, cmd)
}
