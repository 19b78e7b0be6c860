package daemon

import (
	"context"
	"slices"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/poll"
)

// SourcePoll is the source of the deliveries a poll makes, and the
// trigger of their deploy requests.
const SourcePoll = "poll"

// newPoller makes the poller of the deployments with poll (or a
// registry's poll_interval): it asks the registries through the local
// engine's client, which applies mirrors and credentials as a deploy's
// resolve does, and hands what it finds to deliverPoll.
func (a *Daemon) newPoller() *poll.Poller {
	return poll.New(poll.Options{
		Registry:   a.docker,
		Config:     a.cfg.Load,
		Deliver:    a.deliverPoll,
		Current:    a.currentDigests,
		Logger:     a.log.With().Str("component", "poll").Logger(),
		Registerer: a.registry,
	})
}

// deliverPoll takes a digest a poll found the way a webhook's push goes:
// the tag rules of the config in force, the engine's Enqueue (pause,
// approval, promote_from and the journal apply there), then the
// deliveries' history, with source "poll".
func (a *Daemon) deliverPoll(ctx context.Context, p poll.Push) error {
	id, received := deploy.NewDeliveryID(), time.Now()
	m := a.cfg.Load().Match(p.Repo, p.Tag)
	d := deploy.Delivery{ID: id, Source: SourcePoll, Image: p.Repo, Tag: p.Tag, Received: received,
		Ignored: slices.Clip(m.Ignored)}
	reqs := make([]deploy.Request, len(m.Accepted))
	for i, dep := range m.Accepted {
		reqs[i] = deploy.Request{Deployment: dep.Name, Image: p.Repo, Tag: p.Tag, Digest: p.Digest,
			Trigger: SourcePoll, Delivery: id, Received: received}
	}
	if len(reqs) > 0 {
		dispositions, err := a.engine.Enqueue(ctx, reqs...)
		if err != nil {
			return err // not recorded: the next poll delivers it again
		}
		d.Accepted, d.Ignored = sortDispositions(m.Accepted, dispositions, d.Ignored)
	}
	a.recordDelivery(d)
	return nil
}

// sortDispositions splits the accepted deployments into those queued and,
// with the reason, those held by a pause or pending approval.
func sortDispositions(deps []*deployments.Deployment, ds []deploy.Disposition, ignored []deployments.Ignored) ([]string, []deployments.Ignored) {
	var queued []string
	for i, dep := range deps {
		if why := ds[i].Why(dep.Environment); why != "" {
			ignored = append(ignored, deployments.Ignored{Deployment: dep.Name, Reason: why})
		} else {
			queued = append(queued, dep.Name)
		}
	}
	return queued, ignored
}

// currentDigests are the digest of the deployment's container (or
// service) and of its last successful deploy; poll.ErrBusy while a
// deploy of it runs or waits (a webhook's, say).
func (a *Daemon) currentDigests(ctx context.Context, deployment string) ([]string, error) {
	if a.engine.Busy(deployment) {
		return nil, poll.ErrBusy
	}
	var out []string
	c, err := a.engine.Running(ctx, deployment)
	if err != nil {
		return nil, err
	}
	if c != nil && c.Labels[deploy.LabelDigest] != "" {
		out = append(out, c.Labels[deploy.LabelDigest])
	}
	r, ok, err := a.history.LastSucceeded(ctx, deployment, "")
	if err != nil {
		return nil, err
	}
	if ok && r.Digest != "" {
		out = append(out, r.Digest)
	}
	return out, nil
}
