package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/deployments"
)

// Suffixes of the containers that exist beside <name> during a swap: the
// previous one set aside by stop-first, the new one proving itself in
// start-first.
const (
	PrevSuffix = ".liftoff-prev"
	NextSuffix = ".liftoff-next"
)

// rollbackTimeout bounds putting the previous container back. It runs on a
// context of its own so that a shutdown or a cancelled deploy still restores
// the service.
const rollbackTimeout = 2 * time.Minute

// attempt is one deploy in progress.
type attempt struct {
	e   *Engine
	ctx context.Context
	log zerolog.Logger
	cfg *deployments.Config
	d   *deployments.Deployment
	res Result
	rec Record // what the journal knows
	id  int64  // journal id; 0 without a journal

	name       string     // the container's name
	prev       *Container // the container being replaced, once its stop began
	stopped    bool       // prev's stop began: a rollback starts it again
	renamed    bool       // prev now carries the PrevSuffix name
	wasRunning bool
	newID      string
	newName    string // the new container's name while it proves itself
	published  bool   // start-first: the new container got its aliases
	// unrepaired: the swap was left half done (the engine stopped
	// answering during the rollback or start-first's last step). The
	// deploy stays unfinished in the journal, so that reconcile finishes
	// or undoes it as it would after a crash.
	unrepaired bool
}

// run performs one deploy and records its outcome.
func (e *Engine) run(r Request, onResolved func()) Result {
	e.metrics.inProgress.Inc()
	defer e.metrics.inProgress.Dec()

	a := &attempt{e: e, ctx: e.ctx, cfg: e.opts.Config()}
	a.res = Result{Request: r, Started: e.opts.Now()}
	a.log = e.log.With().Str("deployment", r.Deployment).Str("tag", r.Tag).Str("delivery", r.Delivery).Logger()
	a.rec = Record{
		Deployment: r.Deployment, Image: r.Image, Tag: r.Tag, Digest: r.Digest,
		Trigger: r.Trigger, Delivery: r.Delivery, Pusher: r.Pusher, Started: a.res.Started,
		Phases: map[string]time.Duration{},
	}

	a.d = a.cfg.Deployment(r.Deployment)
	if a.d == nil {
		a.finish(Failed, fmt.Errorf("deployment %q is no longer in the configuration", r.Deployment))
		return a.res
	}
	a.res.Environment = a.d.Environment
	a.rec.Environment = a.d.Environment
	a.rec.Image = a.d.Image
	a.name = a.d.ContainerName()
	if j := e.opts.Journal; j != nil {
		id, err := j.Begin(a.ctx, a.rec)
		if err != nil {
			// Without a journal a crash mid-swap could not be repaired: do not start.
			onResolved()
			a.finish(Failed, fmt.Errorf("journal: %w", err))
			return a.res
		}
		a.id, a.rec.ID = id, id
	}
	a.log.Info().Str("image", a.d.Image).Str("trigger", r.Trigger).Str("pusher", r.Pusher).
		Str("strategy", a.d.Strategy).Msg("deploy started")

	outcome, err := a.steps(onResolved)
	a.finish(outcome, err)
	return a.res
}

