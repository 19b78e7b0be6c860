package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Interrupted is what reconcile and repair read of the journal: the
// deploys cut short. They record what became of each with
// Deploys.Finish.
type Interrupted interface {
	// Unfinished returns the deploys begun and not finished, oldest first.
	Unfinished(ctx context.Context) ([]Record, error)
}

// Containers is what reconcile and repair need of a runtime to finish or
// undo a swap, and what the health gate, the rollback and the front door
// use too. Errors wrap ErrNotFound for a container that does not exist and
// ErrUnavailable for an engine that cannot be reached.
type Containers interface {
	// Inspect returns the container with that name or id, or ErrNotFound.
	// It changes nothing, so it is safe to repeat.
	Inspect(ctx context.Context, nameOrID string) (Container, error)
	// Start starts a created or stopped container.
	Start(ctx context.Context, id string) error
	// Stop stops a container with its stop signal, killing it after grace.
	// Stopping a stopped container is not an error.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Rename gives a container a new name. It is not safe to repeat
	// alone: Engine.rename takes a container that has the name already
	// as renamed.
	Rename(ctx context.Context, id, name string) error
	// Remove removes a container (forcefully, with its anonymous volumes).
	// Removing a container that is gone is not an error.
	Remove(ctx context.Context, id string) error
}

// ErrDown marks a repair that could not leave the deployment with a
// container that passes its health gate: the deployment is down (see
// Engine.Down).
var ErrDown = errors.New("no container of the deployment passes its health gate")

// Repairs, as counted in liftoff_repairs_total{outcome}.
const (
	repairFinished  = "finished"  // the new container had passed its gate: the swap was finished
	repairRestored  = "restored"  // the previous container was put back
	repairRemoved   = "removed"   // nothing to go back to: what the deploy made was removed
	repairUntouched = "untouched" // the deploy had touched no container
	repairDown      = "down"      // no container could be made to pass its gate
)

// repair finishes or undoes what interrupted deploys of d left behind, and
// proves the result: the container it leaves running as the deployment
// passes the deployment's health gate like a new one. self is the journal
// id of the deploy calling it (which runs, so is not interrupted), or 0.
// It reports whether there was anything to repair.
//
// It is right whatever the engine is still doing for a process that died:
// a stop it asked for may complete seconds after the restart (so a
// container about to be stopped is waited for, not trusted to be running),
// and a create, start, rename or remove may land late (so the result is
// looked at again after acting, until it holds).
func (e *Engine) repair(ctx context.Context, log zerolog.Logger, d *deployments.Deployment, self int64) (bool, error) {
	if d.Service != nil {
		return e.repairService(ctx, log, d, self) // no container plans: Swarm owns its tasks
	}
	if d.HasProcesses() {
		return e.repairApp(ctx, log, d, self) // each process's containers, then the app's records
	}
	recs, err := e.interrupted(ctx, d.Name, self)
	if err != nil {
		return false, err
	}
	// A backup or release an interrupted deploy ran touched no container
	// of the service; what is left of it goes.
	if err := e.removeOneOffs(ctx, d); err != nil {
		return false, err
	}
	s, err := e.look(ctx, d, recs)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 && s.prev == nil && s.next == nil {
		return false, nil
	}
	p := s.plan(d)
	log = log.With().Str("step", p.step).Logger()
	// The proxy serves the container the repair keeps, at once.
	e.serveKept(log, d, p.keep)

	var errs []error
	switch {
	case p.repair == repairUntouched:
		// Nothing to repair: no container was touched.
	case p.forward:
		// The new container had passed its gate; prove it again before
		// the old one goes, and go back to the old one if it fails now.
		if err := e.prove(ctx, d, p.keep); err != nil {
			if p.old == nil {
				errs = append(errs, err)
				break
			}
			log.Warn().Err(err).Msg("reconcile: the new container does not pass its gate again; putting the previous one back")
			drop := slices.DeleteFunc(p.drop, func(c *Container) bool { return c == p.old })
			p = plan{outcome: RolledBack, repair: repairRestored, step: p.step, keep: p.old,
				drop: append(drop, p.keep), stopping: s.stopping(p.old),
				why: fmt.Sprintf("interrupted at step %s after the new container passed its gate, which it failed at start-up (%v); the previous container was restored", p.step, err)}
			e.serveKept(log, d, p.keep)
		}
		fallthrough
	default:
		if len(errs) > 0 {
			break
		}
		if err := e.converge(ctx, log, d, p); err != nil {
			errs = append(errs, err)
		} else if p.keep != nil && !p.forward {
			errs = append(errs, e.prove(ctx, d, p.keep))
		}
	}
	errs = slices.DeleteFunc(errs, func(err error) bool { return err == nil })
	if len(errs) > 0 {
		err := errors.Join(errs...)
		p.repair = repairDown
		p.why += fmt.Sprintf("; but no container of the deployment passes its health gate: %v", err)
		e.setDown(d.Name, err)
		log.Error().Err(err).Str("outcome", string(p.outcome)).
			Msg("reconcile could not leave a healthy container running: the deployment is DOWN; liftoff tries again every minute, or deploy a working image")
	} else {
		e.clearDown(d.Name)
		ev := log.Warn().Str("outcome", string(p.outcome)).Str("repair", p.repair)
		if p.keep != nil {
			ev = ev.Str("container", p.keep.ID)
		}
		ev.Msg("reconciled an interrupted deploy")
	}
	e.metrics.repairs.WithLabelValues(d.Name, p.repair).Inc()

	// Only a deploy that reached its goal keeps its request's promise; the
	// others are resumed (see Recover).
	if err := e.finishInterrupted(ctx, d, recs, p.outcome, p.why, p.outcome == Succeeded); err != nil {
		return true, err
	}
	if len(errs) > 0 {
		return true, fmt.Errorf("reconcile %s: %w: %w", d.Name, ErrDown, errors.Join(errs...))
	}
	return true, nil
}

// interrupted returns the unfinished deploys of a deployment but self,
// oldest first.
func (e *Engine) interrupted(ctx context.Context, deployment string, self int64) ([]Record, error) {
	j := e.opts.Journal
	if j == nil {
		return nil, nil
	}
	all, err := j.Unfinished(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var recs []Record
	for _, r := range all {
		if r.Deployment == deployment && r.ID != self {
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// finishInterrupted records what a repair made of the interrupted deploys
// recs of d: the last one ends with outcome o and why, settling its
// request if settle; the older ones failed, as a later deploy followed.
func (e *Engine) finishInterrupted(ctx context.Context, d *deployments.Deployment, recs []Record, o Outcome, why string, settle bool) error {
	j := e.opts.Journal
	if j == nil {
		return nil
	}
	for i, r := range recs {
		last := i == len(recs)-1
		r.Outcome, r.Ended, r.Error = o, e.opts.Now(), why
		if !last {
			r.Outcome, r.Error = Failed, fmt.Sprintf("interrupted at step %s; a later deploy followed", r.Step)
		}
		if err := j.Finish(ctx, r.ID, r, last && settle); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if e.opts.Config().Unit(d.Name) == nil { // a process's swap counts in its app's deploy
			e.metrics.deploys.WithLabelValues(d.Name, d.Environment, string(r.Outcome)).Inc()
		}
	}
	return nil
}
