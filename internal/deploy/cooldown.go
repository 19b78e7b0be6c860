package deploy

import (
	"context"
	"fmt"
	"time"
)

// A cool-down (deployments[].min_image_age): a digest younger than the
// deployment's min_image_age does not deploy yet. The deploy that finds it
// so ends Deferred, without settling its request, which then waits as
// Cooling until the image is old enough; a timer moves it on as if it had
// just arrived (routeLocked: queued, held while paused), and the deploy
// then runs every step again, promote_from and the policy included. The
// wait is journaled (Coolings.Cool), so that Load re-arms the timer after
// a restart; a later push of the deployment replaces it, as the newest
// push always does.
//
// A deploy or rollback asked for through the API does not wait: someone
// chose that digest.

// ImageInfo is what the deploy reads of a pulled image's config besides
// its environment.
type ImageInfo struct {
	// Created is the image config's created time; zero where the config
	// has none, or the zero of reproducible builds (1970-01-01).
	Created time.Time
	Labels  map[string]string
}

// ImageInfos is what a cool-down needs of a runtime. Safe to repeat.
type ImageInfos interface {
	// ImageInfo returns the config of a pulled image (ref
	// "host/repo@sha256:..."); an image not pulled is ErrNotFound.
	ImageInfo(ctx context.Context, ref string) (ImageInfo, error)
}

// Coolings is what a cool-down needs of the journal.
type Coolings interface {
	// Cool records that open request id waits as Cooling until until.
	// Safe to repeat.
	Cool(ctx context.Context, id int64, until time.Time) error
	// FirstSeen returns when liftoff first began a deploy of the
	// deployment that knew digest (zero: never): the age of an image whose
	// config has no created time.
	FirstSeen(ctx context.Context, deployment, digest string) (time.Time, error)
}

// cooldown defers the deploy while the image is younger than the
// deployment's min_image_age. It runs after the pull: the image's config
// says when it was built, and the image is ready when the wait ends.
func (a *attempt) cooldown() (Outcome, error) {
	age := a.d.MinImageAge
	if age <= 0 || a.res.Request.Trigger == TriggerAPI {
		return "", nil
	}
	born, how, err := a.born()
	if err != nil {
		return Failed, fmt.Errorf("min_image_age: %w", err)
	}
	until := born.Add(age)
	now := a.e.opts.Now()
	if !now.Before(until) {
		return "", nil
	}
	a.until = until
	return Deferred, fmt.Errorf("min_image_age %s: the image was %s %s ago; it deploys at %s",
		age, how, now.Sub(born).Round(time.Second), until.UTC().Format(time.RFC3339))
}

// born tells how old the image is: its config's created time, else when
// liftoff first saw its digest (this deploy, if none before).
func (a *attempt) born() (time.Time, string, error) {
	if ii, ok := a.rt.(ImageInfos); ok {
		var info ImageInfo
		err := a.e.retry(a.ctx, a.log, StepPull, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, a.e.opts.OpTimeout)
			defer cancel()
			var err error
			info, err = ii.ImageInfo(ctx, a.ref)
			return err
		})
		if err != nil {
			return time.Time{}, "", fmt.Errorf("read the image's config: %w", err)
		}
		if !info.Created.IsZero() {
			return info.Created, "built", nil
		}
	}
	first := a.res.Started
	if j := a.e.opts.Journal; j != nil {
		var t time.Time
		err := a.e.retry(a.ctx, a.log, StepPull, func(ctx context.Context) error {
			var err error
			t, err = j.FirstSeen(ctx, a.d.Name, a.res.Digest)
			return err
		})
		if err != nil {
			return time.Time{}, "", fmt.Errorf("journal: %w", err)
		}
		if !t.IsZero() && t.Before(first) {
			first = t
		}
	}
	return first, "first seen (its config has no created time)", nil
}

