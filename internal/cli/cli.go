// Package cli is liftoff's command line: one kong grammar for every
// command, one file per command. serve, validate and version run here
// (serve starts internal/daemon); the client commands (status, history,
// deploy, rollback, approve, reject, pause, resume) are one or a few calls
// to a running daemon's management API (/api/v1).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/alecthomas/kong"
)

// Exit codes, as the usage text and the README's Command line section state
// them.
const (
	ExitOK     = 0
	ExitFailed = 1 // the operation failed
	ExitUsage  = 2 // bad flags or arguments, an invalid config, no token
)

// Env is what a command runs with besides its arguments. Lookup stands for
// the environment: commands never read the process's own.
type Env struct {
	Stdout, Stderr io.Writer
	Lookup         func(string) (string, bool)
	// Version is liftoff's version as set at build time; "" is the
	// module's version, else "(devel)".
	Version string

	// Knobs of the client commands for tests; the zero value is the real
	// thing.
	Poll       time.Duration // --wait's polling interval (default 250ms)
	HTTPClient *http.Client  // default: a client with system roots, no redirects
	// Strict refuses an answer with a field the CLI's types (apiv1's)
	// lack, so that a test proves the CLI reads all the server writes.
	Strict bool
}

// grammar is liftoff's command line. The client flags are accepted by
// every client command, before or after its name.
type grammar struct {
	ClientFlags
	// --version is the version command's older spelling.
	VersionFlag kong.VersionFlag `name:"version" hidden:"" help:"Print the version."`

	Serve    serveCmd    `cmd:"" help:"Run the daemon: webhooks, deploys, metrics, the API."`
	Validate validateCmd `cmd:"" help:"Check a config file without starting anything."`
	Audit    auditCmd    `cmd:"" help:"Say what a config file exposes or turns off that is risky, and why (--strict: exit 1 on findings)."`
	Version  versionCmd  `cmd:"" help:"Print the version."`

	Status   statusCmd   `cmd:"" help:"What every deployment runs: tag, digest, since when, state, last deploy, and whether it is paused, awaits an approval or is down."`
	History  historyCmd  `cmd:"" help:"The newest deploys, of one deployment or of all: when, what, who, how they ended, how long they took."`
	Logs     logsCmd     `cmd:"" help:"What a deploy's backup and release commands printed (needs logs:<env>)."`
	Deploy   deployCmd   `cmd:"" help:"Deploy a tag or a digest to a deployment now (--wait follows it)."`
	Rollback rollbackCmd `cmd:"" help:"Go back to the last version that deployed successfully, or to the one of deploy --to ID (--wait follows it)."`
	Approve  approveCmd  `cmd:"" help:"Approve the push waiting for approval, which then deploys (--wait follows it)."`
	Reject   rejectCmd   `cmd:"" help:"Reject the push waiting for approval: it is dropped."`
	Pause    pauseCmd    `cmd:"" help:"Pause a deployment: pushes are recorded and held, not deployed, until resume."`
	Resume   resumeCmd   `cmd:"" help:"Resume a paused deployment: the newest push held meanwhile deploys now."`
	Canary   canaryCmd   `cmd:"" help:"Show, promote or abort a deployment's canary release in progress."`
	Previews previewsCmd `cmd:"" help:"List a deployment's previews, or remove one (previews rm DEPLOYMENT TAG)."`
}

// clientCommand is a command that asks a daemon: it runs with a session.
type clientCommand interface{ Run(*session) error }

// invocation is what serve, validate and version run with.
type invocation struct {
	ctx context.Context
	Env
}

const usage = `liftoff deploys Docker images the moment they are pushed.

Usage:
  liftoff serve    --config FILE    run the daemon: webhooks, deploys, metrics, the API
  liftoff validate --config FILE    check a config file without starting anything
  liftoff audit    --config FILE    say what in a config file is risky, and why (--strict: exit 1 if any)
  liftoff version                   print the version

Client commands, which ask a running daemon through its management API:
  liftoff status   [DEPLOYMENT]                what each deployment runs, since when, its last deploy
  liftoff history  [DEPLOYMENT]                the newest deploys: what, who, how they ended
  liftoff logs     ID                          what deploy ID's backup and release printed (logs:<env>)
  liftoff deploy   DEPLOYMENT TAG|@sha256:...  deploy a tag or a digest now
  liftoff rollback DEPLOYMENT [--to ID]        go back to the last good version, or to deploy ID's
  liftoff approve  DEPLOYMENT [--request ID]   show the push that awaits approval; with its id, deploy it
  liftoff reject   DEPLOYMENT [--request ID]   show the push that awaits approval; with its id, drop it
  liftoff pause    DEPLOYMENT                  hold pushes: record them, deploy none
  liftoff resume   DEPLOYMENT                  deploy pushes again, the newest held one first
  liftoff canary   status|promote|abort DEPLOYMENT  a canary release in progress: its figures, or end it
  liftoff previews DEPLOYMENT                  the previews that run: tag, URL, pushed, expires
  liftoff previews rm DEPLOYMENT TAG           remove a preview: its route, then its container

Client flags (every client command):
  --server URL       the daemon (default: $LIFTOFF_SERVER, else http://127.0.0.1:8080)
  --token-file FILE  the API token's file (default: the token in $LIFTOFF_TOKEN)
  --json             print the API's JSON instead of a table
deploy, rollback and approve take --wait [--timeout 15m]: follow the deploy
to its end; exit 0 only if it succeeded.

Run 'liftoff COMMAND --help' (or 'liftoff help COMMAND') for a command's flags.
` + exitCodes + `
`

