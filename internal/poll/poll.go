// Package poll asks registries for new digests of the deployments' tags,
// for a host no webhook can reach, and as a safety net for the webhooks
// that never arrive.
//
// One poll runs per registry, repository and tag rule, however many
// deployments share it, every smallest interval of theirs. An exact tag is
// resolved with a manifest HEAD (which Docker Hub does not count as a
// pull); a rule lists the repository's tags and takes, for "semver:", the
// highest version it allows and, for "glob:" and "regexp:", the newest
// matching tag, newest meaning first seen in the listing by this poller.
// A digest found new goes to Deliver, the path a webhook takes.
//
// It knows nothing of Docker or HTTP: the registry is a small interface,
// implemented by internal/docker's Client.
package poll

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Registry is what a poll asks. Both calls may return an error with a
// RetryAfter() time.Duration method (a 429), honoured before the next ask;
// deploy.ErrNotFound for an unknown tag or repository.
type Registry interface {
	// Resolve returns the digest ref ("host/name:tag") points to, with a
	// HEAD request.
	Resolve(ctx context.Context, ref string, auth deploy.Auth) (string, error)
	// Tags lists the tags of repo ("host/name"), every page of them.
	Tags(ctx context.Context, repo string, auth deploy.Auth) ([]string, error)
}

// Push is a digest a poll found under a tag: what a webhook would have
// delivered. Repo is the normalized repository (docker.io/acme/web).
type Push struct {
	Repo, Tag, Digest string
}

// Deliver hands a push to the path webhooks take (match, enqueue,
// record); an error makes the next poll deliver it again.
type Deliver func(ctx context.Context, p Push) error

// Current returns the digests the deployment runs and last deployed
// successfully (none for a deployment never deployed): a poll that finds
// one of them delivers nothing, so that a restart does not redeploy what
// runs.
type Current func(ctx context.Context, deployment string) ([]string, error)

// ErrBusy is what Current returns for a deployment with a deploy running
// or queued: the poll decides at its next interval, so that a webhook's
// deploy in flight is neither delivered again nor counted as missed.
var ErrBusy = errors.New("a deploy runs or waits")

// Options are what New needs; Registry, Config, Deliver and Current are
// required.
type Options struct {
	Registry   Registry
	Config     func() *deployments.Config
	Deliver    Deliver
	Current    Current
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	// Now and After are the clock (default: the time package's).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Jitter returns a duration in [0, max): the first poll of each
	// target is that far into its interval, and each next one that much
	// after it, at most a tenth of the interval (default: random).
	Jitter func(max time.Duration) time.Duration
	// Timeout bounds one poll (default 30s).
	Timeout time.Duration
}

// Status is what a deployment's polls did last, for the API and the page.
type Status struct {
	Polled time.Time // when the last poll ended (zero: not yet)
	Result string    // "ok", or the last error in one line
	Next   time.Time // when the next poll is due
}

// Poller runs the polls of the config in force. Run starts them; Replan
// follows a reloaded config.
type Poller struct {
	o Options
	m *metrics

	mu        sync.Mutex
	ctx       context.Context // Run's; nil before it
	wg        sync.WaitGroup
	targets   map[string]*target // by key
	delivered map[string]string  // key+tag → digest last delivered or found running; survives replans
	seen      map[string]map[string]bool
	polled    map[string]bool // deployments with a last-success series
}

// New makes a poller; it polls once Run is called.
func New(o Options) *Poller {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Jitter == nil {
		o.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	return &Poller{o: o, m: newMetrics(o.Registerer), targets: map[string]*target{},
		delivered: map[string]string{}, seen: map[string]map[string]bool{}, polled: map[string]bool{}}
}

// Run polls until ctx ends, then waits for the polls in flight.
func (p *Poller) Run(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
	p.Replan()
	<-ctx.Done()
	p.wg.Wait()
}

// Replan follows the config in force: polls start for new deployments,
// stop for removed ones, and take a changed interval from their next
// poll on. What was seen and delivered is kept. Before Run it does
// nothing (Run plans).
func (p *Poller) Replan() {
	want := plan(p.o.Config())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil || p.ctx.Err() != nil {
		return
	}
	for key, t := range p.targets {
		if _, ok := want[key]; !ok {
			t.cancel()
			delete(p.targets, key)
		}
	}
	polled := map[string]bool{}
	for key, w := range want {
		for _, d := range w.deployments {
			polled[d] = true
		}
		if t, ok := p.targets[key]; ok {
			changed := t.every != w.every
			t.every, t.deployments = w.every, w.deployments
			if changed {
				select {
				case t.wake <- struct{}{}:
				default:
				}
			}
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		w.cancel, w.wake = cancel, make(chan struct{}, 1)
		p.targets[key] = w
		p.wg.Add(1)
		go p.loop(ctx, w)
	}
	for d := range p.polled {
		if !polled[d] {
			p.m.lastSuccess.DeleteLabelValues(d)
		}
	}
	p.polled = polled
}

// plan groups the polled deployments of cfg by repository and rule.
func plan(cfg *deployments.Config) map[string]*target {
	out := map[string]*target{}
	for _, d := range cfg.All() {
		every := d.PollInterval()
		for _, r := range d.PollRules() {
			key := d.Image + " " + r.String()
			t, ok := out[key]
			if !ok {
				t = &target{key: key, repo: d.Image, host: host(d.Image), rule: r, every: every}
				out[key] = t
			}
			t.every = min(t.every, every)
			if !slices.Contains(t.deployments, d.Name) {
				t.deployments = append(t.deployments, d.Name)
			}
		}
	}
	return out
}

// Status is what the polls of the deployment did last: the latest poll of
// its rules, the error of any that failed last, the soonest next. False
// when the deployment is not polled.
func (p *Poller) Status(deployment string) (Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s Status
	found := false
	for _, t := range p.targets {
		if !slices.Contains(t.deployments, deployment) {
			continue
		}
		if t.polled.After(s.Polled) {
			s.Polled = t.polled
		}
		switch {
		case t.result != "" && t.result != resultOK:
			s.Result = t.result
		case s.Result == "" && t.result != "":
			s.Result = resultOK
		}
		if !found || t.next.Before(s.Next) {
			s.Next = t.next
		}
		found = true
	}
	return s, found
}
