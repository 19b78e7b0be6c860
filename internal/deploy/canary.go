package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// A canary release (deployments[].proxy.canary): once the new container
// of a proxied deployment has passed its gate, the front door sends it a
// share of the clients, step by step, beside the old container, and each
// step is judged by what the front door measured of both containers in
// the step's window. Every step passed (or a promote through the API):
// the usual switch and cleanup (proxySwap). A step that fails (or an
// abort through the API): the split ends, the new container's requests in
// flight finish, and the deploy rolls back (the new container is removed,
// the old one never stopped serving).
//
// Each step is journaled (StepCanary) before it is taken. liftoff killed
// during a canary restarts with its front door sending everything to the
// old container (a new process has no split); reconcile finds the
// journal at step canary, before the switch, so it keeps the old container
// and removes the new one (rolled_back, "interrupted at step canary"),
// and the accepted push is deployed again: the canary starts over from its
// first step.

// ErrNoCanary is returned by PromoteCanary and AbortCanary for a
// deployment without a canary in progress.
var ErrNoCanary = errors.New("no canary in progress")

// CanaryDoor is what a canary needs of the front door, beside FrontDoor;
// the daemon's adapter of the proxy implements it. A FrontDoor without it
// runs no canary: the deploy switches at once.
type CanaryDoor interface {
	// Canary sends weight percent (0 to 100) of the deployment's clients
	// to upstream beside its current one, each client sticking to its
	// side; upstream "" ends the split. Safe to repeat.
	Canary(deployment, upstream string, weight int) error
	// CanaryFigures returns what the front door counted, since each became
	// one, of the deployment's current upstream and of its canary.
	CanaryFigures(deployment string) (current, canary Figures)
}

// Figures are a front door's counts of one upstream's requests: answered,
// answered 5xx (those it could not reach the container for included),
// those it could not reach the container for, and a latency histogram
// (Buckets[i] counts those at most Bounds[i], the last those above).
type Figures struct {
	Requests    int64
	ServerError int64
	ConnErrors  int64
	Buckets     []int64
	Bounds      []time.Duration
}

// Sub returns what f counted since then, an earlier Figures of the same
// upstream.
func (f Figures) Sub(then Figures) Figures {
	d := Figures{Requests: f.Requests - then.Requests, ServerError: f.ServerError - then.ServerError,
		ConnErrors: f.ConnErrors - then.ConnErrors, Buckets: slices.Clone(f.Buckets), Bounds: f.Bounds}
	for i := range d.Buckets {
		if i < len(then.Buckets) {
			d.Buckets[i] -= then.Buckets[i]
		}
	}
	return d
}

// ErrorRate is the share of the requests answered 5xx.
func (f Figures) ErrorRate() float64 {
	if f.Requests <= 0 {
		return 0
	}
	return float64(f.ServerError) / float64(f.Requests)
}

// P99 is the upper bound of the latency bucket that holds the 99th
// percentile (0 without requests; the largest bound above every bound).
func (f Figures) P99() time.Duration {
	var n int64
	for _, c := range f.Buckets {
		n += c
	}
	if n == 0 || len(f.Bounds) == 0 {
		return 0
	}
	rank := (99*n + 99) / 100 // ceil(0.99 n)
	var seen int64
	for i, c := range f.Buckets {
		seen += c
		if seen >= rank && i < len(f.Bounds) {
			return f.Bounds[i]
		}
	}
	return f.Bounds[len(f.Bounds)-1]
}

// Window is one side's figures in a canary step so far, as the API shows
// them.
type Window struct {
	Requests   int64
	Errors     int64 // answered 5xx, ConnErrors included
	ConnErrors int64
	ErrorRate  float64
	P99        time.Duration
}

func windowOf(f Figures) Window {
	return Window{Requests: f.Requests, Errors: f.ServerError, ConnErrors: f.ConnErrors, ErrorRate: f.ErrorRate(), P99: f.P99()}
}

