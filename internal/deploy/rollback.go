package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// rollbackTimeout bounds putting the previous container back. It runs on a
// context of its own so that a shutdown or a cancelled deploy still restores
// the service.
const rollbackTimeout = 2 * time.Minute

// rollback removes the new container and brings the previous one back as
// it was. It runs on a context of its own: it must finish even when the
// deploy was cancelled.
func (a *attempt) rollback(cause error) (Outcome, error) {
	rt := a.rt
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), rollbackTimeout)
	defer cancel()
	defer func() {
		a.rec.Phases[StepRollback] += time.Since(start)
		a.e.metrics.phase.WithLabelValues(StepRollback).Observe(time.Since(start).Seconds())
	}()
	if err := a.journal(ctx, StepRollback); err != nil {
		a.log.Error().Err(err).Msg("rolling back without a journal entry")
	}
	if a.e.opts.BeforeStep != nil {
		a.e.opts.BeforeStep(a.rec.Deployment, StepRollback)
	}
	var errs []error
	// An engine that stayed away through one call's retries (about 30s)
	// is not asked the next ones: the deploy stays unfinished
	// (unrepaired) and Watch's reconcile does the rest as soon as the
	// engine answers again, instead of this rollback waiting out every
	// call's retries while the deployment's queue waits behind it.
	away := false
	try := func(what string, f func(ctx context.Context) error) {
		if away {
			errs = append(errs, fmt.Errorf("%s: not tried, the engine is unreachable: %w", what, ErrUnavailable))
			return
		}
		if err := a.e.retry(ctx, a.log, StepRollback, f); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			away = errors.Is(err, ErrUnavailable)
		}
	}
	if a.d.Proxy != nil && a.published {
		// Back to the previous container (nowhere on a first deploy:
		// requests wait) before the new one stops.
		if _, err := a.e.serve(a.d, a.prev); err != nil {
			a.log.Warn().Err(err).Msg("the proxy cannot reach the previous container")
		}
	}
	if a.newID != "" {
		if a.published {
			// start-first: the new container has been taking requests
			// beside the previous one (same aliases). Its stop signal lets
			// those finish, as a swap does for the old container; a forced
			// remove would cut them off. The previous one still serves, so
			// the grace period costs no availability.
			if err := a.e.retry(ctx, a.log, StepRollback, func(ctx context.Context) error {
				return rt.Stop(ctx, a.newID, a.d.StopTimeout)
			}); err != nil {
				a.log.Warn().Err(err).Msg("could not stop the new container; removing it by force")
				away = errors.Is(err, ErrUnavailable)
			}
		}
		try("remove new container", func(ctx context.Context) error { return rt.Remove(ctx, a.newID) })
	}
	if a.prev == nil {
		if len(errs) > 0 {
			a.unrepaired = true
			return Failed, errors.Join(append([]error{cause}, errs...)...)
		}
		// Nothing was stopped: the service (if any) is as it was.
		return Failed, cause
	}
	if a.renamed || a.stopped {
		// By what the engine says, not by what this deploy believes it
		// did: a rename may have landed that the deploy never saw succeed.
		// So may a create whose answer was lost: its container, holding
		// the name, goes.
		try("rename previous container back", func(ctx context.Context) error {
			err := a.e.rename(ctx, rt, a.prev.ID, a.name)
			if err != nil && a.removeLeftover(ctx, a.name) {
				err = a.e.rename(ctx, rt, a.prev.ID, a.name)
			}
			return err
		})
	}
	if a.stopped && a.wasRunning {
		try("restart previous container", func(ctx context.Context) error { return rt.Start(ctx, a.prev.ID) })
	}
	if len(errs) > 0 {
		a.unrepaired = true
		a.log.Error().Errs("errors", errs).Msg("rollback incomplete")
		return Failed, errors.Join(append([]error{cause, errors.New("rollback incomplete")}, errs...)...)
	}
	a.res.ContainerID = a.prev.ID
	if a.stopped && a.wasRunning {
		// The previous container was stopped and started again: it must
		// prove itself like a new one before the rollback counts.
		if err := a.e.prove(ctx, a.d, a.prev); err != nil {
			err = fmt.Errorf("rolled back, but the previous container does not pass its health gate either: %w", err)
			a.e.setDown(a.d.Name, err)
			a.log.Error().Err(err).Msg("the deployment is DOWN: neither the new nor the previous container passes its health gate; liftoff tries again every minute, or deploy a working image")
			return Failed, errors.Join(cause, err)
		}
	}
	a.log.Warn().Err(cause).Msg("rolled back to the previous container")
	return RolledBack, cause
}

// rename gives a container a name, and is content when it has it already
// (a retried or late rename got there first).
func (e *Engine) rename(ctx context.Context, rt Containers, id, name string) error {
	err := rt.Rename(ctx, id, name)
	if err == nil {
		return nil
	}
	if c, ierr := rt.Inspect(ctx, id); ierr == nil && c.Name == name {
		return nil
	}
	return err
}