const exitCodes = `Exit codes: 0 ok; 1 the operation failed (the daemon refused it or could not
be reached, or a deploy followed with --wait did not succeed); 2 usage or
config error (bad flags or arguments, invalid config, no API token).`

// cliError ends a command with an exit code and, unless msg is empty (the
// command said it already), a message on stderr.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

// failf: the operation failed (exit 1).
func failf(format string, args ...any) error {
	return &cliError{code: ExitFailed, msg: fmt.Sprintf(format, args...)}
}

// usagef: bad flags, arguments or configuration (exit 2).
func usagef(format string, args ...any) error {
	return &cliError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

// kongExit carries kong's exit (after --help) out of Parse as a panic.
type kongExit struct{ code int }

// newParser builds the kong parser of the grammar.
func newParser(g *grammar, env Env) (*kong.Kong, error) {
	return kong.New(g,
		kong.Name("liftoff"),
		kong.Description("liftoff deploys Docker images the moment they are pushed.\n\n"+exitCodes),
		kong.Writers(env.Stdout, env.Stderr),
		kong.Exit(func(code int) { panic(kongExit{code}) }),
		kong.Vars{"envServer": envServer, "envToken": envToken, "defaultServer": defaultServer,
			"version": "liftoff " + env.Version},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 100}),
		kong.Help(printHelp),
	)
}

// printHelp prints the overview for liftoff --help, and kong's help of a
// command otherwise, without the client flags for the commands that do
// not take them.
func printHelp(o kong.HelpOptions, kctx *kong.Context) error {
	sel := kctx.Selected()
	if sel == nil {
		_, err := fmt.Fprint(kctx.Stdout, usage)
		return err
	}
	if !isClient(sel) {
		for _, f := range kctx.Model.Flags {
			if clientFlagNames[f.Name] {
				f.Hidden = true
			}
		}
	}
	return kong.DefaultHelpPrinter(o, kctx)
}

func isClient(n *kong.Node) bool {
	_, ok := n.Target.Addr().Interface().(clientCommand)
	return ok
}

// Run runs the command of args (without the program's name, e.g.
// ["deploy", "web", "v1.2", "--wait"]) and returns its exit code.
func Run(ctx context.Context, args []string, env Env) (code int) {
	env.Version = versionOf(env.Version)
	switch {
	case len(args) == 0:
		fmt.Fprint(env.Stderr, usage)
		return ExitUsage
	case args[0] == "help": // liftoff help [COMMAND]
		args = slices.Concat(args[1:min(len(args), 2)], []string{"--help"})
	}
	var g grammar
	parser, err := newParser(&g, env)
	if err != nil { // a bug in the grammar
		fmt.Fprintf(env.Stderr, "liftoff: %v\n", err)
		return ExitFailed
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = e.code
			if code != ExitOK {
				code = ExitUsage
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		command := "liftoff"
		var perr *kong.ParseError
		if errors.As(err, &perr) && perr.Context != nil {
			if sel := perr.Context.Selected(); sel != nil {
				command = "liftoff " + sel.Name
			}
		}
		fmt.Fprintf(env.Stderr, "%s: %v\nRun '%s --help' for usage.\n", command, err, command)
		return ExitUsage
	}
	command := "liftoff " + kctx.Selected().Path() // "previews list": a subcommand's path
	// Arguments first: a bad one is said before a missing token.
	if c, ok := kctx.Selected().Target.Addr().Interface().(interface{ check() error }); ok {
		if err := c.check(); err != nil {
			return exitCode(err, env.Stderr, command)
		}
	}
	if !isClient(kctx.Selected()) {
		for _, p := range kctx.Path {
			if p.Flag != nil && clientFlagNames[p.Flag.Name] {
				return exitCode(usagef("--%s is a flag of the client commands", p.Flag.Name), env.Stderr, command)
			}
		}
		return exitCode(kctx.Run(&invocation{ctx: ctx, Env: env}), env.Stderr, command)
	}
	s, err := newSession(ctx, g.ClientFlags, env)
	if err == nil {
		err = kctx.Run(s)
	}
	return exitCode(err, env.Stderr, command)
}

// exitCode reports err on stderr and returns its exit code.
func exitCode(err error, stderr io.Writer, command string) int {
	if err == nil {
		return ExitOK
	}
	var ce *cliError
	if !errors.As(err, &ce) {
		fmt.Fprintf(stderr, "%s: %v\n", command, err)
		return ExitFailed
	}
	if ce.msg != "" {
		fmt.Fprintf(stderr, "%s: %s\n", command, ce.msg)
	}
	return ce.code
}
