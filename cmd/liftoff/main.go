// Command liftoff deploys Docker images the moment they are pushed: a
// registry calls its webhook, and it replaces the matching containers with
// ones running the new image, safely.
//
// This is the thin main: signals, and the exit code of the command that
// internal/cli runs (the daemon itself is internal/daemon).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/liftoff-deploy/liftoff/internal/cli"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Lookup: os.LookupEnv, Version: version})
	stop()
	os.Exit(code)
}
