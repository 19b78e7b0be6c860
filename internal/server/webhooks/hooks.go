// Package webhooks receives registry webhooks: POST /hooks/{source}/{token}.
// A delivery is authenticated by the secret token in its URL before its
// body is read, parsed by its source's parser (internal/payload),
// matched against the catalogue and turned into deploy requests; the
// handler answers 202 as soon as the engine has recorded and queued them,
// and never waits for a deploy. It is liftoff's hot path: see the
// benchmarks in internal/server.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/imageref"
	"github.com/liftoff-deploy/liftoff/internal/payload"
	"github.com/liftoff-deploy/liftoff/internal/server/accesslog"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// Catalogue is what the webhooks need of the configuration in force;
// *deployments.Config implements it.
type Catalogue interface {
	// Match returns the deployments a push of repo:tag updates.
	Match(repo, tag string) deployments.MatchResult
	// HookFor tells, in constant time, whether token belongs to source,
	// and what else the hook requires of a delivery (a signature, an
	// Authorization header).
	HookFor(source, token string) (deployments.HookCheck, bool)
	// IsToken tells, in constant time, whether v is a token of the
	// config (a hook's or an API token).
	IsToken(v string) bool
}

var _ Catalogue = (*deployments.Config)(nil)

// Deployer queues deploys. The handler calls Enqueue with the requests of
// one delivery while the sender waits for its answer: it may record them
// durably (the engine's journal) but must never wait for a deploy. It
// fails with deploy.ErrClosed once deploys are no longer taken (shutting
// down), or when the requests could not be recorded; either way nothing
// was queued.
type Deployer interface {
	Enqueue(ctx context.Context, rs ...deploy.Request) ([]deploy.Disposition, error)
}

// PreviewMatcher is what a registry's delete of a tag needs of the
// catalogue; *deployments.Config implements it. A Catalogue that does not
// has no previews.
type PreviewMatcher interface {
	// PreviewsOf returns the deployments of repo whose previews rule
	// takes tag (and whose own tags do not).
	PreviewsOf(repo, tag string) []*deployments.Deployment
}

var _ PreviewMatcher = (*deployments.Config)(nil)

// PreviewRemover removes previews; *deploy.Engine implements it. A
// Deployer that does not removes none when a tag is deleted.
type PreviewRemover interface {
	// RemovePreviewLater starts removing the preview of deployment for
	// tag, for why, and tells whether it runs (false is no error). It
	// never waits for the removal. Safe to repeat.
	RemovePreviewLater(deployment, tag, why string) bool
}

var _ PreviewRemover = (*deploy.Engine)(nil)

var (
	errNoConfig = fmt.Errorf("%w: no configuration loaded, retry later", httperr.ErrUnavailable)
	errBusy     = fmt.Errorf("%w: too many deliveries at once, retry later", httperr.ErrUnavailable)
)

// Defaults for the zero values of Options.
const (
	DefaultMaxBody     = 1 << 20 // bytes of a body
	DefaultConcurrency = 64      // deliveries served at once
)

// Options configure a Handler. Catalogue and Deployer are required.
type Options struct {
	// Catalogue returns the configuration in force, or nil while none is
	// loaded. It is called once per delivery.
	Catalogue func() Catalogue
	Deployer  Deployer
	Logger    zerolog.Logger
	// Registerer receives liftoff_webhooks_total.
	Registerer prometheus.Registerer
	// MaxBody limits a body (0: DefaultMaxBody); larger is 413.
	MaxBody int64
	// RateLimit is the deliveries a minute allowed to one client IP
	// (0: no limit); beyond it the answer is 429 with Retry-After.
	RateLimit int
	// Concurrency caps the deliveries served at once (0:
	// DefaultConcurrency); beyond it the answer is 503.
	Concurrency int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OnDelivery, if set, is told of every delivery answered 202. It must
	// not block.
	OnDelivery func(deploy.Delivery)
}

// Handler serves the webhooks. It is safe for concurrent use.
type Handler struct {
	catalogue  func() Catalogue
	deployer   Deployer
	log        zerolog.Logger
	metrics    *metrics
	maxBody    int64
	rateLimit  int
	hookSem    chan struct{}
	now        func() time.Time
	sources    map[string]source
	redelivery *redeliveries
	draining   atomic.Bool
	onDelivery func(deploy.Delivery)
}

