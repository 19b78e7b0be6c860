package cli

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// WaitFlags are the flags of the commands that start a deploy.
type WaitFlags struct {
	Wait    bool          `help:"Follow the deploy: a line per step, then its outcome. Exit 0 only if it succeeded (or the version already ran), 1 otherwise."`
	Timeout time.Duration `default:"15m" help:"With --wait: give up waiting after this long (exit 1); the deploy goes on."`
}

func (w *WaitFlags) check() error {
	if w.Timeout <= 0 {
		return usagef("--timeout %s: want a positive duration, e.g. 15m", w.Timeout)
	}
	return nil
}

type deployCmd struct {
	Deployment string `arg:"" help:"The deployment, as named in the daemon's config."`
	Ref        string `arg:"" name:"tag|@digest" help:"A tag of the deployment's image (v1.4.2), or a digest (@sha256:...)."`
	WaitFlags
}

func (c *deployCmd) Help() string {
	return `The deploy runs as a pushed one does: pull, the deployment's strategy, its
health gate, a rollback if the new container fails. It is queued behind a
deploy in progress, and runs even if the deployment is paused or its
environment requires approval (asking is approving). Needs the scope
deploy:<environment>.

Example, in CI: LIFTOFF_TOKEN=... liftoff deploy web-staging v1.4.2 --wait`
}

var (
	cliTagGrammar    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	cliDigestGrammar = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// ref splits TAG|@sha256:... into a tag or a digest.
func (c *deployCmd) ref() (tag, digest string, err error) {
	r := strings.TrimPrefix(c.Ref, "@")
	switch {
	case strings.HasPrefix(r, "sha256:"):
		if !cliDigestGrammar.MatchString(r) {
			return "", "", usagef("%q is not a digest: want @sha256: and 64 lowercase hex digits", trimText(c.Ref, 80))
		}
		return "", r, nil
	case !cliTagGrammar.MatchString(c.Ref):
		return "", "", usagef("%q is not a tag (letters, digits, _ . -, at most 128, not starting with . or -) nor @sha256:<digest>", trimText(c.Ref, 80))
	}
	return c.Ref, "", nil
}

func (c *deployCmd) check() error {
	if _, _, err := c.ref(); err != nil {
		return err
	}
	return c.WaitFlags.check()
}

func (c *deployCmd) Run(s *session) error {
	tag, digest, _ := c.ref() // checked
	var d apiv1.Enqueued
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "deploy"), apiv1.DeployRequest{Tag: tag, Digest: digest}, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	what := fmt.Sprintf("deploy of %s to %s", refOf(tag, digest), c.Deployment)
	return s.started(a, followed{deployment: c.Deployment, delivery: d.Delivery, tag: tag, digest: digest, what: what}, c.WaitFlags)
}