// cool makes r, whose deploy was Deferred, wait as Cooling until until:
// journaled first, then armed. A push accepted for the deployment
// meanwhile, waiting behind the deploy, held or pending, is newer and
// replaces it, unless r was approved and that push still awaits a
// decision (replaces).
func (e *Engine) cool(r Request, until time.Time) {
	e.accept.Lock()
	defer e.accept.Unlock()
	e.mu.Lock()
	newer := false
	if q, ok := e.queues[r.Deployment]; ok && q.waiting != nil {
		newer = true
	}
	if h, ok := e.held[r.Deployment]; ok && h.ID > r.ID && h.replaces(r) {
		newer = true
	}
	if p, ok := e.pending[r.Deployment]; ok && p.ID > r.ID && p.replaces(r) {
		newer = true
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 10*time.Second)
	defer cancel()
	if newer {
		e.settleSuperseded(ctx, []Request{r})
		return
	}
	if j := e.opts.Journal; j != nil && r.ID != 0 {
		if err := j.Cool(ctx, r.ID, until); err != nil {
			// The request stays open as queued: the next start deploys
			// it again, and defers it again while it is too young.
			e.log.Error().Err(err).Str("deployment", r.Deployment).Str("delivery", r.Delivery).
				Msg("journal: could not record the cool-down; the push waits until the next start")
			return
		}
	}
	r.State, r.Until = Cooling, until
	e.mu.Lock()
	var superseded []Request
	if !e.closed {
		superseded = e.placeAllLocked(r)
	}
	e.mu.Unlock()
	e.settleSuperseded(ctx, superseded)
	e.log.Info().Str("deployment", r.Deployment).Str("tag", r.Tag).Str("delivery", r.Delivery).
		Time("until", until).Msg("push cooling down: its image is younger than min_image_age")
}

// placeAllLocked places r as placeLocked does, and replaces the
// deployment's cooling push, if any, where r replaces it: r is newer. It
// returns the requests replaced. e.mu is held.
func (e *Engine) placeAllLocked(r Request) []Request {
	var out []Request
	if c, ok := e.cooling[r.Deployment]; ok && !c.is(r) && r.replaces(c) {
		delete(e.cooling, r.Deployment)
		if t := e.ripen[r.Deployment]; t != nil {
			t.Stop()
			delete(e.ripen, r.Deployment)
		}
		out = append(out, c)
	}
	if old := e.placeLocked(r); old != nil {
		out = append(out, *old)
	}
	return out
}

// placeCoolingLocked makes r the deployment's cooling push, and arms its
// timer. e.mu is held.
func (e *Engine) placeCoolingLocked(r Request) (superseded *Request) {
	old, had := e.cooling[r.Deployment]
	e.cooling[r.Deployment] = r
	if t := e.ripen[r.Deployment]; t != nil {
		t.Stop()
	}
	e.ripen[r.Deployment] = time.AfterFunc(max(r.Until.Sub(e.opts.Now()), 0), func() { e.ripened(r) })
	if had && !old.is(r) {
		return &old
	}
	return nil
}

// replaces tells whether r, a newer push placed as r.State says, replaces
// c, a push cooling down (or about to). A push someone approved is
// replaced only by one that deploys without waiting for anyone: approved
// too, asked for through the API, or queued where no approval is needed.
// A held or pending push still awaits a decision, and a hook token's
// holder must not undo an approval by pushing: the approved push deploys
// once old enough (even while paused, as an approval given during a pause
// deploys), and the newer one waits as it would behind any deploy.
func (r Request) replaces(c Request) bool {
	return c.Actor == "" || r.Actor != "" || r.State == Queued
}

// is tells whether r and o are the same accepted request (without a
// journal, ids are 0: the delivery and the time tell them apart).
func (r Request) is(o Request) bool {
	return r.ID == o.ID && r.Delivery == o.Delivery && r.Received.Equal(o.Received)
}

// ripened moves a cooling push on once its image is old enough: where a
// push arriving now would go.
func (e *Engine) ripened(r Request) {
	e.accept.Lock()
	defer e.accept.Unlock()
	cfg := e.opts.Config()
	e.mu.Lock()
	cur, ok := e.cooling[r.Deployment]
	if !ok || !cur.is(r) || e.closed {
		e.mu.Unlock()
		return // replaced meanwhile, or closing: Load re-arms it at the next start
	}
	delete(e.cooling, r.Deployment)
	delete(e.ripen, r.Deployment)
	state := e.routeLocked(cfg, r)
	e.mu.Unlock()
	if state == Pending {
		_, timeout := cfg.Approval(cfg.Deployment(r.Deployment))
		r.Expires = e.opts.Now().Add(timeout)
	}
	r.Until = time.Time{}
	e.log.Info().Str("deployment", r.Deployment).Str("tag", r.Tag).Str("delivery", r.Delivery).
		Str("state", string(state)).Msg("push cooled down: its image is old enough")
	if err := e.move(context.WithoutCancel(e.ctx), r, state, ""); err != nil {
		e.log.Error().Err(err).Str("deployment", r.Deployment).Msg("journal: could not move the cooled push on; it deploys at the next start")
		return
	}
	if state == Pending && e.opts.OnPending != nil {
		e.opts.OnPending(r)
	}
}
