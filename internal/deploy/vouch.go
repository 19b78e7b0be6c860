package deploy

import (
	"context"
	"fmt"
)

// Two images, one commit: with promote_from {match: revision}, an image
// deploys only if an image with the same revision label succeeded in the
// deployment it promotes from (staging's dev.Dockerfile image vouching for
// production's Dockerfile image). Each deploy records the revision labels
// of its image (Record.Revisions: those the config's promotions read), so
// that a later deploy elsewhere can find it; the deploy that was vouched
// for records which one did (Record.VouchedBy, VouchedRevision).

// Revisions is what a revision match needs of the journal.
type Revisions interface {
	// Vouched returns the newest deploy of deployment that succeeded (or
	// found its image running: unchanged) with an image whose label
	// holds revision; false if none did.
	Vouched(ctx context.Context, deployment, label, revision string) (Record, bool, error)
}

// vouch reads the pulled image's revision labels into the record and,
// where promote_from matches by revision, refuses an image whose revision
// did not succeed in that deployment first. Nothing is stopped before it.
func (a *attempt) vouch() (Outcome, error) {
	p := a.d.PromoteFrom
	byRevision := p.Deployment != "" && p.ByRevision()
	ii, ok := a.rt.(ImageInfos)
	if !ok {
		if byRevision {
			return Refused, fmt.Errorf("promote_from %s: this engine cannot read image labels", p.Deployment)
		}
		return "", nil
	}
	var info ImageInfo
	err := a.e.retry(a.ctx, a.log, StepPull, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, a.e.opts.OpTimeout)
		defer cancel()
		var err error
		info, err = ii.ImageInfo(ctx, a.ref)
		return err
	})
	if err != nil {
		if byRevision {
			return Failed, fmt.Errorf("promote_from %s: read the image's labels: %w", p.Deployment, err)
		}
		a.log.Warn().Err(err).Msg("the image's labels could not be read: its revision is not recorded")
		return "", nil
	}
	for _, l := range a.cfg.RevisionLabels() {
		if v := info.Labels[l]; v != "" {
			if a.rec.Revisions == nil {
				a.rec.Revisions = map[string]string{}
			}
			a.rec.Revisions[l] = v
		}
	}
	if !byRevision {
		return "", nil
	}
	label := p.RevisionLabel()
	rev := info.Labels[label]
	if rev == "" {
		return Refused, fmt.Errorf("promote_from %s matches by revision, and the image has no %s label: build it (and %s's image) with "+
			"`docker build --label %s=$GIT_SHA`, or pass docker/metadata-action's labels output to docker/build-push-action's labels",
			p.Deployment, label, p.Deployment, label)
	}
	if a.e.opts.Journal == nil {
		return Refused, fmt.Errorf("promote_from %s: no history to tell what succeeded there", p.Deployment)
	}
	var (
		by    Record
		found bool
	)
	err = a.e.retry(a.ctx, a.log, StepPull, func(ctx context.Context) error {
		var err error
		by, found, err = a.e.opts.Journal.Vouched(ctx, p.Deployment, label, rev)
		return err
	})
	if err != nil {
		return Failed, fmt.Errorf("promote_from %s: journal: %w", p.Deployment, err)
	}
	if !found {
		return Refused, fmt.Errorf("promote_from %s: no image of revision %s (label %s) succeeded there; deploy that revision there first",
			p.Deployment, rev, label)
	}
	a.rec.VouchedBy, a.rec.VouchedRevision = by.ID, rev
	a.log.Info().Int64("vouched_by", by.ID).Str("vouched_by_deployment", by.Deployment).Str("vouched_by_digest", by.Digest).
		Str("revision", rev).Msg("promote_from: an image of the same revision succeeded there")
	return "", nil
}
