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

// Bounds of a repair.
const (
	// stopMargin is added to a deployment's stop_timeout when waiting for a
	// stop that the interrupted process asked for: the engine kills the
	// container at the grace period's end and needs a moment to notice.
	stopMargin = 5 * time.Second
	// convergeRounds bounds how often a repair looks again at containers
	// that keep changing under it (calls of the dead process landing late).
	convergeRounds = 5
)

// plan is what a repair will do, decided once from the journal and what
// the engine shows; containers are then found again by id.
type plan struct {
	outcome Outcome // of the interrupted deploy
	repair  string  // repairFinished, ...
	why     string
	step    string // the interrupted deploy's last step, "(none)" without a journal entry

	keep *Container   // the container that must end up running as <name>; nil: none
	drop []*Container // what goes
	// forward: keep is the new container; it is gated before old is
	// dropped, so that old can still be put back if it fails.
	forward bool
	old     *Container
	// stopping: the interrupted process may have asked the engine to stop
	// keep, and the engine may still be doing it.
	stopping bool
	// digest is the interrupted deploy's: a container of it that appears
	// under the name while the repair runs was created late, and goes.
	digest string
}

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

	if j := e.opts.Journal; j != nil {
		for i, r := range recs {
			r.Outcome, r.Ended, r.Error = p.outcome, e.opts.Now(), p.why
			if i < len(recs)-1 {
				r.Outcome, r.Error = Failed, fmt.Sprintf("interrupted at step %s; a later deploy followed", r.Step)
			}
			// Only a deploy that reached its goal keeps its request's
			// promise; the others are resumed (see Recover).
			settle := i == len(recs)-1 && r.Outcome == Succeeded
			if err := j.Finish(ctx, r.ID, r, settle); err != nil {
				return true, fmt.Errorf("journal: %w", err)
			}
			e.metrics.deploys.WithLabelValues(d.Name, d.Environment, string(r.Outcome)).Inc()
		}
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

// scene is what a repair finds: the interrupted deploys and the containers
// under the deployment's three names.
type scene struct {
	name            string
	recs            []Record
	last            *Record
	cur, prev, next *Container
}

// look inspects the containers named <name>, <name>.liftoff-prev and
// <name>.liftoff-next. Set-aside ones liftoff did not create are not ours
// to touch, unless the journal names them.
func (e *Engine) look(ctx context.Context, d *deployments.Deployment, recs []Record) (scene, error) {
	s := scene{name: d.ContainerName(), recs: recs}
	if len(recs) > 0 {
		s.last = &recs[len(recs)-1]
	}
	for _, slot := range []struct {
		name string
		c    **Container
	}{{s.name, &s.cur}, {s.name + PrevSuffix, &s.prev}, {s.name + NextSuffix, &s.next}} {
		c, err := e.inspect(ctx, d, slot.name)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return s, fmt.Errorf("inspect %s: %w", slot.name, err)
		case slot.name != s.name && !c.Managed() && !s.journaled(c.ID):
		default:
			*slot.c = &c
		}
	}
	return s, nil
}

// leftover tells whether c, found under a set-aside name, is liftoff's
// container of the deployment (or one the journal names).
func (s scene) leftover(c *Container, deployment string) bool {
	return s.journaled(c.ID) || c.Managed() && c.Labels[LabelDeployment] == deployment
}

// journaled tells whether the interrupted deploy names the container.
func (s scene) journaled(id string) bool {
	return s.last != nil && (s.last.PrevID == id || s.last.NewID == id)
}

// stopping tells whether the interrupted process may have asked the engine
// to stop c, the previous container, and the engine may still be at it.
// stop-first asks at step stop, once the new container is created beside
// it (before: rename and create, the old one keeps running; after: start
// and gate, its stop has returned); start-first and the proxy at cleanup.
func (s scene) stopping(c *Container) bool {
	return s.last != nil && c != nil && c.ID == s.last.PrevID &&
		(s.last.Step == StepStop || s.last.Step == StepCleanup)
}

