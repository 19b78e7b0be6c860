package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Pinger is what Watch needs of a runtime to follow it.
type Pinger interface {
	// Ping tells whether the engine answers. It changes nothing: Watch
	// repeats it every interval.
	Ping(ctx context.Context) error
}

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
//
// With engines, only the deployments that run on one of them are
// repaired (Watch reconciles each engine as it comes back, while another
// may still be away); the deploys of deployments no longer configured are
// closed by the reconcile of the local engine. Each engine reconciled is
// also searched for containers of deployments that now run on another
// (see strays).
func (e *Engine) Reconcile(ctx context.Context, engines ...string) error {
	cfg := e.opts.Config()
	mine := func(engine string) bool { return len(engines) == 0 || slices.Contains(engines, engine) }
	var errs []error
	if j := e.opts.Journal; j != nil && mine(deployments.LocalEngine) {
		recs, err := j.Unfinished(ctx)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		// Deploys of deployments no longer configured are closed, their
		// containers left alone (removing a deployment never deletes).
		for _, r := range recs {
			// A process's records are its app's to repair (processes.go).
			if cfg.Deployment(r.Deployment) == nil && cfg.Unit(r.Deployment) == nil && !e.Busy(r.Deployment) {
				r.Outcome, r.Ended = Failed, e.opts.Now()
				r.Error = fmt.Sprintf("interrupted at step %s; the deployment is no longer configured, so its containers were left as they are", r.Step)
				if err := j.Finish(ctx, r.ID, r, false); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for name, rt := range e.engines() {
		if mine(name) {
			e.strays(ctx, cfg, name, rt)
		}
	}
	if err := e.adoptPreviews(ctx, cfg, mine); err != nil {
		errs = append(errs, err)
	}
	var wait []chan error
	for i := range cfg.Deployments {
		if !mine(engineName(&cfg.Deployments[i])) {
			continue
		}
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
	if d.Service != nil {
		// Swarm keeps a service's tasks running: liftoff never marks it
		// down, nor proves its tasks.
		e.clearDown(d.Name)
		e.observeService(e.ctx, d)
		return nil
	}
	if !repaired && e.isDown(d.Name) {
		var err error
		if d.HasProcesses() {
			err = e.proveApp(e.ctx, d)
		} else {
			var c Container
			if c, err = e.inspect(e.ctx, d, d.ContainerName()); err == nil {
				err = e.prove(e.ctx, d, &c)
			}
		}
		if err != nil {
			e.setDown(d.Name, err)
			log.Error().Err(err).Msg("the deployment is still DOWN: its container does not pass its health gate")
			return fmt.Errorf("%s: %w: %w", d.Name, ErrDown, err)
		}
		e.clearDown(d.Name)
	}
	e.observe(e.ctx, d)
	e.serveCurrent(e.ctx, d)
	return nil
}

// observe sets liftoff_deployed_info from the deployment's running
// container, so that the metric is right from start-up, not only after the
// next deploy.
func (e *Engine) observe(ctx context.Context, d *deployments.Deployment) {
	c, err := e.inspect(ctx, d, d.ContainerName())
	if err != nil || !c.Managed() || !c.Running || c.Labels[LabelDeployment] != d.Name || d.PreviewOf != "" {
		return // a preview's series would outlive it
	}
	e.metrics.setDeployed(prometheus.Labels{
		"deployment": d.Name, "environment": c.Labels[LabelEnvironment],
		"image": c.Labels[LabelImage], "tag": c.Labels[LabelTag], "digest": c.Labels[LabelDigest],
	})
}

// Watch pings each engine every interval until ctx ends, each in a loop of
// its own, so that an engine that does not answer holds up none of the
// others' deployments. Whenever an engine answers after not answering (and
// once at its first answer: after liftoff or the engine restarted) its
// deployments are reconciled, then the accepted requests of those
// deployments that never reached an outcome are resumed (see Recover).
// Deployments that are down are repaired again every DownRetry, while
// their engine answers.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	for name, rt := range e.engines() {
		wg.Go(func() { e.watchEngine(ctx, name, rt, interval) })
	}
	wg.Wait()
}

// engines returns the engines liftoff was started with, by name.
func (e *Engine) engines() map[string]Runtime {
	m := map[string]Runtime{deployments.LocalEngine: e.opts.Runtime}
	for name, rt := range e.opts.Engines {
		if name != deployments.LocalEngine {
			m[name] = rt
		}
	}
	return m
}

// watchEngine is Watch's loop for one engine.
func (e *Engine) watchEngine(ctx context.Context, engine string, rt Pinger, interval time.Duration) {
	log := e.log.With().Str("engine", engine).Logger()
	up := false
	t := time.NewTicker(interval)
	defer t.Stop()
	lastTry := map[string]time.Time{}
	// down lists the deployments of this engine that are down.
	down := func() []string {
		var names []string
		for name := range e.Down() {
			if deploymentEngine(e.opts.Config, name) == engine {
				names = append(names, name)
			}
		}
		return names
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := rt.Ping(pctx)
		cancel()
		switch {
		case err != nil && up:
			log.Warn().Err(err).Msg("Docker engine stopped answering; its deployments wait for it")
			up = false
		case err == nil && !up:
			up = true
			err := e.Reconcile(ctx, engine)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				// The journal could not be read, the engine went away...:
				// all of it again at the next tick.
				log.Error().Err(err).Msg("reconcile failed; trying again")
				up = false
				break
			}
			if err := e.Recover(ctx, engine); err != nil && ctx.Err() == nil {
				log.Error().Err(err).Msg("could not resume the accepted pushes; they stay in the journal for the next try")
				up = false
			}
			for _, name := range down() {
				lastTry[name] = time.Now()
			}
		case err == nil:
			for _, name := range down() {
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

// lister is what strays needs of a runtime: the docker adapter has it.
type lister interface {
	// List returns every container, stopped ones included, that carries
	// all of labels (a label with value "" matches any value).
	List(ctx context.Context, labels map[string]string) ([]Container, error)
}

// strays warns, once per container, of the containers on engine labelled
// for a deployment that the configuration now runs on another engine: it
// was moved, and its container here was left behind. A deployment runs on
// one engine only, so liftoff leaves such a container alone; whoever moved
// the deployment removes it.
func (e *Engine) strays(ctx context.Context, cfg *deployments.Config, engine string, rt Runtime) {
	l, ok := rt.(lister)
	if !ok {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	cs, err := l.List(lctx, map[string]string{LabelManaged: "true", LabelDeployment: ""})
	if err != nil {
		e.log.Debug().Err(err).Str("engine", engine).Msg("reconcile: could not list liftoff's containers to find strays")
		return
	}
	for _, c := range cs {
		d := cfg.Deployment(c.Labels[LabelDeployment])
		// A service's tasks run on whichever node Swarm picks: their
		// containers carry its labels wherever they are.
		if d == nil || d.Service != nil || engineName(d) == engine {
			continue
		}
		key := engine + "/" + c.ID
		e.mu.Lock()
		seen := e.strayed[key]
		e.strayed[key] = true
		e.mu.Unlock()
		if !seen {
			e.log.Warn().Str("engine", engine).Str("deployment", d.Name).Str("container", c.Name).Str("id", c.ID).
				Str("deployment_engine", engineName(d)).Bool("running", c.Running).
				Msg("a container of this deployment is on an engine it no longer runs on (the configuration moved it): liftoff leaves it alone; remove it by hand")
		}
	}
}
