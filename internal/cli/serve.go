package cli

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// envListen overrides the config's listen, as --listen does: liftoff's
// image sets it to 0.0.0.0:8080, since 127.0.0.1 inside a container is
// unreachable from its published port.
const envListen = "LIFTOFF_LISTEN"

type serveCmd struct {
	Config    string `default:"liftoff.yaml" placeholder:"FILE" help:"Config file (YAML; see README, Configuration). Default: ${default}."`
	LogFormat string `name:"log-format" default:"json" placeholder:"json|console" help:"Log format: json, or console for humans. Default: ${default}."`
	LogLevel  string `name:"log-level" default:"info" placeholder:"LEVEL" help:"Log level: debug, info, warn, error. Default: ${default}."`
	Listen    string `name:"listen" placeholder:"ADDR" help:"Serve on ADDR ([host]:port) instead of the config's listen (default 127.0.0.1:8080, this host only). Default: $LIFTOFF_LISTEN, which liftoff's image sets to 0.0.0.0:8080."`
}

func (c *serveCmd) Help() string {
	return `Runs the daemon: listens for registry webhooks on the config's listen
address, deploys what they push, and serves /healthz, /readyz and /metrics.
SIGHUP reloads the config file (an invalid file keeps the running config).
SIGINT or SIGTERM stop it gracefully: hooks are refused with 503 and the
deploy in flight finishes (or rolls back) before it exits. A push that was
answered 202 but not deployed yet stays in the history file and is deployed
when liftoff starts again; so is one interrupted by a crash, after the
start-up repair has put the deployment right.`
}

func (c *serveCmd) Run(in *invocation) error {
	// Lines logged at once share a write: a flood of webhooks, a line
	// each, is not also a flood of system calls.
	lw := daemon.NewLogWriter(in.Stderr)
	defer lw.Close()
	log, err := newLogger(lw, c.LogFormat, c.LogLevel)
	if err != nil {
		return usagef("%v", err)
	}
	listen := c.Listen
	if listen == "" {
		listen, _ = in.Lookup(envListen)
	}
	if listen = strings.TrimSpace(listen); listen != "" {
		if _, port, err := net.SplitHostPort(listen); err != nil || port == "" {
			return usagef("--listen (or $%s) %q: want [host]:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080", envListen, listen)
		}
	}
	cfg, err := deployments.Load(c.Config, in.Lookup)
	if err != nil {
		return usagef("%v", err)
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: log, ConfigPath: c.Config, Lookup: in.Lookup, Version: in.Version,
		Listen: listen})
	if err != nil {
		log.Error().Err(err).Msg("start-up failed")
		return &cliError{code: ExitFailed} // logged
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			d.Reload() // logs and counts its own failure
		}
	}()
	if err := d.Run(in.ctx); err != nil {
		log.Error().Err(err).Msg("stopped with an error")
		return &cliError{code: ExitFailed} // logged
	}
	return nil
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
