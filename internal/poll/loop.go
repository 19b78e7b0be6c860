package poll

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// maxBackoff caps the wait after failed polls, whatever the interval.
const maxBackoff = time.Hour

// backoffFactor caps the wait after failed polls at this many intervals.
const backoffFactor = 16

const resultOK = "ok"

// target is one poll: a repository and a rule, for the deployments that
// share them. Fields below the line are guarded by Poller.mu.
type target struct {
	key  string
	repo string // normalized: docker.io/acme/web
	host string // the registry, for the metrics' label
	rule imageref.TagRule

	cancel context.CancelFunc
	wake   chan struct{} // a replan changed every

	every       time.Duration
	deployments []string
	polled      time.Time
	result      string
	next        time.Time
	failures    int // in a row
}

// outcome is what one poll did; the values of liftoff_polls_total's label.
type outcome string

const (
	unchanged   outcome = "unchanged"    // nothing new (or no tag matches yet)
	found       outcome = "new"          // a new digest, delivered
	failed      outcome = "error"        // the registry, the look-up of what runs or the delivery failed
	rateLimited outcome = "rate_limited" // the registry answered 429
)

// loop polls t until ctx ends: its first poll a random part of an
// interval after the start, so that targets do not poll in step.
func (p *Poller) loop(ctx context.Context, t *target) {
	defer p.wg.Done()
	p.mu.Lock()
	next := p.o.Now().Add(p.o.Jitter(t.every))
	p.mu.Unlock()
	for {
		p.mu.Lock()
		t.next = next
		p.mu.Unlock()
		select {
		case <-p.o.After(next.Sub(p.o.Now())):
		case <-t.wake:
			p.mu.Lock()
			if t.failures == 0 && !t.polled.IsZero() {
				next = t.polled.Add(t.every)
			} else if d := p.o.Now().Add(t.every); d.Before(next) {
				next = d
			}
			p.mu.Unlock()
			continue
		case <-ctx.Done():
			return
		}
		next = p.pollOnce(ctx, t)
	}
}

// pollOnce polls t, counts and logs what happened, and returns when to
// poll next.
func (p *Poller) pollOnce(ctx context.Context, t *target) time.Time {
	start := p.o.Now()
	pctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	tag, o, err := p.check(pctx, t)
	cancel()
	if ctx.Err() != nil {
		return start // stopping: not counted
	}
	end := p.o.Now()
	p.m.duration.Observe(end.Sub(start).Seconds())
	p.m.polls.WithLabelValues(t.host, string(o)).Inc()

	p.mu.Lock()
	defer p.mu.Unlock()
	log := p.o.Logger.With().Str("image", t.repo).Str("rule", t.rule.String()).Logger()
	t.polled = end
	wait := t.every + p.o.Jitter(t.every/10)
	if err == nil {
		if t.failures > 0 {
			log.Info().Int("failures", t.failures).Msg("poll: the registry answers again")
		}
		t.failures, t.result = 0, resultOK
		for _, d := range t.deployments {
			p.m.lastSuccess.WithLabelValues(d).Set(float64(end.Unix()))
		}
		if o == found {
			log.Info().Str("tag", tag).Strs("deployments", t.deployments).Msg("poll: new digest delivered")
		}
		return end.Add(wait)
	}
	t.result = oneLine(err)
	if t.failures == 0 {
		log.Warn().Str("error", t.result).Msg("poll failed; retrying with backoff, logged again once it recovers")
	}
	t.failures++
	wait = backoff(t.every, t.failures)
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		// Never before the registry said (no jitter taken off), and never
		// later than the longest backoff: a Retry-After of a year, from the
		// registry or a proxy in front of it, would stop the poll.
		wait = max(wait, min(ra.RetryAfter(), max(maxBackoff, t.every)))
	}
	return end.Add(wait)
}

