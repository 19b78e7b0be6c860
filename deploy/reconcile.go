package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/deployments"
)

// Reconcile repairs every deployment of the configuration after liftoff
// (or the engine) was interrupted: each deploy the journal shows unfinished
// is finished (if its new container had passed the gate) or undone (the
// previous container is put back and started), leftovers (.liftoff-prev,
// .liftoff-next) are removed, and the interrupted deploy is recorded as
// such. Each deployment is repaired in its own queue, so a repair never runs
// beside a deploy of the same deployment. Reconcile waits for the repairs.
func (e *Engine) Reconcile(ctx context.Context) error {
	cfg := e.opts.Config()
	var errs []error
	if j := e.opts.Journal; j != nil {
		recs, err := j.Unfinished(ctx)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		// Deploys of deployments no longer configured are closed, their
		// containers left alone (removing a deployment never deletes).
		for _, r := range recs {
			if cfg.Deployment(r.Deployment) == nil && !e.Busy(r.Deployment) {
				r.Outcome, r.Ended = Failed, e.opts.Now()
				r.Error = fmt.Sprintf("interrupted at step %s; the deployment is no longer configured, so its containers were left as they are", r.Step)
				if err := j.Finish(ctx, r.ID, r); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	var wait []chan error
	for i := range cfg.Deployments {
		done := make(chan error, 1)
		if e.enqueueRepair(cfg.Deployments[i].Name, done) {
			wait = append(wait, done)
		}
	}
	for _, done := range wait {
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// enqueueRepair runs a repair of the deployment in its queue, unless a
// deploy runs or waits there (every deploy repairs first).
func (e *Engine) enqueueRepair(name string, done chan error) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, busy := e.queues[name]; busy || e.closed {
		return false
	}
	e.startLocked(repairJob(name, done))
	return true
}

// runRepair is a repair job: it repairs the deployment and notes what runs.
func (e *Engine) runRepair(deployment string) error {
	d := e.opts.Config().Deployment(deployment)
	if d == nil {
		return nil
	}
	log := e.log.With().Str("deployment", d.Name).Logger()
	if _, err := e.repair(e.ctx, log, d, 0); err != nil {
		return err
	}
	e.observe(e.ctx, d)
	return nil
}

// repair finishes or undoes what interrupted deploys of d left behind.
// self is the journal id of the deploy calling it (not interrupted: it
// runs), or 0. It reports whether it changed anything.
func (e *Engine) repair(ctx context.Context, log zerolog.Logger, d *deployments.Deployment, self int64) (bool, error) {
	rt := e.opts.Runtime
	name := d.ContainerName()
	var recs []Record
	if j := e.opts.Journal; j != nil {
		all, err := j.Unfinished(ctx)
		if err != nil {
			return false, fmt.Errorf("journal: %w", err)
		}
		for _, r := range all {
			if r.Deployment == d.Name && r.ID != self {
				recs = append(recs, r)
			}
		}
	}
	byName := map[string]*Container{}
	for _, n := range []string{name, name + PrevSuffix, name + NextSuffix} {
		c, err := rt.Inspect(ctx, n)
		switch {
		case err == nil:
			byName[n] = &c
		case !errors.Is(err, ErrNotFound):
			return false, fmt.Errorf("inspect %s: %w", n, err)
		}
	}
	// Leftovers liftoff did not create are not ours to touch.
	for _, n := range []string{name + PrevSuffix, name + NextSuffix} {
		if c := byName[n]; c != nil && !c.Managed() && !(len(recs) > 0 && recs[len(recs)-1].PrevID == c.ID) {
			delete(byName, n)
		}
	}
	cur, prev, next := byName[name], byName[name+PrevSuffix], byName[name+NextSuffix]
	if len(recs) == 0 && prev == nil && next == nil {
		return false, nil
	}

	// Which container is the old one, which the new one, and had the new
	// one passed its gate?
	var old, fresh *Container
	passed := false
	var last *Record
	if len(recs) > 0 {
		last = &recs[len(recs)-1]
		passed = last.Step == StepCleanup
		for _, c := range []*Container{cur, prev, next} {
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
		if old == nil && last.PrevID == "" {
			// The deploy had not reached the old container: whatever runs
			// under the name is the old one.
			if cur != nil && cur != fresh {
				old = cur
			}
		}
	} else {
		// No journal entry (journal off, or lost): judge by names alone.
		// A running container under the name wins over a set-aside one.
		switch {
		case next != nil:
			// Start-first: the old one is gone or stopped only once the
			// new one had passed its gate.
			fresh, old, passed = next, cur, cur == nil || !cur.Running && next.Running
		case cur != nil && cur.Running:
			fresh, old, passed = cur, prev, true
		default:
			fresh, old = cur, prev
		}
	}

	var errs []error
	do := func(what string, f func() error) {
		if err := e.retry(ctx, log, "reconcile", func(context.Context) error { return f() }); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	outcome, why := Failed, ""
	step := "(none)"
	if last != nil {
		step = last.Step
	}
	untouched := last != nil && prev == nil && next == nil && fresh == nil &&
		slices.Contains([]string{StepResolve, StepPull, StepPrepare}, last.Step)
	switch {
	case untouched:
		why = fmt.Sprintf("interrupted at step %s, before any container was touched", step)
	case passed && fresh != nil:
		if old != nil {
			do("remove previous container", func() error { return rt.Remove(ctx, old.ID) })
		}
		if fresh.Name != name {
			do("rename new container", func() error { return rt.Rename(ctx, fresh.ID, name) })
		}
		if !fresh.Running {
			do("start new container", func() error { return rt.Start(ctx, fresh.ID) })
		}
		outcome, why = Succeeded, fmt.Sprintf("interrupted at step %s after the new container passed its gate; the swap was finished at start-up", step)
	case old != nil:
		if fresh != nil {
			do("remove new container", func() error { return rt.Remove(ctx, fresh.ID) })
		}
		if old.Name != name {
			do("rename previous container back", func() error { return rt.Rename(ctx, old.ID, name) })
		}
		if !old.Running {
			do("start previous container", func() error { return rt.Start(ctx, old.ID) })
		}
		outcome, why = RolledBack, fmt.Sprintf("interrupted at step %s; the previous container was restored at start-up", step)
	default:
		if fresh != nil {
			do("remove new container", func() error { return rt.Remove(ctx, fresh.ID) })
		}
		why = fmt.Sprintf("interrupted at step %s; there was no previous container to restore", step)
	}
	if len(errs) > 0 {
		log.Error().Errs("errors", errs).Str("step", step).Msg("reconcile incomplete")
		return true, fmt.Errorf("reconcile %s: %w", d.Name, errors.Join(errs...))
	}
	ev := log.Warn().Str("step", step).Str("outcome", string(outcome))
	if fresh != nil {
		ev = ev.Str("new_container", fresh.ID)
	}
	if old != nil {
		ev = ev.Str("previous_container", old.ID)
	}
	ev.Msg("reconciled an interrupted deploy")

	if j := e.opts.Journal; j != nil {
		for i, r := range recs {
			r.Outcome, r.Ended, r.Error = outcome, e.opts.Now(), why
			if i < len(recs)-1 {
				r.Outcome, r.Error = Failed, fmt.Sprintf("interrupted at step %s; a later deploy followed", r.Step)
			}
			if err := j.Finish(ctx, r.ID, r); err != nil {
				return true, fmt.Errorf("journal: %w", err)
			}
			e.metrics.deploys.WithLabelValues(d.Name, d.Environment, string(r.Outcome)).Inc()
		}
	}
	return true, nil
}

// observe sets liftoff_deployed_info from the deployment's running
// container, so that the metric is right from start-up, not only after the
// next deploy.
func (e *Engine) observe(ctx context.Context, d *deployments.Deployment) {
	c, err := e.opts.Runtime.Inspect(ctx, d.ContainerName())
	if err != nil || !c.Managed() || !c.Running || c.Labels[LabelDeployment] != d.Name {
		return
	}
	e.metrics.setDeployed(prometheus.Labels{
		"deployment": d.Name, "environment": c.Labels[LabelEnvironment],
		"image": c.Labels[LabelImage], "tag": c.Labels[LabelTag], "digest": c.Labels[LabelDigest],
	})
}

// Watch pings the engine every interval until ctx ends and reconciles
// every deployment whenever the engine answers after not answering (and
// once at the first answer): after liftoff or the engine restarted.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	up := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := e.opts.Runtime.Ping(pctx)
		cancel()
		switch {
		case err != nil && up:
			e.log.Warn().Err(err).Msg("Docker engine stopped answering")
			up = false
		case err == nil && !up:
			up = true
			if err := e.Reconcile(ctx); err != nil && ctx.Err() == nil {
				e.log.Error().Err(err).Msg("reconcile failed; will try again when the engine comes back")
				up = false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
