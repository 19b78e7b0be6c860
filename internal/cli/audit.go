package cli

import (
	"fmt"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

type auditCmd struct {
	Config string `default:"liftoff.yaml" placeholder:"FILE" help:"Config file to audit. Default: ${default}."`
	Strict bool   `help:"Exit 1 when there is any finding (for CI), not only when the file is invalid."`
}

func (c *auditCmd) Help() string {
	return `Loads a config file as 'validate' does, then says, for each risky thing it
does, what is risky and why: Docker engines reached over plain TCP (insecure: true,
a plain tcp:// docker_host); the API, the page or /metrics on every interface (and
the API without TLS); tokens with admin or a * scope; the hook rate limit off; a
distribution, harbor or ecr hook without auth_header; notification URLs over
http://. It contacts nothing and never prints a secret. Exits 0 with or without
findings (they are choices to make knowingly), 1 with --strict when there are
findings, 2 if the file is invalid.`
}

func (c *auditCmd) Run(in *invocation) error {
	cfg, err := deployments.Load(c.Config, in.Lookup)
	if err != nil {
		fmt.Fprintf(in.Stderr, "%s: invalid\n%s\n", c.Config, indent(err.Error()))
		return &cliError{code: ExitUsage} // said
	}
	fs := cfg.Audit()
	if len(fs) == 0 {
		fmt.Fprintf(in.Stdout, "%s: no findings\n", c.Config)
		return nil
	}
	plural := "s"
	if len(fs) == 1 {
		plural = ""
	}
	fmt.Fprintf(in.Stdout, "%s: %d finding%s\n", c.Config, len(fs), plural)
	for _, f := range fs {
		fmt.Fprintf(in.Stdout, "\n%s: %s\n%s\n", f.Field, f.Risk, indent(f.Why))
	}
	if c.Strict {
		return &cliError{code: ExitFailed} // said
	}
	return nil
}