func (a *attempt) finish(o Outcome, err error) {
	e := a.e
	a.res.Outcome, a.res.Err, a.res.Ended = o, err, e.opts.Now()
	d := a.res.Ended.Sub(a.res.Started)
	e.metrics.deploys.WithLabelValues(a.res.Request.Deployment, a.res.Environment, string(o)).Inc()
	if o != Unchanged {
		e.metrics.duration.WithLabelValues(a.res.Request.Deployment, a.res.Environment).Observe(d.Seconds())
	}
	if a.id != 0 && a.unrepaired {
		a.log.Warn().Str("step", a.rec.Step).Msg("journal: the deploy stays unfinished; reconcile repairs it when the engine answers again, at the next start or before the next deploy")
	} else if a.id != 0 {
		a.rec.Outcome, a.rec.Ended, a.rec.Digest, a.rec.Previous = o, a.res.Ended, a.res.Digest, a.res.Previous
		if err != nil {
			a.rec.Error = err.Error()
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), 10*time.Second)
		if jerr := e.opts.Journal.Finish(ctx, a.id, a.rec); jerr != nil {
			a.log.Error().Err(jerr).Msg("journal: could not record the outcome; reconcile will look at it at the next start")
		}
		cancel()
	}
	ev := a.log.Info()
	if err != nil {
		ev = a.log.Error().Err(err)
		if o == Refused {
			ev = a.log.Warn().Err(err)
		}
	}
	ev.Str("outcome", string(o)).Str("digest", a.res.Digest).Str("previous_digest", a.res.Previous).
		Dur("duration", d).Msg("deploy finished")
	if o == Succeeded {
		e.metrics.lastSuccess.WithLabelValues(a.res.Request.Deployment).Set(float64(a.res.Ended.Unix()))
		e.metrics.setDeployed(prometheus.Labels{
			"deployment": a.res.Request.Deployment, "environment": a.res.Environment,
			"image": a.d.Image, "tag": a.res.Request.Tag, "digest": a.res.Digest,
		})
	}
}

