package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/deploy"
	"github.com/liftoff-deploy/liftoff/deployments"
)

var (
	errDraining = fmt.Errorf("%w: shutting down, retry later", errUnavailable)
	errNoConfig = fmt.Errorf("%w: no configuration loaded, retry later", errUnavailable)
	errBusy     = fmt.Errorf("%w: too many deliveries at once, retry later", errUnavailable)
	// errNotRecorded: the engine could not record the push (its journal
	// failed), so it promises nothing; the sender should retry.
	errNotRecorded = fmt.Errorf("%w: the push could not be recorded, retry later", errUnavailable)
)

// push is what a source's payload says was pushed, checked: Repo is
// normalized (docker.io/acme/web) and Tag follows the tag grammar.
type push struct {
	Repo     string
	Tag      string
	Digest   string // when the sender gives one
	Pusher   string
	PushedAt time.Time // zero when unknown
}

// parser reads one source's payload. Its errors wrap errInvalid.
type parser func(body []byte) (push, error)

// delivery is one webhook request, as answered and logged.
type delivery struct {
	id       string
	source   string // a metrics label: a served source or sourceUnknown
	push     push
	accepted []string
	ignored  []deployments.Ignored
}

// answer is the body of a 202.
type answer struct {
	Delivery string                `json:"delivery"`
	Accepted []string              `json:"accepted"`
	Ignored  []deployments.Ignored `json:"ignored"`
}

// hook serves POST /hooks/{source}/{token}.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	d := s.newDelivery(r)
	err := s.receive(w, r, d)
	s.finish(w, r, d, err)
}

// reject answers a hook request turned away before it was read.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, err error) {
	s.finish(w, r, s.newDelivery(r), err)
}

func (s *Server) newDelivery(r *http.Request) *delivery {
	source := chi.URLParam(r, "source")
	if _, ok := s.sources[source]; !ok {
		source = sourceUnknown
	}
	return &delivery{id: newDeliveryID(), source: source}
}

// receive authenticates, reads and matches a delivery and queues its
// deploys.
func (s *Server) receive(w http.ResponseWriter, r *http.Request, d *delivery) (err error) {
	if s.draining.Load() {
		return errDraining
	}
	cat := s.catalogue()
	if cat == nil {
		return errNoConfig
	}
	// The token is checked before the body is read. The catalogue is asked
	// even for a source we do not serve, so that an unknown source costs
	// the same as a wrong token.
	source := chi.URLParam(r, "source")
	parse, served := s.sources[source]
	if !cat.HookAuth(source, chi.URLParam(r, "token")) || !served {
		return errNotFound
	}

	body, err := readBody(w, r, s.maxBody)
	if err != nil {
		return err
	}
	p, err := parse(body)
	if err != nil {
		return err
	}
	d.push = p

	received := s.now()
	if s.onDelivery != nil {
		// Recorded in the background once answered 202, whatever it
		// asked for.
		defer func() {
			if err == nil {
				s.onDelivery(Delivery{ID: d.id, Source: source, Image: p.Repo, Tag: p.Tag,
					Pusher: p.Pusher, Received: received, Accepted: d.accepted, Ignored: d.ignored})
			}
		}()
	}
	if deployments.IsSignatureTag(p.Tag) {
		d.ignored = []deployments.Ignored{{Tag: p.Tag, Reason: "signature or attestation tag"}}
		return nil
	}
	m := cat.Match(p.Repo, p.Tag)
	d.ignored = append(d.ignored, m.Ignored...)
	if len(m.Accepted) == 0 {
		return nil
	}
	reqs := make([]deploy.Request, 0, len(m.Accepted))
	for _, dep := range m.Accepted {
		reqs = append(reqs, deploy.Request{
			Deployment: dep.Name,
			Image:      p.Repo,
			Tag:        p.Tag,
			Digest:     p.Digest,
			Trigger:    source,
			Delivery:   d.id,
			Pusher:     p.Pusher,
			Received:   received,
		})
	}
	// The 202 is a promise: the engine records the requests before
	// Enqueue returns, and deploys them even if liftoff dies first.
	dispositions, err := s.deployer.Enqueue(r.Context(), reqs...)
	if errors.Is(err, deploy.ErrClosed) {
		return errDraining
	} else if err != nil {
		s.log.Error().Err(err).Str("delivery", d.id).Msg("webhook: the push could not be recorded; answered 503 so that the sender retries")
		return errNotRecorded
	}
	for i, dep := range m.Accepted {
		switch dispositions[i] {
		case deploy.Held:
			d.ignored = append(d.ignored, deployments.Ignored{Deployment: dep.Name, Reason: "paused: the push is held and deploys when the deployment is resumed"})
		case deploy.Pending:
			d.ignored = append(d.ignored, deployments.Ignored{Deployment: dep.Name,
				Reason: "awaiting approval: deploys once someone with approve:" + dep.Environment + " approves it"})
		default:
			d.accepted = append(d.accepted, dep.Name)
		}
	}
	return nil
}

// readBody reads at most limit bytes of the body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, limit)
	}
	size := r.ContentLength
	if size < 0 {
		size = 0
	}
	// Room for the whole body and the read that sees EOF: one allocation.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, limit)
	case err != nil:
		return nil, fmt.Errorf("%w: reading body: %v", errInvalid, err)
	}
	return buf.Bytes(), nil
}

// finish answers d, counts it and logs it: one line per delivery, with the
// route pattern and never the token.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, d *delivery, err error) {
	status, outcome := http.StatusAccepted, outcomeAccepted
	if err != nil {
		status, outcome = classify(err)
		writeError(w, err, d.id)
	} else {
		if len(d.accepted) == 0 {
			outcome = outcomeIgnored
		}
		a := answer{Delivery: d.id, Accepted: d.accepted, Ignored: d.ignored}
		if a.Accepted == nil {
			a.Accepted = []string{}
		}
		if a.Ignored == nil {
			a.Ignored = []deployments.Ignored{}
		}
		writeJSON(w, status, a)
	}
	s.metrics.webhook(d.source, outcome)

	level := zerolog.InfoLevel
	switch outcome {
	case outcomeRateLimited:
		level = zerolog.DebugLevel // a flood should not flood the log too
	case outcomeUnauthorized, outcomeInvalid, outcomeTooLarge:
		level = zerolog.WarnLevel
	case outcomeError:
		level = zerolog.ErrorLevel
	}
	ev := s.log.WithLevel(level).
		Str("source", d.source).
		Str("delivery", d.id).
		Str("route", routePattern(r)).
		Str("remote", r.RemoteAddr)
	if d.push.Repo != "" {
		ev = ev.Str("repo", d.push.Repo).Str("tag", d.push.Tag).Str("pusher", d.push.Pusher)
		if !d.push.PushedAt.IsZero() {
			ev = ev.Time("pushed_at", d.push.PushedAt)
		}
	}
	if err != nil && status != http.StatusNotFound {
		ev = ev.Str("reason", reason(err, status))
	}
	if err != nil && status == http.StatusInternalServerError {
		ev = ev.AnErr("error", err)
	}
	ev.Strs("accepted", d.accepted).
		Int("ignored", len(d.ignored)).
		Int("status", status).
		Str("outcome", outcome).
		Msg("webhook")
}