// backoff is the wait after the given number of failed polls in a row (1
// or more): the interval doubled at each, at most backoffFactor intervals
// and at most maxBackoff (or one interval, if that is longer). The shift
// stops where the factor does, so that it never overflows.
func backoff(every time.Duration, failures int) time.Duration {
	wait := every << min(failures-1, bits.Len(backoffFactor)-1)
	return min(wait, backoffFactor*every, max(maxBackoff, every))
}

// check asks the registry what t's rule points to now and delivers it if
// it is new.
func (p *Poller) check(ctx context.Context, t *target) (_ string, _ outcome, err error) {
	cfg := p.o.Config()
	pullRepo, cred, err := cfg.PullRepo(t.repo)
	if err != nil {
		return "", failed, err
	}
	auth := deploy.AuthOf(cred) // a helper's answer is cached: not one run per poll
	var listed map[string]bool
	tag, ok := t.rule.Exact()
	if !ok {
		tags, lerr := p.o.Registry.Tags(ctx, pullRepo, auth)
		if lerr != nil {
			return "", errOutcome(lerr), redact(lerr, auth)
		}
		tag, listed = p.pick(t, tags)
		// The listing counts as seen once its pick is delivered (or
		// found running): a failed poll leaves the new tag new.
		defer func() {
			if err == nil && listed != nil {
				p.mu.Lock()
				p.seen[t.key] = listed
				p.mu.Unlock()
			}
		}()
		if tag == "" {
			return "", unchanged, nil
		}
	}
	digest, err := p.o.Registry.Resolve(ctx, pullRepo+":"+tag, auth)
	if err != nil {
		return tag, errOutcome(err), redact(err, auth)
	}
	p.mu.Lock()
	known := p.delivered[t.key+":"+tag] == digest
	deps := t.deployments
	p.mu.Unlock()
	if known {
		return tag, unchanged, nil
	}
	isNew := false
	for _, d := range deps {
		cur, err := p.o.Current(ctx, d)
		if errors.Is(err, ErrBusy) {
			listed = nil // nothing recorded, the listing neither: the next poll decides
			return tag, unchanged, nil
		}
		if err != nil {
			return tag, failed, fmt.Errorf("what %s runs: %w", d, err)
		}
		if !slices.Contains(cur, digest) {
			isNew = true
			break
		}
	}
	if isNew {
		if err := p.o.Deliver(ctx, Push{Repo: t.repo, Tag: tag, Digest: digest}); err != nil {
			return tag, failed, fmt.Errorf("deliver %s:%s: %w", t.repo, tag, err)
		}
	}
	p.mu.Lock()
	p.delivered[t.key+":"+tag] = digest
	p.mu.Unlock()
	if isNew {
		return tag, found, nil
	}
	return tag, unchanged, nil
}

// pick chooses the tag a rule's poll deploys, of the repository's tags:
// the highest version for "semver:"; for "glob:" and "regexp:", a
// matching tag that was not in the previous listing (the greatest, as
// text, of those that appeared at once), and the matching tags listed now.
// The first listing of a target only learns the tags there are.
func (p *Poller) pick(t *target, tags []string) (string, map[string]bool) {
	if t.rule.Semver() {
		return t.rule.Highest(tags), nil
	}
	p.mu.Lock()
	prev, listed := p.seen[t.key]
	p.mu.Unlock()
	now := make(map[string]bool, len(prev))
	best := ""
	for _, tag := range tags {
		if !t.rule.Match(tag) {
			continue
		}
		now[tag] = true
		if listed && !prev[tag] && tag > best {
			best = tag
		}
	}
	return best, now
}

func errOutcome(err error) outcome {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return rateLimited
	}
	return failed
}

// redact keeps the registry password out of an error, whatever put it
// there.
func redact(err error, a deploy.Auth) error {
	if a.Password == "" || !strings.Contains(err.Error(), a.Password) {
		return err
	}
	return &redacted{err: err, msg: strings.ReplaceAll(err.Error(), a.Password, "xxxxx")}
}

type redacted struct {
	err error
	msg string
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// oneLine is err for Status: one line, at most 300 bytes.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}

// host is the registry of a normalized repository.
func host(repo string) string {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return ""
	}
	return reference.Domain(named)
}
