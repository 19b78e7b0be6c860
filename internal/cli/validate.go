package cli

import (
	"fmt"
	"strings"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

type validateCmd struct {
	Config string `default:"liftoff.yaml" placeholder:"FILE" help:"Config file to check. Default: ${default}."`
	Print  bool   `help:"Also print each deployment's container as liftoff will run it (a compose service's included), as YAML; secret values are not shown."`
}

func (c *validateCmd) Help() string {
	return `Loads and checks a config file as 'serve' would (${VAR} expansion, env
files, tag rules, names, policies on what the config itself sets), without
contacting Docker or any registry; says what only a deploy can check.
Prints every problem, each naming its field; exits 0 if the file is valid,
2 if not. With --print, also prints each deployment's container as a
deploy will create it: the compose service read, liftoff's env layered on
top (image ENV aside), the settings as the Engine API takes them.`
}

func (c *validateCmd) Run(in *invocation) error {
	cfg, err := deployments.Load(c.Config, in.Lookup)
	if err != nil {
		fmt.Fprintf(in.Stderr, "%s: invalid\n%s\n", c.Config, indent(err.Error()))
		return &cliError{code: ExitUsage} // said
	}
	fmt.Fprintf(in.Stdout, "%s: valid (%d deployments, %d environments, %d hooks)\n",
		c.Config, len(cfg.Deployments), len(cfg.Environments), len(cfg.Hooks))
	fmt.Fprintln(in.Stdout, "Not checked without the images: each image's own ENV, which is layered under the config's env and")
	fmt.Fprintln(in.Stdout, "checked against the environments' require/forbid policies at every deploy, before anything is stopped.")
	for _, w := range cfg.ValidatePolicies() {
		fmt.Fprintf(in.Stdout, "warning: %s\n", w)
	}
	if c.Print {
		return printDeployments(in.Stdout, cfg)
	}
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
