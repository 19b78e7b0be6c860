package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// The actions. The caller has checked the scope (Target); each acts
// through the engine, logs, and records a Delivery with source "api" and
// the actor.

// Deploy asks the engine to deploy tag or digest of d as actor, and
// returns the delivery that follows it.
func (s *Service) Deploy(ctx context.Context, d *deployments.Deployment, actor, tag, digest string) (string, error) {
	return s.enqueue(ctx, d, actor, tag, digest, Deploy)
}

// Rollback asks the engine to deploy again what deploy to deployed, or,
// with to 0, the newest succeeded deploy of d with another digest than the
// one running. It returns the deploy it goes back to and the delivery that
// follows it.
func (s *Service) Rollback(ctx context.Context, d *deployments.Deployment, actor string, to int64) (deploy.Record, string, error) {
	var rec deploy.Record
	if to != 0 {
		r, ok, err := s.history.Deploy(ctx, to)
		switch {
		case err != nil:
			return rec, "", err
		case !ok || r.Deployment != d.Name:
			return rec, "", fmt.Errorf("%w: deploy %d is not a deploy of %s", ErrConflict, to, d.Name)
		case r.Outcome != deploy.Succeeded || r.Digest == "":
			return rec, "", fmt.Errorf("%w: deploy %d did not succeed (%s): nothing known good to go back to", ErrConflict, to, outcomeText(r.Outcome))
		}
		rec = r
	} else {
		running := ""
		if c, err := s.engine.Running(ctx, d.Name); err != nil {
			return rec, "", fmt.Errorf("%w: container engine: %v", ErrUnavailable, err)
		} else if c != nil {
			running = c.Labels[deploy.LabelDigest]
		}
		r, ok, err := s.history.LastSucceeded(ctx, d.Name, running)
		if err != nil {
			return rec, "", err
		}
		if !ok {
			return rec, "", fmt.Errorf("%w: no earlier successful deploy of %s with another digest than the one running", ErrConflict, d.Name)
		}
		rec = r
	}
	id, err := s.enqueue(ctx, d, actor, rec.Tag, rec.Digest, Rollback)
	return rec, id, err
}

func (s *Service) enqueue(ctx context.Context, d *deployments.Deployment, actor, tag, digest string, action Action) (string, error) {
	id := deploy.NewDeliveryID()
	req := deploy.Request{Deployment: d.Name, Image: d.Image, Tag: tag, Digest: digest, Trigger: deploy.TriggerAPI,
		Delivery: id, Actor: actor, Received: s.now()}
	if _, err := s.engine.Enqueue(ctx, req); err != nil {
		if errors.Is(err, deploy.ErrClosed) {
			return "", ErrDraining
		}
		s.log.Error().Err(err).Str("delivery", id).Msg("api: the deploy could not be recorded")
		return "", ErrNotRecorded
	}
	s.log.Info().Str("delivery", id).Str("deployment", d.Name).Str("actor", actor).Str("action", string(action)).
		Str("tag", tag).Str("digest", digest).Msg("api: deploy asked for")
	s.record(deploy.Delivery{ID: id, Source: deploy.TriggerAPI, Image: d.Image, Tag: TagOr(tag, digest), Actor: actor,
		Received: req.Received, Accepted: []string{d.Name}})
	return id, nil
}

// Pause pauses d as actor.
func (s *Service) Pause(ctx context.Context, d *deployments.Deployment, actor string) error {
	err := s.engine.Pause(ctx, d.Name, actor)
	if errors.Is(err, deploy.ErrPaused) {
		return fmt.Errorf("%w: %s is paused already", ErrConflict, d.Name)
	}
	if err == nil {
		s.recordPause(d, actor, Pause)
	}
	return err
}

// Resume resumes d as actor, and returns the push it sent on (held
// meanwhile), if any.
func (s *Service) Resume(ctx context.Context, d *deployments.Deployment, actor string) (*deploy.Request, error) {
	held, err := s.engine.Unpause(ctx, d.Name, actor)
	if errors.Is(err, deploy.ErrNotPaused) {
		return nil, fmt.Errorf("%w: %s is not paused", ErrConflict, d.Name)
	}
	if err == nil {
		s.recordPause(d, actor, Resume)
	}
	return held, err
}

