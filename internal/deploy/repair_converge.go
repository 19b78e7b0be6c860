package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// A repair's actions: making its plan hold against an engine that may
// still be carrying out calls of a process that died, and proving the
// container it keeps.

// convergeRounds bounds how often a repair looks again at containers that
// keep changing under it (calls of the dead process landing late). The
// waits between its looks, and for a stop in flight, are in Engine's waits.
const convergeRounds = 5

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
			case <-time.After(time.Duration(round) * e.opts.waits.converge):
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
	deadline := time.Now().Add(d.StopTimeout + e.opts.waits.stopMargin)
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
			log.Info().Str("container", id).Dur("up_to", d.StopTimeout+e.opts.waits.stopMargin).
				Msg("reconcile: the interrupted deploy was stopping the previous container; waiting for the engine to finish before starting it again")
			waited = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(e.opts.waits.poll):
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