// step journals step, then runs f as one timed phase with its own deadline,
// retrying while the engine is unavailable. A step that cannot be journaled
// is not taken.
func (a *attempt) step(step string, timeout time.Duration, f func(ctx context.Context) error) error {
	if err := a.journal(a.ctx, step); err != nil {
		return err
	}
	if a.e.opts.BeforeStep != nil {
		a.e.opts.BeforeStep(a.rec.Deployment, step)
	}
	start := time.Now()
	defer func() {
		took := time.Since(start)
		a.rec.Phases[step] += took
		a.e.metrics.phase.WithLabelValues(step).Observe(took.Seconds())
	}()
	err := a.e.retry(a.ctx, a.log, step, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return f(ctx)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}

func (a *attempt) journal(ctx context.Context, step string) error {
	a.rec.Step = step
	a.rec.Digest, a.rec.Previous, a.rec.NewID = a.res.Digest, a.res.Previous, a.newID
	if a.prev != nil {
		a.rec.PrevID = a.prev.ID
	}
	if a.id == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.e.opts.Journal.Step(ctx, a.id, a.rec); err != nil {
		return fmt.Errorf("journal step %s: %w", step, err)
	}
	return nil
}

// steps is the deploy (DESIGN.md, Deploy, step by step). Nothing is
// stopped before the image is pulled, the container's config is built and
// its environment passes the policy; once the old container is touched,
// every failure ends in rollback.
func (a *attempt) steps(onResolved func()) (Outcome, error) {
	rt, r, d := a.e.opts.Runtime, a.res.Request, a.d
	pullRepo, cred, err := a.cfg.PullRepo(d.Image)
	if err != nil {
		onResolved()
		return Failed, fmt.Errorf("registry settings for %s: %w", d.Image, err)
	}
	auth := Auth{Username: cred.Username, Password: cred.Password}

	// 1. resolve the tag to a digest, and stop if that digest already runs.
	digest := r.Digest
	var cur *Container
	err = a.step(StepResolve, a.e.opts.PullTimeout, func(ctx context.Context) error {
		if digest == "" {
			var err error
			if digest, err = rt.Resolve(ctx, pullRepo+":"+r.Tag, auth); err != nil {
				return err
			}
		}
		var err error
		cur, err = a.current(ctx)
		return err
	})
	onResolved()
	if err != nil {
		return Failed, err
	}
	a.res.Digest = digest
	if cur != nil {
		a.res.Previous = cur.Labels[LabelDigest]
		if !cur.Managed() && !d.Container.ReplaceUnmanaged {
			return Failed, fmt.Errorf("container %q exists and was not created by liftoff; remove it, or set container.replace_unmanaged: true to let liftoff replace it", a.name)
		}
		if cur.Managed() && cur.Running && cur.Labels[LabelDigest] == digest && cur.Labels[LabelDeployment] == d.Name {
			a.res.ContainerID = cur.ID
			return Unchanged, nil
		}
	}

	// 2. pull, while the old container keeps serving.
	ref := pullRepo + "@" + digest
	if err := a.step(StepPull, a.e.opts.PullTimeout, func(ctx context.Context) error {
		return rt.Pull(ctx, ref, auth)
	}); err != nil {
		return Failed, err
	}

	// 3. build the container's config and check the environment's policy.
	var spec Spec
	if err := a.step(StepPrepare, a.e.opts.OpTimeout, func(ctx context.Context) error {
		imageEnv, err := rt.ImageEnv(ctx, ref)
		if err != nil {
			return err
		}
		env, err := a.cfg.Env(d, imageEnv)
		if err != nil {
			return err
		}
		spec = a.spec(ref, digest, env)
		return nil
	}); err != nil {
		return Failed, err
	}
	if err := a.cfg.CheckPolicy(d, spec.Env); err != nil {
		return Refused, err
	}

	if d.Strategy == deployments.StartFirst && cur != nil {
		return a.startFirst(cur, spec)
	}
	return a.stopFirst(cur, spec)
}

// stopFirst: stop the old container, keep it aside, start the new one under
// the name, gate it, then remove the old one.
func (a *attempt) stopFirst(cur *Container, spec Spec) (Outcome, error) {
	rt, d := a.e.opts.Runtime, a.d
	if cur != nil {
		a.prev, a.wasRunning, a.stopped = cur, cur.Running, true
		if err := a.step(StepStop, a.stopTimeout(), func(ctx context.Context) error {
			return rt.Stop(ctx, cur.ID, d.StopTimeout)
		}); err != nil {
			return a.rollback(err)
		}
		if err := a.step(StepRename, a.e.opts.OpTimeout, func(ctx context.Context) error {
			return rt.Rename(ctx, cur.ID, a.name+PrevSuffix)
		}); err != nil {
			return a.rollback(err)
		}
		a.renamed = true
	}
	a.newName = a.name
	if err := a.createAndStart(spec); err != nil {
		return a.rollback(err)
	}
	if err := a.gate(); err != nil {
		return a.rollback(err)
	}
	a.res.ContainerID = a.newID
	if a.prev != nil {
		if err := a.step(StepCleanup, a.e.opts.OpTimeout, func(ctx context.Context) error {
			return rt.Remove(ctx, a.prev.ID)
		}); err != nil {
			// The deploy stands; the leftover goes with the next deploy or start-up.
			a.log.Warn().Err(err).Str("container", a.name+PrevSuffix).Msg("could not remove the previous container")
		}
	}
	return Succeeded, nil
}

// startFirst: start the new container beside the old one as
// <name>.liftoff-next on the same networks, gate it, give it the aliases
// (so that it shares the traffic only once proven), then stop the old one (it drains: it gets its stop signal while still reachable, so
// in-flight requests finish and new connections to it are refused and go
// to the new one), remove it and give the new one the name.
//
// Disconnecting the old one first would cut its requests in flight and
// gains nothing: Docker 20.10 drops an endpoint's DNS records only after
// its interface, on disconnect as on stop, so for a few milliseconds the
// alias still resolves to an address nobody answers (measured by
// cmd/liftoff's TestStartFirstZeroDowntime; plain "docker stop" does the
// same).
func (a *attempt) startFirst(cur *Container, spec Spec) (Outcome, error) {
	rt, d := a.e.opts.Runtime, a.d
	a.newName = a.name + NextSuffix
	spec.Name = a.newName
	// The aliases come only once the gate is passed: until then Docker's
	// DNS must not send a single request to a container that may fail it.
	aliases := spec.Aliases
	spec.Aliases = nil
	a.prev, a.wasRunning = cur, cur.Running
	if err := a.createAndStart(spec); err != nil {
		return a.rollback(err)
	}
	if err := a.gate(); err != nil {
		return a.rollback(err)
	}
	if len(aliases) > 0 {
		if err := a.step(StepPublish, a.e.opts.OpTimeout, func(ctx context.Context) error {
			a.published = true // even a failed reconnect may have published some
			return rt.SetAliases(ctx, a.newID, spec.Networks, aliases)
		}); err != nil {
			return a.rollback(err)
		}
	}
	// Past the gate the new container is the deployment: from here on a
	// failure is repaired forward (reconcile does the same after a crash).
	err := a.step(StepCleanup, a.stopTimeout()+a.e.opts.OpTimeout, func(ctx context.Context) error {
		// A retry (the engine went away mid-step) may find the old one gone.
		if err := rt.Stop(ctx, cur.ID, d.StopTimeout); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := rt.Remove(ctx, cur.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return rt.Rename(ctx, a.newID, a.name)
	})
	a.res.ContainerID = a.newID
	if err != nil {
		a.unrepaired = true
		return Failed, fmt.Errorf("new container %s runs and passed its gate, but the swap did not finish (reconcile will): %w", a.newName, err)
	}
	return Succeeded, nil
}

func (a *attempt) createAndStart(spec Spec) error {
	rt := a.e.opts.Runtime
	if err := a.step(StepCreate, a.e.opts.OpTimeout, func(ctx context.Context) error {
		if a.newID != "" {
			return nil // created by an earlier try of this step
		}
		id, err := rt.Create(ctx, spec)
		if err != nil {
			return err
		}
		a.newID = id
		return nil
	}); err != nil {
		return err
	}
	return a.step(StepStart, a.e.opts.OpTimeout, func(ctx context.Context) error {
		return rt.Start(ctx, a.newID)
	})
}

// current finds the deployment's container. Leftovers of an interrupted
// deploy are repaired first (see reconcile).
func (a *attempt) current(ctx context.Context) (*Container, error) {
	if _, err := a.e.repair(ctx, a.log, a.d, a.id); err != nil {
		return nil, err
	}
	c, err := a.e.opts.Runtime.Inspect(ctx, a.name)
	switch {
	case err == nil:
		return &c, nil
	case errors.Is(err, ErrNotFound):
		return nil, nil
	default:
		return nil, fmt.Errorf("inspect %s: %w", a.name, err)
	}
}

func (a *attempt) spec(ref, digest string, env []string) Spec {
	d, r := a.d, a.res.Request
	labels := make(map[string]string, len(d.Container.Labels)+6)
	for k, v := range d.Container.Labels {
		labels[k] = v
	}
	labels[LabelManaged] = "true"
	labels[LabelDeployment] = d.Name
	labels[LabelEnvironment] = d.Environment
	labels[LabelImage] = d.Image
	labels[LabelTag] = r.Tag
	labels[LabelDigest] = digest
	s := Spec{
		Name:     a.name,
		Image:    ref,
		Env:      env,
		Cmd:      d.Container.Command,
		Labels:   labels,
		Ports:    d.Container.Ports,
		Volumes:  d.Container.Volumes,
		Networks: d.Container.Networks,
		Aliases:  d.Container.Aliases,
		Restart:  d.Container.Restart,
	}
	if h := d.Health; len(h.Cmd) > 0 {
		// Each check may take as long as Docker's default allows, up to the
		// gate's own timeout: a check that hangs is cut by the gate anyway.
		s.Healthcheck = &Healthcheck{Test: h.Cmd, Interval: h.Interval, Timeout: min(30*time.Second, max(h.Interval, h.Timeout)), Retries: h.Retries}
	}
	return s
}

func (a *attempt) stopTimeout() time.Duration { return a.d.StopTimeout + a.e.opts.OpTimeout }

// rollback removes the new container and brings the previous one back as
// it was. It runs on a context of its own: it must finish even when the
// deploy was cancelled.
func (a *attempt) rollback(cause error) (Outcome, error) {
	rt := a.e.opts.Runtime
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
	try := func(what string, f func(ctx context.Context) error) {
		if err := a.e.retry(ctx, a.log, StepRollback, f); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
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
	if a.renamed {
		try("rename previous container back", func(ctx context.Context) error { return rt.Rename(ctx, a.prev.ID, a.name) })
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
	a.log.Warn().Err(cause).Msg("rolled back to the previous container")
	return RolledBack, cause
}