// recordPause logs and records a pause or a resume.
func (s *Service) recordPause(d *deployments.Deployment, actor string, action Action) {
	s.log.Info().Str("deployment", d.Name).Str("actor", actor).Str("action", string(action)).Msg("api: " + string(action))
	s.record(deploy.Delivery{ID: deploy.NewDeliveryID(), Source: deploy.TriggerAPI, Image: d.Image, Actor: actor, Received: s.now(),
		Ignored: []deployments.Ignored{{Deployment: d.Name, Reason: string(action)}}})
}

// Approve approves d's pending push as actor, if it is the one want names
// (its request id, and its digest if given), and returns the push: it
// deploys now, the digest shown while it was pending.
func (s *Service) Approve(ctx context.Context, d *deployments.Deployment, actor string, want deploy.Decision) (deploy.Request, error) {
	return s.decide(ctx, d, actor, Approve, want)
}

// Reject rejects d's pending push as actor, if it is the one want names,
// and returns the push.
func (s *Service) Reject(ctx context.Context, d *deployments.Deployment, actor string, want deploy.Decision) (deploy.Request, error) {
	return s.decide(ctx, d, actor, Reject, want)
}

func (s *Service) decide(ctx context.Context, d *deployments.Deployment, actor string, action Action, want deploy.Decision) (deploy.Request, error) {
	f := s.engine.Approve
	if action == Reject {
		f = s.engine.Reject
	}
	push, err := f(ctx, d.Name, actor, want)
	switch {
	case errors.Is(err, deploy.ErrNothingPending):
		return push, fmt.Errorf("%w: no push of %s awaits approval", ErrConflict, d.Name)
	case errors.Is(err, deploy.ErrNotThePending) && push.ID == want.Request:
		// The request is still the pending one; its digest is not the one
		// the caller looked at. What the caller sent is not echoed: the
		// page's form passes it on unchecked.
		s.log.Info().Str("deployment", d.Name).Str("actor", actor).Str("action", string(action)).Int64("request", push.ID).
			Str("digest", push.Digest).Msg("api: refused: not the digest awaiting approval")
		return push, fmt.Errorf("%w: request %d of %s is digest %s (tag %s), not the digest given; look at it, then %s it by its id and digest",
			ErrConflict, push.ID, d.Name, digestOrUnknown(push.Digest), push.Tag, action)
	case errors.Is(err, deploy.ErrNotThePending):
		s.log.Info().Str("deployment", d.Name).Str("actor", actor).Str("action", string(action)).Int64("asked", want.Request).
			Int64("request", push.ID).Msg("api: refused: not the push awaiting approval")
		return push, fmt.Errorf("%w: request %d is no longer the push of %s awaiting approval: request %d is (tag %s, digest %s); look at it, then %s it by its id",
			ErrConflict, want.Request, d.Name, push.ID, push.Tag, digestOrUnknown(push.Digest), action)
	case errors.Is(err, deploy.ErrUnresolved):
		return push, fmt.Errorf("%w: request %d of %s has no digest (its tag could not be resolved when it was pushed), so there is nothing bound to approve: reject it and push again, or deploy a digest",
			ErrConflict, push.ID, d.Name)
	case err != nil:
		return push, err
	}
	s.log.Info().Str("deployment", d.Name).Str("actor", actor).Str("action", string(action)).Int64("request", push.ID).
		Str("delivery", push.Delivery).Str("tag", push.Tag).Str("digest", push.Digest).Msg("api: " + string(action))
	rec := deploy.Delivery{ID: deploy.NewDeliveryID(), Source: deploy.TriggerAPI, Image: d.Image, Tag: TagOr(push.Tag, push.Digest),
		Actor: actor, Received: s.now()}
	if action == Approve {
		rec.Accepted = []string{d.Name}
	} else {
		rec.Ignored = []deployments.Ignored{{Deployment: d.Name, Reason: "rejected push of delivery " + push.Delivery}}
	}
	s.record(rec)
	return push, nil
}

func digestOrUnknown(d string) string {
	if d == "" {
		return "unknown"
	}
	return d
}

func outcomeText(o deploy.Outcome) string {
	if o == "" {
		return "still running"
	}
	return string(o)
}
