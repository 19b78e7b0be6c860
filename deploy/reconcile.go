package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftoff-deploy/liftoff/deployments"
)

// Reconcile repairs every deployment of the configuration after liftoff
// (or the engine) was interrupted: each deploy the journal shows unfinished
// is finished (if its new container had passed the gate) or undone (the
// previous container is put back and started), leftovers (.liftoff-prev,
// .liftoff-next) are removed, and the interrupted deploy is recorded as
// such. Each deployment is repaired in its own queue, so a repair never runs
// beside a deploy of the same deployment. Reconcile waits for the repairs.
// A deployment a repair leaves down (no container passes its health gate)
// is not an error of Reconcile's: it is logged, listed by Down, counted,
// and repaired again by Watch.
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
				if err := j.Finish(ctx, r.ID, r, false); err != nil {
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
			// A deployment left down is no failure of Reconcile's: it
			// is logged, listed by Down and repaired again by Watch.
			if err != nil && !errors.Is(err, ErrDown) {
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

// runRepair is a repair job: it repairs the deployment and notes what
// runs. A deployment that is down, with nothing left to repair, has its
// container started (if it stopped) and gated again.
func (e *Engine) runRepair(deployment string) error {
	d := e.opts.Config().Deployment(deployment)
	if d == nil {
		e.clearDown(deployment)
		return nil
	}
	log := e.log.With().Str("deployment", d.Name).Logger()
	repaired, err := e.repair(e.ctx, log, d, 0)
	if err != nil {
		return err
	}
	if !repaired && e.isDown(d.Name) {
		c, err := e.runtime(d).Inspect(e.ctx, d.ContainerName())
		if err == nil {
			err = e.prove(e.ctx, d, &c)
		}
		if err != nil {
			e.setDown(d.Name, err)
			log.Error().Err(err).Msg("the deployment is still DOWN: its container does not pass its health gate")
			return fmt.Errorf("%s: %w: %w", d.Name, ErrDown, err)
		}
		e.clearDown(d.Name)
	}
	e.observe(e.ctx, d)
	return nil
}

// observe sets liftoff_deployed_info from the deployment's running
// container, so that the metric is right from start-up, not only after the
// next deploy.
func (e *Engine) observe(ctx context.Context, d *deployments.Deployment) {
	c, err := e.runtime(d).Inspect(ctx, d.ContainerName())
	if err != nil || !c.Managed() || !c.Running || c.Labels[LabelDeployment] != d.Name {
		return
	}
	e.metrics.setDeployed(prometheus.Labels{
		"deployment": d.Name, "environment": c.Labels[LabelEnvironment],
		"image": c.Labels[LabelImage], "tag": c.Labels[LabelTag], "digest": c.Labels[LabelDigest],
	})
}

// Watch pings the engine every interval until ctx ends. Whenever the engine
// answers after not answering (and once at the first answer: after liftoff
// or the engine restarted) it reconciles every deployment, then resumes the
// accepted requests that never reached an outcome (see Recover). Deployments
// that are down are repaired again every DownRetry.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	up := false
	t := time.NewTicker(interval)
	defer t.Stop()
	lastTry := map[string]time.Time{}
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
			err := e.Reconcile(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				// The journal could not be read, the engine went away...:
				// all of it again at the next tick.
				e.log.Error().Err(err).Msg("reconcile failed; trying again")
				up = false
				break
			}
			if err := e.Recover(ctx); err != nil && ctx.Err() == nil {
				e.log.Error().Err(err).Msg("could not resume the accepted pushes; they stay in the journal for the next try")
				up = false
			}
			for name := range e.Down() {
				lastTry[name] = time.Now()
			}
		case err == nil:
			for name := range e.Down() {
				if time.Since(lastTry[name]) >= e.opts.DownRetry {
					lastTry[name] = time.Now()
					e.enqueueRepair(name, make(chan error, 1))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