// New returns a Handler for opts. It panics if its metrics clash with
// different ones on the Registerer: a wiring mistake.
func New(opts Options) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	h := &Handler{catalogue: opts.Catalogue, deployer: opts.Deployer, log: opts.Logger, maxBody: opts.MaxBody,
		rateLimit: opts.RateLimit, hookSem: make(chan struct{}, opts.Concurrency), now: opts.Now,
		onDelivery: opts.OnDelivery, sources: newSources(), redelivery: newRedeliveries()}
	if h.now == nil {
		h.now = time.Now
	}
	h.metrics = newMetrics(opts.Registerer, h.sources)
	return h
}

// Routes mounts the hook routes on r, behind the rate limit and the
// concurrency cap. They run after routing (With), so that they see the
// {source} of a hook.
func (h *Handler) Routes(r chi.Router) {
	hooks := r.With(h.limits()...)
	hooks.Post("/hooks/{source}/{token}", h.hook)
	// A hook URL pasted with a trailing slash works too.
	hooks.Post("/hooks/{source}/{token}/", h.hook)
}

// SetDraining makes the hooks answer 503 (so that senders retry later)
// while on is true.
func (h *Handler) SetDraining(on bool) { h.draining.Store(on) }

// Draining tells whether SetDraining turned the hooks off.
func (h *Handler) Draining() bool { return h.draining.Load() }

// delivery is one webhook request, as answered and logged.
type delivery struct {
	id       string
	source   string // a metrics label: a served source or sourceUnknown
	push     push   // the first of the delivery's pushes
	pushes   int    // how many tags it announced
	accepted []string
	ignored  []deployments.Ignored // and why: the pending and held among them
	pending  int                   // deployments whose push awaits approval
	held     int                   // deployments paused, whose push is held
	// redelivery: a sender's delivery id answered 202 already (200).
	redelivery bool
	// status is the answer's when not 202: 200 for a ping or a
	// redelivery.
	status int
}

// hook serves POST /hooks/{source}/{token}.
func (h *Handler) hook(w http.ResponseWriter, r *http.Request) {
	d := h.newDelivery(r)
	err := h.receive(w, r, &d)
	h.finish(w, r, &d, err)
}

// reject answers a hook request turned away before it was read.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, err error) {
	d := h.newDelivery(r)
	h.finish(w, r, &d, err)
}

// newDelivery is a value, so that it stays on the stack.
func (h *Handler) newDelivery(r *http.Request) delivery {
	source := chi.URLParam(r, "source")
	if _, ok := h.sources[source]; !ok {
		source = sourceUnknown
	}
	return delivery{id: deploy.NewDeliveryID(), source: source}
}

