package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
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

// hook serves POST /hooks/{source}/{token}.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	d := s.newDelivery(r)
	err := s.receive(w, r, &d)
	s.finish(w, r, &d, err)
}

// reject answers a hook request turned away before it was read.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, err error) {
	d := s.newDelivery(r)
	s.finish(w, r, &d, err)
}

// newDelivery is a value, so that it stays on the stack.
func (s *Server) newDelivery(r *http.Request) delivery {
	source := chi.URLParam(r, "source")
	if _, ok := s.sources[source]; !ok {
		source = sourceUnknown
	}
	return delivery{id: newDeliveryID(), source: source}
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
	putBody(body) // the parse copied what it kept
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
				s.onDelivery(deploy.Delivery{ID: d.id, Source: source, Image: p.Repo, Tag: p.Tag,
					Pusher: p.Pusher, Received: received, Accepted: d.accepted, Ignored: d.ignored})
			}
		}()
	}
	if deployments.IsSignatureTag(p.Tag) {
		d.ignored = []deployments.Ignored{{Tag: p.Tag, Reason: "signature or attestation tag"}}
		return nil
	}
	m := cat.Match(p.Repo, p.Tag)
	// Clipped: the appends below must not write into the catalogue's array.
	d.ignored = slices.Clip(m.Ignored)
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
	d.accepted = make([]string, 0, len(m.Accepted))
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

// bodies holds the buffers of bodies read and parsed, for the next
// deliveries: a flood of webhooks is a flood of ~1 KB bodies, and the
// garbage collector's share of its cost follows the bytes allocated.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody bounds the buffers kept in bodies: a rare large body must
// not stay allocated.
const maxPooledBody = 64 << 10

// putBody gives a body readBody returned back for another delivery; b must
// not be used after.
func putBody(b []byte) {
	if cap(b) <= maxPooledBody {
		b = b[:0]
		bodies.Put(&b)
	}
}

// readBody reads at most limit bytes of the body, into a buffer from
// bodies that putBody may give back.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, limit)
	}
	size := r.ContentLength
	if size < 0 {
		size = 0
	}
	// Room for the whole body and the read that sees EOF.
	pooled := bodies.Get().(*[]byte)
	b := *pooled
	if int64(cap(b)) < size+bytes.MinRead {
		b = make([]byte, 0, size+bytes.MinRead)
	}
	buf := bytes.NewBuffer(b[:0])
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		// Declared here: errors.As makes it escape, which costs an
		// allocation.
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: reading body: %v", errInvalid, err)
	}
	return buf.Bytes(), nil
}

// finish answers d, counts it and logs it: one line per delivery, with the
// route pattern and never the token. It is the delivery's only line: the
// access log leaves hooks out (markLogged).
func (s *Server) finish(w http.ResponseWriter, r *http.Request, d *delivery, err error) {
	status, outcome := http.StatusAccepted, outcomeAccepted
	if err != nil {
		status, outcome = classify(err)
		writeError(w, err, d.id)
	} else {
		if len(d.accepted) == 0 {
			outcome = outcomeIgnored
		}
		writeAnswer(w, d)
	}
	s.metrics.webhook(d.source, outcome)

	level := zerolog.InfoLevel
	switch outcome {
	case outcomeRateLimited:
		level = zerolog.DebugLevel // a flood should not flood the log too
	case outcomeUnauthorized, outcomeInvalid, outcomeTooLarge, outcomeUnavailable:
		level = zerolog.WarnLevel
	case outcomeError:
		level = zerolog.ErrorLevel
	}
	start := markLogged(w)
	ev := s.log.WithLevel(level)
	if ev == nil {
		return // below the logger's level
	}
	ev = ev.Str("source", d.source).
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
	if !start.IsZero() {
		ev = ev.Dur("duration", time.Since(start))
	}
	ev.Strs("accepted", d.accepted).
		Int("ignored", len(d.ignored)).
		Int("status", status).
		Str("outcome", outcome).
		Msg("webhook")
}

// The header values of a 202, shared by every answer: net/http only reads
// them, and Header.Set or Add would replace them rather than write into
// them.
var (
	headerJSON    = []string{"application/json"}
	headerNosniff = []string{"nosniff"}
)

// writeAnswer answers 202 {"delivery", "accepted", "ignored"}, as
// writeJSON would (TestAnswerJSON), without its reflection.
func writeAnswer(w http.ResponseWriter, d *delivery) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["X-Content-Type-Options"] = headerNosniff
	w.WriteHeader(http.StatusAccepted)
	w.Write(appendAnswer(make([]byte, 0, 256), d.id, d.accepted, d.ignored))
}

// appendAnswer appends the body of a 202, newline included, to b: what
// json.Marshal makes of apiv1.HookAnswer{id, accepted, ignored}, with []
// for nil.
func appendAnswer(b []byte, id string, accepted []string, ignored []deployments.Ignored) []byte {
	b = append(b, `{"delivery":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"accepted":[`...)
	for i, a := range accepted {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	b = append(b, `],"ignored":[`...)
	for i, ig := range ignored {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if ig.Deployment != "" {
			b = append(b, `"deployment":`...)
			b = appendJSONString(b, ig.Deployment)
			b = append(b, ',')
		}
		if ig.Tag != "" {
			b = append(b, `"tag":`...)
			b = appendJSONString(b, ig.Tag)
			b = append(b, ',')
		}
		b = append(b, `"reason":`...)
		b = appendJSONString(b, ig.Reason)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it by default: control characters, quotes, backslashes, <, >
// and &, U+2028 and U+2029; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
