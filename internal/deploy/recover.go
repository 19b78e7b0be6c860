package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

// maxAttempts is how many deploys of one request may be interrupted (by a
// crash, a SIGKILL, a shutdown) before Recover gives up on it: a request
// whose deploy kills liftoff every time must not do so forever.
const maxAttempts = 2

// Recover keeps the promise of every request Enqueue accepted: the newest
// open request of each deployment — one interrupted mid-deploy, or still
// waiting in the queue when liftoff died or stopped — is deployed again,
// once, with Trigger "resume" and its original delivery; the older ones
// are settled as superseded (latest wins, as in the queue). A request
// whose deploys were interrupted maxAttempts times is settled as failed
// and not retried. Requests already in a queue are left to it.
//
// Call it after Reconcile, so that the deploys start from a repaired
// state. Without a journal it does nothing. With engines, only the
// requests of deployments that run on one of them are resumed (Watch
// resumes those of each engine once it answers); the others stay open.
// Those of deployments no longer configured are settled whatever engines
// says.
func (e *Engine) Recover(ctx context.Context, engines ...string) error {
	j := e.opts.Journal
	if j == nil {
		return nil
	}
	e.accept.Lock()
	defer e.accept.Unlock()
	open, err := j.OpenRequests(ctx)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	byDeployment := map[string][]Request{}
	for _, r := range open {
		if r.State == Held || r.State == Pending || r.State == Cooling {
			continue // still held, awaiting approval or cooling down (see Load)
		}
		byDeployment[r.Deployment] = append(byDeployment[r.Deployment], r)
	}
	cfg := e.opts.Config()
	var errs []error
	settle := func(rs []Request, o Outcome, why string) {
		var ids []int64
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		if err := j.Settle(ctx, ids, o, why); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byDeployment)) {
		rs := byDeployment[name]
		newest, older := rs[len(rs)-1], rs[:len(rs)-1]
		if e.queued(newest.ID) {
			settle(older, Superseded, "a later push replaced it")
			continue
		}
		d := cfg.Deployment(name)
		if d != nil && len(engines) > 0 && !slices.Contains(engines, engineName(d)) {
			continue // its engine's Recover resumes it
		}
		log := e.log.With().Str("deployment", name).Str("tag", newest.Tag).Str("delivery", newest.Delivery).Logger()
		switch {
		case d == nil:
			log.Warn().Msg("resume: the deployment is no longer configured; its accepted push is dropped")
			settle(rs, Failed, "the deployment is no longer configured")
			continue
		case newest.Attempts >= maxAttempts:
			log.Error().Int("attempts", newest.Attempts).
				Msg("resume: this push's deploy was interrupted twice in a row; it is recorded failed and not retried: push again or deploy it by hand")
			e.metrics.deploys.WithLabelValues(name, d.Environment, string(Failed)).Inc()
			settle(rs, Failed, fmt.Sprintf("its deploy was interrupted %d times in a row; not retried", newest.Attempts))
			continue
		}
		if len(older) > 0 {
			e.settleSuperseded(ctx, older)
		}
		r := newest
		r.Trigger = TriggerResume
		log.Warn().Int("attempts", r.Attempts).Time("received", r.Received).
			Msg("resuming a push that was accepted but never deployed (liftoff stopped or died first)")
		r.State = Queued
		e.mu.Lock()
		// A push cooling down (Load put it back) is older: this one was
		// accepted after it, and replaces it. Anything waiting in the
		// queue cannot be: it was accepted later, so it is the newest;
		// it is settled all the same rather than lost.
		superseded := e.placeAllLocked(r)
		e.mu.Unlock()
		e.settleSuperseded(ctx, superseded)
	}
	if len(errs) > 0 {
		return fmt.Errorf("resume: %w", errs[0])
	}
	return nil
}

// queued tells whether the accepted request id runs or waits in a queue.
func (e *Engine) queued(id int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, q := range e.queues {
		if q.current.kind == jobDeploy && q.current.request.ID == id ||
			q.waiting != nil && q.waiting.request.ID == id {
			return true
		}
	}
	return false
}
