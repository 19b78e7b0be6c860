// Command liftoff deploys Docker images the moment they are pushed: a
// registry calls its webhook, and it replaces the matching containers with
// ones running the new image, safely.
//
// This file is the thin main: subcommands, flags, signals, exit codes. The
// daemon itself is the app type in app.go; the client commands (status,
// history, deploy, rollback, approve, reject, pause, resume) are in cli*.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Exit codes, as the usage text and the README's Command line section state
// them; the client commands (cli.go) use the same three.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usage = `liftoff deploys Docker images the moment they are pushed.

Usage:
  liftoff serve    --config FILE    run the daemon: webhooks, deploys, metrics, the API
  liftoff validate --config FILE    check a config file without starting anything
  liftoff version                   print the version

Client commands, which ask a running daemon through its management API:
  liftoff status   [DEPLOYMENT]                what each deployment runs, since when, its last deploy
  liftoff history  [DEPLOYMENT]                the newest deploys: what, who, how they ended
  liftoff deploy   DEPLOYMENT TAG|@sha256:...  deploy a tag or a digest now
  liftoff rollback DEPLOYMENT [--to ID]        go back to the last good version, or to deploy ID's
  liftoff approve  DEPLOYMENT                  deploy the push that awaits approval
  liftoff reject   DEPLOYMENT                  drop the push that awaits approval
  liftoff pause    DEPLOYMENT                  hold pushes: record them, deploy none
  liftoff resume   DEPLOYMENT                  deploy pushes again, the newest held one first

Client flags (every client command):
  --server URL       the daemon (default: $LIFTOFF_SERVER, else http://127.0.0.1:8080)
  --token-file FILE  the API token's file (default: the token in $LIFTOFF_TOKEN)
  --json             print the API's JSON instead of a table
deploy, rollback and approve take --wait [--timeout 15m]: follow the deploy
to its end; exit 0 only if it succeeded.

Run 'liftoff COMMAND --help' for a command's flags.
Exit codes: 0 ok; 1 the operation failed (the daemon refused it or could not
be reached, or a deploy followed with --wait did not succeed); 2 usage or
config error (bad flags or arguments, invalid config, no API token).
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serveCmd(ctx, rest, stdout, stderr, lookup)
	case "validate":
		return validateCmd(rest, stdout, stderr, lookup)
	case "version", "--version":
		fmt.Fprintf(stdout, "liftoff %s\n", buildVersion())
		return exitOK
	case "help", "-h", "--help":
		if len(rest) > 0 && rest[0] != "" && !strings.HasPrefix(rest[0], "-") {
			return run(ctx, []string{rest[0], "--help"}, stdout, stderr, lookup) // liftoff help deploy
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		if clientCommands[cmd] || strings.HasPrefix(cmd, "--") {
			return clientCmd(ctx, args, stdout, stderr, lookup) // kong: cli.go
		}
		fmt.Fprintf(stderr, "liftoff: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// parseFlags parses a subcommand's flags; it returns an exit code when the
// command should not go on (help asked, or bad flags).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (int, bool) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "liftoff %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, false
	}
	return 0, true
}

func commandUsage(fs *flag.FlagSet, synopsis string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	config := fs.String("config", "liftoff.yaml", "config file (YAML; see README, Configuration)")
	logFormat := fs.String("log-format", "json", "log format: json, or console for humans")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	commandUsage(fs, `Usage: liftoff serve [--config FILE] [--log-format json|console] [--log-level LEVEL]

Runs the daemon: listens for registry webhooks on the config's listen
address, deploys what they push, and serves /healthz, /readyz and /metrics.
SIGHUP reloads the config file (an invalid file keeps the running config).
SIGINT or SIGTERM stop it gracefully: hooks are refused with 503 and the
deploy in flight finishes (or rolls back) before it exits. A push that was
answered 202 but not deployed yet stays in the history file and is deployed
when liftoff starts again; so is one interrupted by a crash, after the
start-up repair has put the deployment right.`)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	// Lines logged at once share a write: a flood of webhooks, a line
	// each, is not also a flood of system calls.
	lw := newLogWriter(stderr)
	defer lw.Close()
	log, err := newLogger(lw, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "liftoff serve: %v\n", err)
		return exitUsage
	}
	cfg, err := deployments.Load(*config, lookup)
	if err != nil {
		fmt.Fprintf(stderr, "liftoff serve: %v\n", err)
		return exitUsage
	}
	a, err := newApp(cfg, appOptions{Logger: log, ConfigPath: *config, Lookup: lookup})
	if err != nil {
		log.Error().Err(err).Msg("start-up failed")
		return exitFailed
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			a.Reload() // logs and counts its own failure
		}
	}()
	if err := a.Run(ctx); err != nil {
		log.Error().Err(err).Msg("stopped with an error")
		return exitFailed
	}
	return exitOK
}

func validateCmd(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	config := fs.String("config", "liftoff.yaml", "config file to check")
	commandUsage(fs, `Usage: liftoff validate [--config FILE]

Loads and checks a config file as 'serve' would (${VAR} expansion, env
files, tag rules, names, policies on what the config itself sets), without
contacting Docker or any registry; says what only a deploy can check.
Prints every problem, each naming its field; exits 0 if the file is valid,
2 if not.`)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	cfg, err := deployments.Load(*config, lookup)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid\n%s\n", *config, indent(err.Error()))
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: valid (%d deployments, %d environments, %d hooks)\n",
		*config, len(cfg.Deployments), len(cfg.Environments), len(cfg.Hooks))
	fmt.Fprintln(stdout, "Not checked without the images: each image's own ENV, which is layered under the config's env and")
	fmt.Fprintln(stdout, "checked against the environments' require/forbid policies at every deploy, before anything is stopped.")
	for _, w := range cfg.ValidatePolicies() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	return exitOK
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func newLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
