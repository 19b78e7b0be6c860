package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Deploys is what a deploy needs of the journal to record itself step by
// step; a push dropped without a deploy (hold.go) and a repair record
// their outcome with it too.
type Deploys interface {
	// Begin records a deploy that starts now and returns its id;
	// r.Request links it to its accepted request (0: none).
	Begin(ctx context.Context, r Record) (int64, error)
	// Step records, before it is taken, that deploy id takes step; it also
	// stores r's Digest, Previous, PrevID, NewID and Phases as they are
	// now.
	Step(ctx context.Context, id int64, r Record) error
	// Finish records the outcome, error, end time and phase durations;
	// with settle, the deploy's accepted request is settled with the same
	// outcome, in the same transaction.
	Finish(ctx context.Context, id int64, r Record, settle bool) error
}

// attempt is one deploy in progress: what it knows, what it has touched,
// and its journal record.
type attempt struct {
	e   *Engine
	q   *queue
	ctx context.Context
	log zerolog.Logger
	cfg *deployments.Config // as it was when the deploy began
	d   *deployments.Deployment
	res Result
	rec Record // what the journal knows
	id  int64  // journal id; 0 without a journal

	name  string  // the deployment's container name
	rt    Runtime // the deployment's engine
	rtErr error   // why rt is nil: the engine was added after start-up

	// Filled in by the steps, in order.
	pullRepo string     // where the image comes from (a mirror, maybe)
	auth     Auth       // for pullRepo
	cur      *Container // what runs under name before the deploy, if anything
	curSvc   *Service   // a service: the service cur stands for
	ref      string     // pullRepo@digest
	spec     Spec       // the new container
	until    time.Time  // Deferred: when the image is old enough

	// What the swap has done, for the rollback.
	prev       *Container // the container being replaced, once the swap touches it
	stopped    bool       // prev's stop began: a rollback starts it again
	renamed    bool       // stop-first: prev's rename to the PrevSuffix name began: a rollback renames it back
	wasRunning bool
	newID      string
	newName    string // the new container's name while it proves itself
	published  bool   // start-first: the new container got its aliases
	// upstream and oldUpstream: with a proxy, the new container's address
	// once published, and the one the front door served before.
	upstream, oldUpstream string
	// unrepaired: the swap was left half done (the engine stopped
	// answering during the rollback or start-first's last step), or
	// liftoff stopped during a backup or release. The deploy stays
	// unfinished in the journal, so that reconcile finishes or undoes it
	// (and the push is deployed again) as it would after a crash.
	unrepaired bool

	// An app of several processes (processes.go).
	hold    bool         // a process's swap: stop after the gate (and publish); the app cleans up
	unitCur []*Container // what runs as each unit before the deploy, in Units order
	// units and unitEnv: each unit as this deploy runs it and its
	// environment, for an app whose processes name compose services
	// (each has its own); nil otherwise (every unit takes the app's).
	units      []deployments.Unit
	unitEnv    [][]string
	newPreview bool // a preview's first deploy: it tracked the preview (previews.go)
}

// run performs one deploy of q's deployment and records its outcome.
func (e *Engine) run(q *queue, r Request) Result {
	e.metrics.inProgress.Inc()
	defer e.metrics.inProgress.Dec()

	a := &attempt{e: e, q: q, ctx: e.ctx, cfg: e.opts.Config()}
	a.res = Result{Request: r, Started: e.opts.Now()}
	a.log = e.log.With().Str("deployment", r.Deployment).Str("tag", r.Tag).Str("delivery", r.Delivery).Logger()
	a.rec = Record{
		Deployment: r.Deployment, Image: r.Image, Tag: r.Tag, Digest: r.Digest,
		Trigger: r.Trigger, Delivery: r.Delivery, Pusher: r.Pusher, Actor: r.Actor, Request: r.ID, Started: a.res.Started,
		Reported: r.Reported,
		Phases:   map[string]time.Duration{},
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
	a.rt, a.rtErr = e.runtime(a.d)
	if j := e.opts.Journal; j != nil {
		id, err := j.Begin(a.ctx, a.rec)
		if err != nil {
			// Without a journal a crash mid-swap could not be repaired: do not start.
			a.finish(Failed, fmt.Errorf("journal: %w", err))
			return a.res
		}
		a.id, a.rec.ID = id, id
	}
	a.previewStarts()
	a.log.Info().Str("image", a.d.Image).Str("trigger", r.Trigger).Str("pusher", r.Pusher).Str("actor", r.Actor).
		Str("strategy", strategyOf(a.d)).Msg("deploy started")

	a.finish(a.deploy())
	if a.res.Outcome == Deferred {
		e.cool(r, a.until)
	}
	return a.res
}

// finish records the outcome: metrics, journal, log.
func (a *attempt) finish(o Outcome, err error) {
	e := a.e
	a.res.Outcome, a.res.Err, a.res.Ended = o, err, e.opts.Now()
	a.previewEnds(o)
	d := a.res.Ended.Sub(a.res.Started)
	e.metrics.deploys.WithLabelValues(a.res.Request.Deployment, a.res.Environment, string(o)).Inc()
	if o != Unchanged && o != Deferred {
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
		// A deferred push is not at its end: it waits (cool) and deploys later.
		if jerr := e.opts.Journal.Finish(ctx, a.id, a.rec, o != Deferred); jerr != nil {
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
		if o == Deferred { // not a failure: the push waits for its image to age
			ev = a.log.Info().Str("reason", err.Error())
		}
	}
	ev.Str("outcome", string(o)).Str("digest", a.res.Digest).Str("previous_digest", a.res.Previous).
		Dur("duration", d).Msg("deploy finished")
	if o == Succeeded {
		e.clearDown(a.res.Request.Deployment)
	}
	if o == Succeeded && a.d != nil && a.d.PreviewOf == "" { // a preview's series would outlive it
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

// journal writes that the deploy is about to take step, with what it knows
// now (digests, container ids).
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

func (a *attempt) stopTimeout() time.Duration { return a.d.StopTimeout + a.e.opts.OpTimeout }
