package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sync/errgroup"
)

// Run serves until ctx is done (or a listener fails), then stops in this
// order: hooks answer 503 and readiness fails; the watch (reconcile,
// resume, repairs) and the polls stop; the deploys in flight finish, bounded by
// DrainTimeout (past it they are cancelled and roll back); the queued
// notifications are sent, for 10s at most (notifyDrainTimeout); HTTP shuts down;
// the deliveries still queued are recorded; files and clients are closed.
// A push accepted but not yet deployed stays in the journal, and the next
// start deploys it.
func (a *Daemon) Run(ctx context.Context) error {
	cfg := a.cfg.Load()
	a.log.Info().Str("version", a.opts.Version).Str("listen", a.Addr()).
		Int("deployments", len(cfg.Deployments)).Msg("liftoff started")
	a.logListeners(cfg)
	a.pingEngines(ctx)

	var g errgroup.Group
	// The watch reconciles at the engine's first answer and whenever it
	// comes back, then resumes the pushes accepted and never deployed.
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	g.Go(func() error {
		defer close(watched)
		a.engine.Watch(wctx, a.opts.WatchInterval)
		return nil
	})
	g.Go(func() error { a.deliveries.Run(); return nil })
	// The history is pruned until the watch stops, before the file closes.
	g.Go(func() error { a.pruneHistory(wctx, a.opts.PruneInterval); return nil })
	// Polls stop with the watch, before the engine closes.
	g.Go(func() error { a.poller.Run(wctx); return nil })
	g.Go(func() error { a.watchPreviewTags(wctx); return nil })
	g.Go(func() error {
		// A proxied container the engine restarted may have a new port.
		a.engine.WatchFrontDoor(wctx, a.opts.WatchInterval)
		return nil
	})
	// HTTP outlives ctx: while the deploys in flight finish, hooks are
	// answered 503 (senders retry later) and /metrics still serves.
	sctx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	failed := make(chan error, 2) // a listener that failed before the stop
	serve := func(f func(context.Context, net.Listener) error, ln net.Listener) {
		g.Go(func() error {
			err := f(sctx, ln)
			if err != nil {
				failed <- err
			}
			return err
		})
	}
	serve(a.server.Serve, a.ln)
	if a.apiLn != nil {
		serve(a.server.ServeAPI, a.apiLn)
	}
	if a.metricsLn != nil {
		serve(a.server.ServeMetrics, a.metricsLn)
	}

	select {
	case <-ctx.Done():
	case err := <-failed:
		a.log.Error().Err(err).Msg("a listener failed; stopping")
	}
	a.server.SetDraining(true)
	stopWatch()
	<-watched
	a.log.Info().Msg("stopping: hooks now answer 503; waiting for deploys in flight")
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.DrainTimeout)
	defer cancel()
	closeErr := a.engine.Close(dctx)
	if closeErr != nil {
		closeErr = fmt.Errorf("deploys in flight did not finish within %s and were rolled back: %w", a.opts.DrainTimeout, closeErr)
	}
	// No deploy runs now: the front doors finish their requests (bounded
	// like the deploys) and close.
	pctx2, cancelProxy := context.WithTimeout(context.WithoutCancel(ctx), a.opts.DrainTimeout)
	if err := a.proxy.Close(pctx2); err != nil {
		a.log.Warn().Err(err).Msg("stopping: the proxy's requests in flight were cut")
	}
	cancelProxy()
	// No deploy ends now: send what the last ones queued, for a while.
	nctx, cancelNotify := context.WithTimeout(context.WithoutCancel(ctx), notifyDrainTimeout)
	if err := a.notifier.Close(nctx); err != nil {
		a.log.Warn().Dur("waited", notifyDrainTimeout).Msg("stopping: notifications still queued were given up (see liftoff_notifications_total)")
	}
	cancelNotify()
	stopServing()
	a.deliveries.Close()
	err := errors.Join(g.Wait(), closeErr)
	a.Close()
	a.log.Info().Msg("liftoff stopped")
	return err
}
