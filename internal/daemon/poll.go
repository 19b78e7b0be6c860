package daemon

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/poll"
	"github.com/liftoff-deploy/liftoff/internal/server"
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
	id, received := pollDeliveryID(), time.Now()
	m := a.cfg.Load().Match(p.Repo, p.Tag)
	d := server.Delivery{ID: id, Source: SourcePoll, Image: p.Repo, Tag: p.Tag, Received: received,
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
		switch ds[i] {
		case deploy.Held:
			ignored = append(ignored, deployments.Ignored{Deployment: dep.Name, Reason: "paused: the push is held and deploys when the deployment is resumed"})
		case deploy.Pending:
			ignored = append(ignored, deployments.Ignored{Deployment: dep.Name, Reason: "awaiting approval: deploys once someone with approve:" + dep.Environment + " approves it"})
		default:
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

// pollDeliveryID is a delivery id like a webhook's: 6 bytes of Unix
// milliseconds then 6 random ones, in hex, so that ids sort by time.
func pollDeliveryID() string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}