// receive authenticates, reads and matches a delivery and queues its
// deploys.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request, d *delivery) (err error) {
	if h.draining.Load() {
		return control.ErrDraining
	}
	cat := h.catalogue()
	if cat == nil {
		return errNoConfig
	}
	// The token is checked before the body is read. The catalogue is asked
	// even for a source we do not serve, so that an unknown source costs
	// the same as a wrong token.
	name := chi.URLParam(r, "source")
	src, served := h.sources[name]
	check, ok := cat.HookFor(name, chi.URLParam(r, "token"))
	if !ok || !served {
		return httperr.ErrNotFound
	}
	// The token was right: a wrong Authorization header or signature is
	// told as such (401), before anything is parsed.
	if !check.AuthOK(r.Header.Get("Authorization")) {
		return errSenderAuth
	}

	body, err := readBody(w, r, h.maxBody)
	if err != nil {
		return err
	}
	if src.signature != "" {
		if err := payload.VerifySignature(check.Secret(), r.Header.Get(src.signature), body); err != nil {
			putBody(body)
			return fmt.Errorf("%w: %s: %w", httperr.ErrSenderAuth, src.signature, err)
		}
	}
	parsed, err := src.parse(r.Header, body)
	putBody(body) // the parse copied what it kept
	if err != nil {
		return err
	}
	// A token pasted as a tag or a repository is refused before anything
	// of the delivery is kept, logged or answered.
	if pastedToken(cat, parsed) {
		return errTokenPasted
	}
	received := h.now()
	if parsed.Ping {
		d.status = http.StatusOK
		return nil
	}
	if parsed.ID != "" {
		if !h.redelivery.claim(name, parsed.ID, received) {
			d.status, d.redelivery = http.StatusOK, true
			d.ignored = []deployments.Ignored{{Reason: "redelivery: this delivery was received already"}}
			return nil
		}
		defer func() {
			if err != nil {
				h.redelivery.release(name, parsed.ID)
			}
		}()
	}
	if len(parsed.Pushes) > 0 {
		d.push, d.pushes = parsed.Pushes[0], len(parsed.Pushes)
	}
	for _, sk := range parsed.Skipped {
		d.ignored = append(d.ignored, deployments.Ignored{Tag: sk.Tag, Reason: sk.Reason})
	}
	defer func() {
		if err != nil {
			return
		}
		if h.onDelivery != nil {
			// Recorded in the background once answered 202, whatever it
			// asked for.
			image, tags := d.push.Repo, tagsOf(parsed.Pushes)
			if image == "" && len(parsed.Deleted) > 0 { // a delivery of deletes only
				image, tags = parsed.Deleted[0].Repo, tagsOf(parsed.Deleted)
			}
			h.onDelivery(deploy.Delivery{ID: d.id, Source: name, Image: image, Tag: tags,
				Pusher: d.push.Pusher, Received: received, Accepted: d.accepted, Ignored: d.ignored})
		}
	}()

	for _, del := range parsed.Deleted {
		d.ignored = append(d.ignored, h.removePreviews(cat, del)...)
	}

	var reqs []deploy.Request
	var envs []string // the environment of each request
	for _, p := range parsed.Pushes {
		if imageref.IsSignatureTag(p.Tag) {
			d.ignored = append(d.ignored, deployments.Ignored{Tag: p.Tag, Reason: "signature or attestation tag"})
			continue
		}
		m := cat.Match(p.Repo, p.Tag)
		d.ignored = append(d.ignored, m.Ignored...)
		for _, dep := range m.Accepted {
			reqs = append(reqs, deploy.Request{
				Deployment: dep.Name,
				Image:      p.Repo,
				Tag:        p.Tag,
				// The sender's digest is not trusted: the engine
				// resolves the tag against the registry, and records
				// the sender's beside it when they differ.
				Reported: p.Digest,
				Trigger:  name,
				Delivery: d.id,
				Pusher:   p.Pusher,
				Received: received,
			})
			envs = append(envs, dep.Environment)
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	// The 202 is a promise: the engine records the requests before
	// Enqueue returns, and deploys them even if liftoff dies first.
	dispositions, err := h.deployer.Enqueue(r.Context(), reqs...)
	if errors.Is(err, deploy.ErrClosed) {
		return control.ErrDraining
	} else if err != nil {
		h.log.Error().Err(err).Str("delivery", d.id).Msg("webhook: the push could not be recorded; answered 503 so that the sender retries")
		return control.ErrNotRecorded
	}
	d.accepted = make([]string, 0, len(reqs))
	for i, rq := range reqs {
		if why := dispositions[i].Why(envs[i]); why != "" {
			switch dispositions[i] {
			case deploy.Pending:
				d.pending++
			case deploy.Held:
				d.held++
			}
			d.ignored = append(d.ignored, deployments.Ignored{Deployment: rq.Deployment, Tag: tagIfSeveral(rq.Tag, d.pushes), Reason: why})
		} else if !slices.Contains(d.accepted, rq.Deployment) {
			d.accepted = append(d.accepted, rq.Deployment)
		}
	}
	return nil
}

// whyDeleted is why a preview is removed on a registry's delete.
const whyDeleted = "its tag was deleted from the registry"

// removePreviews starts removing the previews of a deleted tag, and says
// what it did as the delivery's ignored entries. Nothing else is removed:
// a deployment whose own tags take the deleted tag keeps its container.
func (h *Handler) removePreviews(cat Catalogue, del payload.Push) []deployments.Ignored {
	pm, _ := cat.(PreviewMatcher)
	pr, _ := h.deployer.(PreviewRemover)
	var out []deployments.Ignored
	if pm != nil && pr != nil {
		for _, dep := range pm.PreviewsOf(del.Repo, del.Tag) {
			if pr.RemovePreviewLater(dep.Name, del.Tag, whyDeleted) {
				out = append(out, deployments.Ignored{Deployment: dep.Name, Tag: del.Tag,
					Reason: "tag deleted from the registry: removing its preview " + deployments.PreviewName(dep, del.Tag)})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, deployments.Ignored{Tag: del.Tag, Reason: "tag deleted from the registry: no preview of it runs; nothing is removed"})
	}
	return out
}

// errTokenPasted answers a delivery that names a token of the config as a
// tag or a repository.
var errTokenPasted = fmt.Errorf("%w: a tag or repository of this delivery is one of liftoff's tokens: refused, and not recorded", payload.ErrInvalid)

// pastedToken tells whether a push or a skipped tag of p names a token of
// the config as its tag or its repository (or the repository's last path
// element).
func pastedToken(cat Catalogue, p payload.Parsed) bool {
	found := false
	for _, ps := range p.Pushes {
		found = cat.IsToken(ps.Tag) || cat.IsToken(ps.Repo) || cat.IsToken(ps.Repo[strings.LastIndexByte(ps.Repo, '/')+1:]) || found
	}
	for _, ps := range p.Deleted {
		found = cat.IsToken(ps.Tag) || cat.IsToken(ps.Repo) || cat.IsToken(ps.Repo[strings.LastIndexByte(ps.Repo, '/')+1:]) || found
	}
	for _, sk := range p.Skipped {
		found = cat.IsToken(sk.Tag) || found
	}
	return found
}

// errSenderAuth answers a hook whose sender sent the wrong Authorization
// header (the configured auth_header).
var errSenderAuth = fmt.Errorf("%w: the Authorization header is not the hook's auth_header", httperr.ErrSenderAuth)

// tagsOf is the tag a delivery is listed with, beside the image of its
// first push: its one tag, or its tags joined; a tag of another
// repository (a registry's batch of several) as repository:tag.
func tagsOf(ps []push) string {
	switch len(ps) {
	case 0:
		return ""
	case 1:
		return ps[0].Tag
	}
	tags := make([]string, 0, len(ps))
	for _, p := range ps {
		t := p.Tag
		if p.Repo != ps[0].Repo {
			t = p.Repo + ":" + p.Tag
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return strings.Join(tags, ",")
}

// whyLog lists in the log why each deployment or tag of a delivery was
// not deployed: "deployment: reason", "tag: reason" or "deployment (tag):
// reason".
type whyLog []deployments.Ignored

func (l whyLog) MarshalZerologArray(a *zerolog.Array) {
	for _, ig := range l {
		switch {
		case ig.Deployment != "" && ig.Tag != "":
			a.Str(ig.Deployment + " (" + ig.Tag + "): " + ig.Reason)
		case ig.Deployment != "":
			a.Str(ig.Deployment + ": " + ig.Reason)
		case ig.Tag != "":
			a.Str(ig.Tag + ": " + ig.Reason)
		default:
			a.Str(ig.Reason)
		}
	}
}

// tagIfSeveral names the tag of an ignored deployment only when the
// delivery announced several.
func tagIfSeveral(tag string, pushes int) string {
	if pushes > 1 {
		return tag
	}
	return ""
}

// finish answers d, counts it and logs it: one line per delivery, with the
// route pattern and never the token. It is the delivery's only line: the
// access log leaves hooks out (accesslog.MarkLogged).
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, d *delivery, err error) {
	status, outcome := http.StatusAccepted, outcomeAccepted
	if d.status != 0 && err == nil {
		status = d.status
	}
	if err != nil {
		status = httperr.Status(err)
		outcome = outcomeOf(status)
		if status == http.StatusNotFound {
			httperr.NotFound(w, r)
		} else {
			httperr.Write(w, status, httperr.Reason(err, status), d.id)
		}
	} else {
		if len(d.accepted) == 0 {
			outcome = outcomeIgnored
		}
		writeAnswer(w, status, d)
	}
	h.metrics.webhook(d.source, outcome)

	level := zerolog.InfoLevel
	switch outcome {
	case outcomeRateLimited:
		level = zerolog.DebugLevel // a flood should not flood the log too
	case outcomeUnauthorized, outcomeInvalid, outcomeTooLarge, outcomeUnavailable:
		level = zerolog.WarnLevel
	case outcomeError:
		level = zerolog.ErrorLevel
	}
	start := accesslog.MarkLogged(w)
	ev := h.log.WithLevel(level)
	if ev == nil {
		return // below the logger's level
	}
	ev = ev.Str("source", d.source).
		Str("delivery", d.id).
		Str("route", accesslog.Route(r)).
		Str("remote", r.RemoteAddr)
	if d.push.Repo != "" {
		ev = ev.Str("repo", d.push.Repo).Str("tag", d.push.Tag).Str("pusher", d.push.Pusher)
		if !d.push.PushedAt.IsZero() {
			ev = ev.Time("pushed_at", d.push.PushedAt)
		}
		if d.push.Digest != "" {
			ev = ev.Str("reported_digest", d.push.Digest)
		}
		if d.pushes > 1 {
			ev = ev.Int("pushes", d.pushes)
		}
	}
	if err != nil && status != http.StatusNotFound {
		ev = ev.Str("reason", httperr.Reason(err, status))
	}
	if err != nil && status == http.StatusInternalServerError {
		ev = ev.AnErr("error", err)
	}
	if !start.IsZero() {
		ev = ev.Dur("duration", time.Since(start))
	}
	if len(d.ignored) > 0 {
		// The answer gives counts only; the log says why.
		ev = ev.Array("why", whyLog(d.ignored))
	}
	ev.Strs("accepted", d.accepted).
		Int("ignored", len(d.ignored)).
		Int("status", status).
		Str("outcome", outcome).
		Msg("webhook")
}