// CanaryStatus is a canary in progress.
type CanaryStatus struct {
	Deployment string
	Delivery   string // of the deploy the canary is part of
	Tag        string
	Digest     string
	Previous   string // digest of the old container
	Steps      []int  // the weights, in percent
	Step       int    // index in Steps of the step in progress
	Weight     int
	Started    time.Time // the canary's first step
	StepSince  time.Time // the step in progress
	// Old and New are both sides' figures in the step's window so far.
	Old, New Window
}

// canaryRun is a canary in progress: what the API reads and the
// promote or abort it may ask for.
type canaryRun struct {
	deployment string
	done       chan struct{} // closed when the canary ends
	ask        chan canaryAsk
	status     func() CanaryStatus
}

type canaryAsk struct {
	promote bool
	actor   string
}

// CanaryEvent is a canary's start or end, for notifications: Kind is
// "canary_started", "canary_promoted" or "canary_aborted"; Why says why it
// was promoted or aborted (the figures of the step that failed, or who
// asked).
type CanaryEvent struct {
	Kind   string
	Status CanaryStatus
	Why    string
	Actor  string
}

// Canary event kinds.
const (
	CanaryStarted  = deployments.EventCanaryStarted
	CanaryPromoted = deployments.EventCanaryPromoted
	CanaryAborted  = deployments.EventCanaryAborted
)

// Canary returns the deployment's canary in progress, with its live
// figures, or false.
func (e *Engine) Canary(deployment string) (CanaryStatus, bool) {
	v, ok := e.canaries.Load(deployment)
	if !ok {
		return CanaryStatus{}, false
	}
	return v.(*canaryRun).status(), true
}

// PromoteCanary ends the deployment's canary in progress as if its every
// step had passed: the new container gets all traffic. ErrNoCanary if none
// runs.
func (e *Engine) PromoteCanary(ctx context.Context, deployment, actor string) error {
	return e.askCanary(ctx, deployment, canaryAsk{promote: true, actor: actor})
}

// AbortCanary ends the deployment's canary in progress: all traffic back
// to the old container, the new one removed, the deploy rolled_back.
// ErrNoCanary if none runs.
func (e *Engine) AbortCanary(ctx context.Context, deployment, actor string) error {
	return e.askCanary(ctx, deployment, canaryAsk{actor: actor})
}

