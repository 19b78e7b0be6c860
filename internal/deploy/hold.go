package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Pauses is what pausing and resuming need of the journal.
type Pauses interface {
	// Paused returns the deployments paused now.
	Paused(ctx context.Context) ([]Pause, error)
	// SetPaused pauses (p.Paused) or resumes a deployment.
	SetPaused(ctx context.Context, p Pause) error
}

// Errors of the API's actions on a deployment.
var (
	// ErrNothingPending: no push of the deployment awaits approval.
	ErrNothingPending = errors.New("no push awaits approval")
	// ErrNotThePending: the push awaiting approval is not the one the
	// approver named (another push replaced it, or its digest differs).
	ErrNotThePending = errors.New("the push awaiting approval is not the one named")
	// ErrUnresolved: the push awaiting approval has no digest (its tag
	// could not be resolved when it arrived), so there is nothing bound
	// to approve.
	ErrUnresolved = errors.New("the push awaiting approval has no digest: its tag could not be resolved when it arrived")
	// ErrNotPaused and ErrPaused: the deployment is not (is already)
	// paused.
	ErrNotPaused = errors.New("the deployment is not paused")
	ErrPaused    = errors.New("the deployment is paused already")
)

// Status is what the engine holds for a deployment besides its queue.
type Status struct {
	Paused  *Pause   // nil unless paused
	Held    *Request // the newest push held while paused
	Pending *Request // the push awaiting approval
	Cooling *Request // the push whose image is younger than min_image_age (Until: when it is old enough)
	Busy    bool     // a deploy (or repair) runs or waits
}

// Status tells whether a deployment is paused, and which pushes it holds.
func (e *Engine) Status(deployment string) Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s Status
	if p, ok := e.paused[deployment]; ok {
		s.Paused = &p
	}
	if r, ok := e.held[deployment]; ok {
		s.Held = &r
	}
	if r, ok := e.pending[deployment]; ok {
		s.Pending = &r
	}
	if r, ok := e.cooling[deployment]; ok {
		s.Cooling = &r
	}
	_, s.Busy = e.queues[deployment]
	return s
}

// Load reads from the journal what outlives a restart besides the
// requests Recover deploys: the paused deployments, their held pushes,
// the pushes awaiting approval (whose timeouts run on) and those cooling
// down (whose timers are re-armed); and it starts the
// metrics (seedMetrics). Call it once, before taking requests.
func (e *Engine) Load(ctx context.Context) error {
	e.seedMetrics(ctx)
	j := e.opts.Journal
	if j == nil {
		return nil
	}
	paused, err := j.Paused(ctx)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	open, err := j.OpenRequests(ctx)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	e.accept.Lock()
	defer e.accept.Unlock()
	e.mu.Lock()
	for _, p := range paused {
		e.paused[p.Deployment] = p
	}
	var superseded []Request
	for _, r := range open { // oldest first: the newest of each kind wins
		if r.State != Held && r.State != Pending && r.State != Cooling {
			continue
		}
		superseded = append(superseded, e.placeAllLocked(r)...)
	}
	e.mu.Unlock()
	e.settleSuperseded(ctx, superseded)
	return nil
}