// plan decides: which container is the old one, which the new one, and
// had the new one passed its gate?
func (s scene) plan(d *deployments.Deployment) plan {
	var old, fresh *Container
	passed := false
	p := plan{step: "(none)"}
	if last := s.last; last != nil {
		p.step = last.Step
		passed = last.Step == StepCleanup
		for _, c := range []*Container{s.cur, s.prev, s.next} {
			switch {
			case c == nil:
			case last.PrevID != "" && c.ID == last.PrevID:
				old = c
			case last.NewID != "" && c.ID == last.NewID:
				fresh = c
			case last.NewID == "" && c.Managed() && c.Labels[LabelDigest] == last.Digest && last.Digest != "" &&
				slices.Contains([]string{StepCreate, StepStart}, last.Step):
				// created, but the crash came before its id was journaled
				fresh = c
			}
		}
		if old == nil && last.PrevID == "" && s.cur != nil && s.cur != fresh {
			// The deploy had not reached the old container: whatever runs
			// under the name is the old one.
			old = s.cur
		}
	} else {
		// No journal entry (journal off, or lost): judge by names alone.
		// A running container under the name wins over a set-aside one.
		switch {
		case s.next != nil:
			// Start-first: the old one is gone or stopped only once the
			// new one had passed its gate.
			fresh, old, passed = s.next, s.cur, s.cur == nil || !s.cur.Running && s.next.Running
		case s.cur != nil && s.cur.Running:
			fresh, old, passed = s.cur, s.prev, true
		default:
			fresh, old = s.cur, s.prev
		}
	}
	if s.last != nil {
		p.digest = s.last.Digest
	}
	for _, c := range []*Container{s.prev, s.next} {
		if c != nil && c != old && c != fresh && s.leftover(c, d.Name) {
			p.drop = append(p.drop, c) // set aside by an earlier crash
		}
	}
	untouched := s.last != nil && s.prev == nil && s.next == nil && fresh == nil &&
		slices.Contains([]string{"", StepResolve, StepPull, StepPrepare, StepBackup, StepRelease}, s.last.Step)
	switch {
	case untouched:
		p.outcome, p.repair = Failed, repairUntouched
		p.why = fmt.Sprintf("interrupted at step %s, before any container was touched", p.step)
	case passed && fresh != nil:
		p.outcome, p.repair, p.keep, p.forward, p.old = Succeeded, repairFinished, fresh, true, old
		if old != nil {
			p.drop = append(p.drop, old)
		}
		p.why = fmt.Sprintf("interrupted at step %s after the new container passed its gate; the swap was finished at start-up", p.step)
	case old != nil:
		p.outcome, p.repair, p.keep, p.stopping = RolledBack, repairRestored, old, s.stopping(old)
		if fresh != nil {
			p.drop = append(p.drop, fresh)
		}
		p.why = fmt.Sprintf("interrupted at step %s; the previous container was restored at start-up", p.step)
	default:
		p.outcome, p.repair = Failed, repairRemoved
		if fresh != nil {
			p.drop = append(p.drop, fresh)
		}
		p.why = fmt.Sprintf("interrupted at step %s; there was no previous container to restore", p.step)
	}
	return p
}

// converge makes p hold: p.drop gone, p.keep running under the
// deployment's name. It looks again after acting, for as long as the
// containers keep changing under it (bounded).
func (e *Engine) converge(ctx context.Context, log zerolog.Logger, d *deployments.Deployment, p plan) error {
	rt, err := e.runtime(d)
	if err != nil {
		return err
	}
	name := d.ContainerName()
	if p.keep != nil && p.stopping {
		if err := e.waitStopped(ctx, log, d, p.keep.ID); err != nil {
			return err
		}
	}
	drop := map[string]bool{}
	for _, c := range p.drop {
		drop[c.ID] = true
	}
	var last error
	for round := 1; round <= convergeRounds; round++ {
		if round > 1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(round) * 200 * time.Millisecond):
			}
		}
		s, err := e.look(ctx, d, nil)
		if err != nil {
			return err
		}
		var keep *Container
		if p.keep != nil {
			c, err := rt.Inspect(ctx, p.keep.ID)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("the container to keep (%.12s) is gone", p.keep.ID)
			} else if err != nil {
				return err
			}
			keep = &c
		}
		// What the dead process's calls left late goes too: a new
		// container created under the name, a container set aside.
		for _, c := range []*Container{s.cur, s.prev, s.next} {
			switch {
			case c == nil || keep != nil && c.ID == keep.ID:
			case c == s.cur && !(c.Managed() && c.Labels[LabelDeployment] == d.Name && p.digest != "" && c.Labels[LabelDigest] == p.digest):
			case c != s.cur && !s.leftover(c, d.Name):
			default:
				drop[c.ID] = true
			}
		}
		var present []string
		for id := range drop {
			if _, err := rt.Inspect(ctx, id); err == nil {
				present = append(present, id)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if len(present) == 0 && (keep == nil || keep.Name == name && keep.Running) {
			return nil
		}
		last = e.act(ctx, log, d, keep, present)
		if last != nil {
			log.Warn().Err(last).Int("round", round).Msg("reconcile: a step did not hold; looking again")
		}
	}
	if last == nil {
		last = errors.New("the containers kept changing")
	}
	return fmt.Errorf("reconcile did not settle after %d rounds: %w", convergeRounds, last)
}