func (e *Engine) askCanary(ctx context.Context, deployment string, ask canaryAsk) error {
	v, ok := e.canaries.Load(deployment)
	if !ok {
		return fmt.Errorf("%s: %w", deployment, ErrNoCanary)
	}
	run := v.(*canaryRun)
	select {
	case run.ask <- ask:
		return nil
	case <-run.done:
		return fmt.Errorf("%s: %w (it just ended)", deployment, ErrNoCanary)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// canaryPoll is how often a step that lacks min_requests looks again.
const canaryPoll = 250 * time.Millisecond

// canary runs the canary of a proxied deployment whose new container
// passed its gate beside the old one. It returns done false when the new
// container is to get all traffic (every step passed, or promoted);
// otherwise the outcome and error the deploy ends with, the rollback
// done. Without a canary, a running old container, or a front door that
// can split, it returns done false at once: a first deploy has nothing to
// be judged against.
func (a *attempt) canary() (done bool, o Outcome, err error) {
	d := a.d
	k := d.Proxy.Canary
	door, ok := a.e.opts.FrontDoor.(CanaryDoor)
	if k == nil || !ok || a.cur == nil || !a.cur.Running || len(k.Steps) == 0 {
		return false, "", nil
	}
	ictx, cancel := context.WithTimeout(a.ctx, a.e.opts.OpTimeout)
	c, err := a.rt.Inspect(ictx, a.newID)
	cancel()
	var upstream string
	if err == nil {
		upstream, err = upstreamOf(d, &c)
	}
	if err != nil {
		o, err := a.rollback(fmt.Errorf("canary: %w", err))
		return true, o, err
	}
	if err := a.serveOld(); err != nil {
		// An old container the front door cannot reach (created before
		// the deployment had a proxy) has no figures to compare with:
		// the switch replaces it, as without a canary.
		a.log.Warn().Err(err).Msg("canary skipped: the front door cannot reach the previous container")
		return false, "", nil
	}
	run := &canaryRun{deployment: d.Name, done: make(chan struct{}), ask: make(chan canaryAsk)}
	started := time.Now()
	// The first step's weight from the start, so that canary_started
	// tells the share the new container is about to get.
	st := CanaryStatus{Deployment: d.Name, Delivery: a.res.Request.Delivery, Tag: a.res.Request.Tag, Digest: a.res.Digest, Previous: a.res.Previous,
		Steps: slices.Clone(k.Steps), Weight: k.Steps[0], Started: started}
	var stepOld, stepNew Figures // both sides' figures when the step began
	var mu sync.Mutex
	run.status = func() CanaryStatus {
		mu.Lock()
		s, o0, n0 := st, stepOld, stepNew
		mu.Unlock()
		cur, can := door.CanaryFigures(d.Name)
		s.Old = windowOf(cur.Sub(o0))
		if can.Requests >= n0.Requests { // else the split just ended
			s.New = windowOf(can.Sub(n0))
		}
		return s
	}
	// The run is shown (and may be promoted or aborted) from its first
	// step's split on: before it, a step shown at its weight would have
	// figures missing the requests the old container served meanwhile.
	defer func() {
		a.e.canaries.Delete(d.Name)
		close(run.done)
	}()
	a.e.canaryEvent(CanaryEvent{Kind: CanaryStarted, Status: st})
	log := a.log.With().Str("upstream", upstream).Ints("steps", k.Steps).Logger()
	log.Info().Msg("canary: the new container passed its gate and takes a share of the requests")

	// abort ends the split, lets the new container's requests finish and
	// rolls back.
	abort := func(why error, actor string) (bool, Outcome, error) {
		last := run.status() // the step's figures, while the split still has them
		if err := door.Canary(d.Name, "", 0); err != nil {
			log.Warn().Err(err).Msg("canary: ending the split")
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), d.Proxy.DrainTimeout)
		if err := a.e.front.fd.Drain(dctx, d.Name, upstream); err != nil {
			log.Warn().Err(err).Msg("canary: the new container still has requests in flight at drain_timeout; removing it")
		}
		cancel()
		a.e.canaryEvent(CanaryEvent{Kind: CanaryAborted, Status: last, Why: why.Error(), Actor: actor})
		log.Warn().Err(why).Msg("canary aborted: all traffic back to the previous container")
		o, err := a.rollback(why)
		return true, o, err
	}

	for i, weight := range k.Steps {
		if err := a.journal(a.ctx, StepCanary); err != nil {
			return abort(err, "")
		}
		if a.e.opts.BeforeStep != nil {
			a.e.opts.BeforeStep(a.rec.Deployment, StepCanary)
		}
		stepStart := time.Now()
		if err := door.Canary(d.Name, upstream, weight); err != nil {
			return abort(fmt.Errorf("canary step %d (%d%%): %w", i+1, weight, err), "")
		}
		o0, n0 := door.CanaryFigures(d.Name)
		mu.Lock()
		st.Step, st.Weight, st.StepSince = i, weight, stepStart
		stepOld, stepNew = o0, n0
		mu.Unlock()
		if i == 0 {
			a.e.canaries.Store(d.Name, run)
		}
		log.Info().Int("step", i+1).Int("weight", weight).Msg("canary step")

		// Wait out the step, then for min_requests up to max_wait.
		timer := time.NewTimer(k.StepInterval)
		var verdict error
	wait:
		for {
			select {
			case <-a.ctx.Done():
				timer.Stop()
				// Shut down: like a crash, the restart's reconcile keeps
				// the old container and the push is deployed again.
				if err := door.Canary(d.Name, "", 0); err != nil {
					log.Warn().Err(err).Msg("canary: ending the split")
				}
				a.unrepaired = true
				return true, Failed, fmt.Errorf("canary step %d: %w", i+1, a.ctx.Err())
			case ask := <-run.ask:
				timer.Stop()
				if ask.promote {
					a.e.canaryEvent(CanaryEvent{Kind: CanaryPromoted, Status: run.status(), Why: "promoted by " + ask.actor, Actor: ask.actor})
					log.Info().Str("actor", ask.actor).Msg("canary promoted through the API")
					a.observeCanary(stepStart)
					return false, "", nil
				}
				a.observeCanary(stepStart)
				return abort(fmt.Errorf("canary aborted by %s at step %d (%d%%)", ask.actor, i+1, weight), ask.actor)
			case <-timer.C:
				cur, can := door.CanaryFigures(d.Name)
				oldW, newW := cur.Sub(o0), can.Sub(n0)
				if newW.Requests < int64(k.MinRequests) && time.Since(stepStart) < k.MaxWait {
					timer.Reset(canaryPoll)
					continue
				}
				verdict = judge(k, i, weight, oldW, newW)
				if verdict == nil && newW.Requests < int64(k.MinRequests) {
					log.Warn().Int64("requests", newW.Requests).Int("min_requests", k.MinRequests).Dur("max_wait", k.MaxWait).
						Msg("canary: the step got fewer requests than min_requests within max_wait; judged on what it got")
				}
				break wait
			}
		}
		a.observeCanary(stepStart)
		if verdict != nil {
			return abort(verdict, "")
		}
	}
	a.e.canaryEvent(CanaryEvent{Kind: CanaryPromoted, Status: run.status(), Why: "every step passed"})
	log.Info().Msg("canary: every step passed; the new container gets all traffic")
	return false, "", nil
}

// serveOld makes sure the front door serves the old container, the
// canary's other side: a deploy that started before the start-up's repair
// got to the deployment (a push that came at once) finds it serving
// nothing yet, its requests waiting.
func (a *attempt) serveOld() error {
	f := a.e.front
	f.mu.Lock()
	s, ok := f.served[a.d.Name]
	f.mu.Unlock()
	if ok && s.id == a.cur.ID {
		return nil
	}
	_, err := a.e.serve(a.d, a.cur)
	return err
}

// endCanary ends the split of a promoted canary, once the front door sends
// everything to the new container: no client flips back meanwhile.
func (a *attempt) endCanary() {
	if door, ok := a.e.opts.FrontDoor.(CanaryDoor); ok && a.d.Proxy.Canary != nil && a.cur != nil && a.cur.Running {
		if err := door.Canary(a.d.Name, "", 0); err != nil {
			a.log.Warn().Err(err).Msg("canary: ending the split")
		}
	}
}

func (a *attempt) observeCanary(start time.Time) {
	took := time.Since(start)
	a.rec.Phases[StepCanary] += took
	a.e.metrics.phase.WithLabelValues(StepCanary).Observe(took.Seconds())
}

// judge says why a step fails, nil if it passes: the new side answered
// more 5xx than max_error_rate allows and than the old side did in the
// same window, or its p99 is above max_p99 and above the old side's.
// Comparing with the old side keeps a canary from being blamed for what
// fails on both (a database that is down).
func judge(k *deployments.Canary, i, weight int, old, cur Figures) error {
	figures := fmt.Sprintf("new: %d of %d requests answered 5xx (%.2f%%), %d unreachable, p99 %s; old: %d of %d (%.2f%%), %d unreachable, p99 %s",
		cur.ServerError, cur.Requests, 100*cur.ErrorRate(), cur.ConnErrors, cur.P99(),
		old.ServerError, old.Requests, 100*old.ErrorRate(), old.ConnErrors, old.P99())
	var why []string
	if r := cur.ErrorRate(); r > k.ErrorRate && r > old.ErrorRate() {
		why = append(why, fmt.Sprintf("error rate %.2f%% above max_error_rate %s", 100*r, k.MaxErrorRate))
	}
	if p := cur.P99(); k.MaxP99 > 0 && p > k.MaxP99 && p > old.P99() {
		why = append(why, fmt.Sprintf("p99 %s above max_p99 %s", p, k.MaxP99))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("canary step %d (%d%%) failed: %s (%s)", i+1, weight, joinWhy(why), figures)
}

func joinWhy(why []string) string {
	s := why[0]
	for _, w := range why[1:] {
		s += " and " + w
	}
	return s
}

// canaryEvent tells Options.OnCanary, if set.
func (e *Engine) canaryEvent(ev CanaryEvent) {
	if e.opts.OnCanary != nil {
		e.opts.OnCanary(ev)
	}
}