// Pause holds the deployment's pushes until Unpause: they are recorded,
// and the newest deploys then. A deploy running goes on; a push waiting
// behind it is held too. Deploys and rollbacks asked for through the API
// (with an Actor) still go through.
func (e *Engine) Pause(ctx context.Context, deployment, actor string) error {
	e.accept.Lock()
	defer e.accept.Unlock()
	e.mu.Lock()
	_, already := e.paused[deployment]
	e.mu.Unlock()
	if already {
		return ErrPaused
	}
	p := Pause{Deployment: deployment, Paused: true, Actor: actor, Since: e.opts.Now()}
	if j := e.opts.Journal; j != nil {
		if err := j.SetPaused(ctx, p); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	e.mu.Lock()
	e.paused[deployment] = p
	var waiting *Request
	if q, ok := e.queues[deployment]; ok && q.waiting != nil && q.waiting.request.Actor == "" {
		r := q.waiting.request
		waiting = &r
		q.waiting = nil
		e.metrics.queueDepth.Dec()
	}
	e.mu.Unlock()
	e.log.Info().Str("deployment", deployment).Str("actor", actor).Msg("deployment paused: pushes are held until it is resumed")
	if waiting != nil {
		return e.move(ctx, *waiting, Held, "")
	}
	return nil
}

// Unpause ends a pause. The newest push held meanwhile goes on as if it
// had just arrived (it may need approval); it is returned, if any, with
// where it went.
func (e *Engine) Unpause(ctx context.Context, deployment, actor string) (*Request, error) {
	e.accept.Lock()
	defer e.accept.Unlock()
	e.mu.Lock()
	_, paused := e.paused[deployment]
	e.mu.Unlock()
	if !paused {
		return nil, ErrNotPaused
	}
	if j := e.opts.Journal; j != nil {
		if err := j.SetPaused(ctx, Pause{Deployment: deployment, Actor: actor, Since: e.opts.Now()}); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
	cfg := e.opts.Config()
	e.mu.Lock()
	delete(e.paused, deployment)
	held, had := e.held[deployment]
	delete(e.held, deployment)
	var state Disposition
	if had {
		state = e.routeLocked(cfg, held)
	}
	e.mu.Unlock()
	e.log.Info().Str("deployment", deployment).Str("actor", actor).Msg("deployment resumed")
	if !had {
		return nil, nil
	}
	if state == Pending {
		_, timeout := cfg.Approval(cfg.Deployment(deployment))
		held.Expires = e.opts.Now().Add(timeout)
	}
	held.State = state
	if err := e.move(ctx, held, state, ""); err != nil {
		return &held, err
	}
	if state == Pending && e.opts.OnPending != nil {
		e.opts.OnPending(held)
	}
	return &held, nil
}

// Decision names the push an approver approves or rejects: the pending
// request's ID, as Status showed it, and optionally its Digest. An
// approval or a rejection applies only while that request is the one
// pending, so that a push that replaced it seconds before is not what
// gets decided.
type Decision struct {
	Request int64
	Digest  string // "" accepts the pending request's digest
}

// Approve deploys the push awaiting approval, if it is the one want
// names; actor is recorded as who approved it. It deploys the digest
// resolved when the push arrived, whatever the tag points to now. It
// returns the push; ErrNothingPending, ErrNotThePending (with the
// pending push) or ErrUnresolved when nothing was approved.
func (e *Engine) Approve(ctx context.Context, deployment, actor string, want Decision) (Request, error) {
	e.accept.Lock()
	defer e.accept.Unlock()
	r, err := e.takePending(deployment, want, true)
	if err != nil {
		return r, err
	}
	r.Actor = actor
	e.log.Info().Str("deployment", deployment).Str("tag", r.Tag).Str("digest", r.Digest).Int64("request", r.ID).
		Str("delivery", r.Delivery).Str("actor", actor).Msg("push approved")
	return r, e.move(ctx, r, Queued, actor)
}

// Reject drops the push awaiting approval, if it is the one want names,
// recorded with outcome rejected. Errors as Approve's, but a push without
// a digest can be rejected.
func (e *Engine) Reject(ctx context.Context, deployment, actor string, want Decision) (Request, error) {
	e.accept.Lock()
	defer e.accept.Unlock()
	r, err := e.takePending(deployment, want, false)
	if err != nil {
		return r, err
	}
	e.settleDropped(ctx, r, Rejected, actor, fmt.Sprintf("rejected by %s", actor))
	return r, nil
}

// takePending removes and returns the deployment's pending push if it is
// the one want names (and, to approve it, has a digest); otherwise it
// leaves it and returns it with why.
func (e *Engine) takePending(deployment string, want Decision, approve bool) (Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.pending[deployment]
	switch {
	case !ok:
		return Request{}, ErrNothingPending
	case r.ID != want.Request || (want.Digest != "" && want.Digest != r.Digest):
		return r, ErrNotThePending
	case approve && r.Digest == "":
		return r, ErrUnresolved
	}
	delete(e.pending, deployment)
	if t := e.expiry[deployment]; t != nil {
		t.Stop()
		delete(e.expiry, deployment)
	}
	return r, nil
}

// armExpiryLocked makes the pending push r expire at r.Expires. e.mu is
// held.
func (e *Engine) armExpiryLocked(r Request) {
	if t := e.expiry[r.Deployment]; t != nil {
		t.Stop()
	}
	e.expiry[r.Deployment] = time.AfterFunc(max(r.Expires.Sub(e.opts.Now()), 0), func() { e.expire(r) })
}

// expire closes a pending push nobody approved in time.
func (e *Engine) expire(r Request) {
	e.accept.Lock()
	defer e.accept.Unlock()
	e.mu.Lock()
	cur, ok := e.pending[r.Deployment]
	e.mu.Unlock()
	if !ok || cur.ID != r.ID || cur.Delivery != r.Delivery {
		return // approved, rejected or replaced meanwhile
	}
	// Recorded first: Status shows the push pending until it is expired
	// everywhere. (e.accept keeps Approve and Reject out meanwhile.)
	e.settleDropped(context.Background(), r, Expired, "", fmt.Sprintf("not approved within %s", r.Expires.Sub(r.Received).Round(time.Second)))
	e.mu.Lock()
	delete(e.pending, r.Deployment)
	delete(e.expiry, r.Deployment)
	e.mu.Unlock()
}

// move records that an accepted request now waits as state, and puts it
// there.
func (e *Engine) move(ctx context.Context, r Request, state Disposition, actor string) error {
	if j := e.opts.Journal; j != nil && r.ID != 0 {
		if err := j.Move(ctx, r.ID, state, actor); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	r.State = state
	e.mu.Lock()
	superseded := e.placeAllLocked(r)
	e.mu.Unlock()
	e.settleSuperseded(ctx, superseded)
	return nil
}

// settleDropped settles an accepted request that will not deploy (superseded,
// expired, rejected): it is counted, logged and journaled with outcome o,
// and who decided (actor, "" for a timeout or a later push).
func (e *Engine) settleDropped(ctx context.Context, r Request, o Outcome, actor, why string) {
	env := ""
	if d := e.opts.Config().Deployment(r.Deployment); d != nil {
		env = d.Environment
	}
	e.metrics.deploys.WithLabelValues(r.Deployment, env, string(o)).Inc()
	e.log.Info().Str("deployment", r.Deployment).Str("tag", r.Tag).Str("delivery", r.Delivery).
		Str("outcome", string(o)).Str("reason", why).Msg("push dropped: it will not deploy")
	if e.opts.OnDropped != nil {
		res := Result{Request: r, Environment: env, Outcome: o, Digest: r.Digest, Err: errors.New(why),
			Started: r.Received, Ended: e.opts.Now()}
		if actor != "" {
			res.Request.Actor = actor
		}
		defer e.opts.OnDropped(res) // once journaled, as OnDone
	}
	j := e.opts.Journal
	if j == nil || r.ID == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// In the history as a deploy that ended before it began, so that the
	// push's fate shows beside the deploys; Finish settles the request.
	now := e.opts.Now()
	rec := Record{Deployment: r.Deployment, Environment: env, Image: r.Image, Tag: r.Tag, Digest: r.Digest,
		Trigger: r.Trigger, Delivery: r.Delivery, Pusher: r.Pusher, Actor: actor, Request: r.ID, Started: now}
	id, err := j.Begin(ctx, rec)
	if err == nil {
		rec.Outcome, rec.Error, rec.Ended = o, why, now
		err = j.Finish(ctx, id, rec, true)
	}
	if err != nil {
		e.log.Error().Err(err).Msg("journal: could not record the dropped push")
		j.Settle(ctx, []int64{r.ID}, o, why) // the promise ends all the same
	}
}