// act removes drop and brings keep up as <name>. A dropped container that
// may be serving beside keep (start-first) gets its stop signal first, so
// that its requests in flight finish; the others are removed at once.
func (e *Engine) act(ctx context.Context, log zerolog.Logger, d *deployments.Deployment, keep *Container, drop []string) error {
	rt, err := e.runtime(d)
	if err != nil {
		return err
	}
	name := d.ContainerName()
	do := func(f func(ctx context.Context) error) error {
		return e.retry(ctx, log, "reconcile", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, d.StopTimeout+e.opts.OpTimeout)
			defer cancel()
			return f(ctx)
		})
	}
	for _, id := range drop {
		if keep != nil && keep.Running {
			if c, err := rt.Inspect(ctx, id); err == nil && c.Running {
				if err := do(func(ctx context.Context) error { return rt.Stop(ctx, id, d.StopTimeout) }); err != nil && !errors.Is(err, ErrNotFound) {
					log.Warn().Err(err).Str("container", id).Msg("reconcile: could not stop a leftover; removing it")
				}
			}
		}
		if err := do(func(ctx context.Context) error { return rt.Remove(ctx, id) }); err != nil {
			return fmt.Errorf("remove %.12s: %w", id, err)
		}
	}
	if keep == nil {
		return nil
	}
	if keep.Name != name {
		if err := do(func(ctx context.Context) error { return e.rename(ctx, rt, keep.ID, name) }); err != nil {
			return fmt.Errorf("rename %.12s to %s: %w", keep.ID, name, err)
		}
	}
	if !keep.Running {
		if err := do(func(ctx context.Context) error { return rt.Start(ctx, keep.ID) }); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
	}
	return nil
}

// waitStopped waits until container id is not running, for as long as a
// stop the dead process asked for may take; a container still running then
// never got that stop, and is left running.
func (e *Engine) waitStopped(ctx context.Context, log zerolog.Logger, d *deployments.Deployment, id string) error {
	rt, err := e.runtime(d)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d.StopTimeout + stopMargin)
	waited := false
	for {
		c, err := rt.Inspect(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if !c.Running {
			if waited {
				log.Info().Str("container", id).Msg("reconcile: the stop the interrupted deploy asked for has completed")
			}
			return nil
		}
		if time.Now().After(deadline) {
			log.Info().Str("container", id).Msg("reconcile: the previous container kept running: the interrupted deploy's stop never reached the engine")
			return nil
		}
		if !waited {
			log.Info().Str("container", id).Dur("up_to", d.StopTimeout+stopMargin).
				Msg("reconcile: the interrupted deploy was stopping the previous container; waiting for the engine to finish before starting it again")
			waited = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// prove runs the deployment's health gate on a container that a repair
// keeps or a rollback put back, starting it first if it does not run: it
// must prove itself like a new one.
func (e *Engine) prove(ctx context.Context, d *deployments.Deployment, c *Container) error {
	rt, err := e.runtime(d)
	if err != nil {
		return fmt.Errorf("container %.12s: %w", c.ID, err)
	}
	cur, err := rt.Inspect(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("container %.12s: %w", c.ID, err)
	}
	if !cur.Running {
		if err := e.retry(ctx, e.log, "reconcile", func(ctx context.Context) error { return rt.Start(ctx, c.ID) }); err != nil {
			return fmt.Errorf("start %.12s: %w", c.ID, err)
		}
	}
	gctx, cancel := context.WithTimeout(ctx, d.Health.Timeout+e.opts.OpTimeout)
	defer cancel()
	if err := e.gate(gctx, rt, d, c.ID); err != nil {
		return fmt.Errorf("container %.12s: %w", c.ID, err)
	}
	return nil
}
