package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Engine is what the management API asks of the deploy engine.
type Engine interface {
	Deployer
	Status(deployment string) deploy.Status
	Running(ctx context.Context, deployment string) (*deploy.Container, error)
	Down() map[string]error
	Pause(ctx context.Context, deployment, actor string) error
	Unpause(ctx context.Context, deployment, actor string) (*deploy.Request, error)
	Approve(ctx context.Context, deployment, actor string) (deploy.Request, error)
	Reject(ctx context.Context, deployment, actor string) (deploy.Request, error)
}

// History is what the management API reads of the deploy history.
type History interface {
	// Deploys returns the deploys q selects, newest first, and the cursor
	// of the next page (0: none).
	Deploys(ctx context.Context, q deploy.DeployQuery) ([]deploy.Record, int64, error)
	Deploy(ctx context.Context, id int64) (deploy.Record, bool, error)
	// LastSucceeded is the newest succeeded deploy of a deployment whose
	// digest is not except.
	LastSucceeded(ctx context.Context, deployment, except string) (deploy.Record, bool, error)
	// Deliveries returns deliveries newest first and the cursor of the
	// next page (0: none).
	Deliveries(ctx context.Context, limit int, before int64) ([]deploy.Delivery, int64, error)
}

// maxAPIBody bounds the body of an API request.
const maxAPIBody = 64 << 10

// historyShown is how many deploys GET /api/v1/deployments/{name} shows.
const historyShown = 20

// apiErrors are the API's failures, each mapped to its status by apiStatus.
var (
	errUnauthorized = errors.New("unauthorized: send Authorization: Bearer <an API token of the config>")
	errForbidden    = errors.New("forbidden")
	errNoDeployment = errors.New("no such deployment")
	errConflict     = errors.New("conflict")
	errBadRequest   = errors.New("bad request")
)

func apiStatus(err error) int {
	switch {
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errNoDeployment):
		return http.StatusNotFound
	case errors.Is(err, errConflict):
		return http.StatusConflict
	case errors.Is(err, errBadRequest), errors.Is(err, errInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errUnavailable), errors.Is(err, deploy.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// apiError answers err: {"error": reason}. Internal errors are logged, not
// shown.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	status := apiStatus(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		s.log.Error().Err(err).Str("route", routePattern(r)).Msg("api: internal error")
		msg = "internal error"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="liftoff"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
	}
	writeJSON(w, status, apiv1.Error{Error: msg})
}

// apiRoutes mounts the management API on r. Every route needs a token of
// the config; each says which scope it needs.
func (s *Server) apiRoutes(r chi.Router) {
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(s.apiAuth)
		r.Get("/deployments", s.listDeployments)
		r.Get("/deployments/{name}", s.getDeployment)
		r.Get("/deploys", s.listDeploys)
		r.Get("/deliveries", s.listDeliveries)
		r.Post("/deployments/{name}/deploy", s.postDeploy)
		r.Post("/deployments/{name}/rollback", s.postRollback)
		r.Post("/deployments/{name}/pause", s.postPause)
		r.Post("/deployments/{name}/resume", s.postResume)
		r.Post("/deployments/{name}/approve", s.postApprove)
		r.Post("/deployments/{name}/reject", s.postReject)
		r.NotFound(notFound)
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusMethodNotAllowed, apiv1.Error{Error: "method not allowed"})
		})
	})
}

type principalKey struct{}

// apiAuth lets through requests with a token of the config, and tells the
// handlers who it is. A missing and an unknown token get the same answer.
// With no API token configured the API does not exist (404).
func (s *Server) apiAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cat := s.catalogue()
		if cat == nil || !cat.APIEnabled() {
			notFound(w, r)
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, known := cat.APIAuth(strings.TrimSpace(token))
		if !ok || !known {
			s.apiError(w, r, errUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func principal(r *http.Request) deployments.Principal {
	p, _ := r.Context().Value(principalKey{}).(deployments.Principal)
	return p
}

// may checks that the caller's token has the scope for verb in env.
func may(r *http.Request, verb deployments.Verb, env string) error {
	if !principal(r).Can(verb, env) {
		return fmt.Errorf("%w: this token lacks scope %s", errForbidden, deployments.Scope(verb, env))
	}
	return nil
}

// target finds the route's deployment and checks the caller's scope on it.
func (s *Server) target(r *http.Request, verb deployments.Verb) (*deployments.Deployment, error) {
	cat := s.catalogue()
	d := cat.Deployment(chi.URLParam(r, "name"))
	if d == nil {
		return nil, errNoDeployment // the name is not echoed: it may be anything
	}
	if err := may(r, verb, d.Environment); err != nil {
		return nil, err
	}
	return d, nil
}

// --- reading ---

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	if err := may(r, deployments.VerbRead, ""); err != nil {
		s.apiError(w, r, err)
		return
	}
	// A deployment whose engine does not answer is listed with why
	// (engine_error), beside those whose engine does: with several
	// engines, one away must not hide the others. Only when no engine
	// answered at all is the whole list a 503.
	out := []apiv1.Deployment{}
	answered := false
	var engineErr error
	for _, d := range s.catalogue().All() {
		v, _, err := s.viewLast(r.Context(), d)
		switch {
		case err == nil:
			answered = true
		case errors.Is(err, errUnavailable):
			engineErr = err
			msg := err.Error()
			v.EngineError = &msg
		default:
			s.apiError(w, r, err)
			return
		}
		out = append(out, v)
	}
	if engineErr != nil && !answered {
		s.apiError(w, r, engineErr)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Deployments{Deployments: out})
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := s.target(r, deployments.VerbRead)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.view(r.Context(), d)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	recs, _, err := s.history.Deploys(r.Context(), deploy.DeployQuery{Deployment: d.Name, Limit: historyShown})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.DeploymentDetail{Deployment: v, History: deployViews(recs)})
}

func (s *Server) listDeploys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// A token without read may follow the deploys of one delivery in the
	// environments it may deploy or approve in: what a CI job that asked
	// for a deploy needs to wait for it.
	p := principal(r)
	readsAll := p.Can(deployments.VerbRead, "")
	if !readsAll && q.Get("delivery") == "" {
		s.apiError(w, r, fmt.Errorf("%w: this token lacks scope %s (without it, deploys can be followed by delivery only)",
			errForbidden, deployments.Scope(deployments.VerbRead, "")))
		return
	}
	limit, before, err := page(q)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	dq := deploy.DeployQuery{Deployment: q.Get("deployment"), Environment: q.Get("environment"),
		Outcome: q.Get("outcome"), Delivery: q.Get("delivery"), Limit: limit, Before: before}
	recs, next, err := s.history.Deploys(r.Context(), dq)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if !readsAll {
		for _, rec := range recs {
			if !p.Can(deployments.VerbDeploy, rec.Environment) && !p.Can(deployments.VerbApprove, rec.Environment) {
				s.apiError(w, r, fmt.Errorf("%w: this token lacks scope %s", errForbidden, deployments.Scope(deployments.VerbRead, "")))
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, apiv1.Deploys{Deploys: deployViews(recs), Next: cursor(next)})
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	if err := may(r, deployments.VerbRead, ""); err != nil {
		s.apiError(w, r, err)
		return
	}
	limit, before, err := page(r.URL.Query())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	ds, next, err := s.history.Deliveries(r.Context(), limit, before)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Deliveries{Deliveries: deliveryViews(ds), Next: cursor(next)})
}

// page reads limit and before: positive integers, if given.
func page(q map[string][]string) (int, int64, error) {
	get := func(k string) (int64, error) {
		v := ""
		if vs := q[k]; len(vs) > 0 {
			v = vs[0]
		}
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%w: %s must be a positive integer", errBadRequest, k)
		}
		return n, nil
	}
	limit, err := get("limit")
	if err != nil {
		return 0, 0, err
	}
	before, err := get("before")
	return int(min(limit, 1000)), before, err
}

func cursor(next int64) *string {
	if next == 0 {
		return nil
	}
	s := strconv.FormatInt(next, 10)
	return &s
}

// view is what the API shows of a deployment now.
func (s *Server) view(ctx context.Context, d *deployments.Deployment) (apiv1.Deployment, error) {
	v, _, err := s.viewLast(ctx, d)
	return v, err
}

// viewLast is view, and the deployment's newest deploy (nil: none) from
// which its last is made: the status page shows its phases too. When the
// container engine does not answer, it still fills in all the rest and
// returns an error wrapping errUnavailable (the status page shows what it
// has; the API answers 503).
func (s *Server) viewLast(ctx context.Context, d *deployments.Deployment) (apiv1.Deployment, *deploy.Record, error) {
	st := s.engine.Status(d.Name)
	v := apiv1.Deployment{Name: d.Name, Environment: d.Environment, Engine: d.Engine, Image: d.Image, Tags: nonNil(d.Tags),
		Strategy: d.Strategy, Paused: st.Paused != nil}
	if v.Engine == "" {
		v.Engine = deployments.LocalEngine
	}
	if p := st.Paused; p != nil {
		v.PausedBy, v.PausedSince = p.Actor, timePtr(p.Since)
	}
	c, err := s.engine.Running(ctx, d.Name)
	var engineErr error
	if err != nil {
		engineErr = fmt.Errorf("%w: container engine: %v", errUnavailable, err)
	}
	if c != nil {
		v.Running = &apiv1.Running{Container: c.Name, ID: c.ID, Tag: c.Labels[deploy.LabelTag], Digest: c.Labels[deploy.LabelDigest],
			Since: timePtr(c.StartedAt), State: c.Status, Health: c.Health}
	}
	if why, down := s.engine.Down()[d.Name]; down {
		msg := why.Error()
		v.Down = &msg
	}
	recs, _, err := s.history.Deploys(ctx, deploy.DeployQuery{Deployment: d.Name, Limit: 1})
	if err != nil {
		return v, nil, err
	}
	var last *deploy.Record
	if len(recs) > 0 {
		r := recs[0]
		last = &r
		v.Last = &apiv1.Last{ID: r.ID, Delivery: r.Delivery, Trigger: r.Trigger, Actor: r.Actor, Outcome: outcome(r.Outcome),
			Tag: r.Tag, Digest: r.Digest, Started: r.Started.UTC(), Ended: timePtr(r.Ended), Error: r.Error}
		if r.Outcome == "" {
			v.Last.Step = r.Step
		}
	}
	if p := st.Pending; p != nil {
		v.Pending = &apiv1.Push{Delivery: p.Delivery, Tag: p.Tag, Digest: p.Digest, Pusher: p.Pusher,
			Received: p.Received.UTC(), Expires: p.Expires.UTC()}
	}
	if h := st.Held; h != nil {
		v.Held = &apiv1.Push{Delivery: h.Delivery, Tag: h.Tag, Digest: h.Digest, Pusher: h.Pusher, Received: h.Received.UTC()}
	}
	return v, last, engineErr
}

// --- acting ---

// Grammar of what POST .../deploy takes: Docker's tag grammar, and a
// sha256 digest.
var (
	tagGrammar    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestGrammar = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// decode reads a JSON body into v: at most maxAPIBody bytes, no unknown
// fields, nothing after it. An empty body is an empty object.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: over %d bytes", errTooLarge, maxAPIBody)
	case err != nil:
		return fmt.Errorf("%w: reading body: %v", errBadRequest, err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value", errBadRequest)
	}
	return nil
}

func (s *Server) postDeploy(w http.ResponseWriter, r *http.Request) {
	d, err := s.target(r, deployments.VerbDeploy)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	var body apiv1.DeployRequest
	if err := decode(w, r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	switch {
	case (body.Tag == "") == (body.Digest == ""):
		err = fmt.Errorf(`%w: give either "tag" or "digest"`, errBadRequest)
	case body.Tag != "" && !tagGrammar.MatchString(body.Tag):
		err = fmt.Errorf("%w: %q is not a valid tag", errBadRequest, trim(body.Tag))
	case body.Digest != "" && !digestGrammar.MatchString(body.Digest):
		err = fmt.Errorf("%w: %q is not a sha256 digest (sha256: and 64 lowercase hex digits)", errBadRequest, trim(body.Digest))
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.enqueue(w, r, d, body.Tag, body.Digest, "deploy", nil)
}

func (s *Server) postRollback(w http.ResponseWriter, r *http.Request) {
	d, err := s.target(r, deployments.VerbDeploy)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	var body apiv1.RollbackRequest
	if err := decode(w, r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	var to deploy.Record
	if body.To != 0 {
		rec, ok, err := s.history.Deploy(r.Context(), body.To)
		switch {
		case err != nil:
			s.apiError(w, r, err)
			return
		case !ok || rec.Deployment != d.Name:
			s.apiError(w, r, fmt.Errorf("%w: deploy %d is not a deploy of %s", errConflict, body.To, d.Name))
			return
		case rec.Outcome != deploy.Succeeded || rec.Digest == "":
			s.apiError(w, r, fmt.Errorf("%w: deploy %d did not succeed (%s): nothing known good to go back to", errConflict, body.To, outcomeText(rec.Outcome)))
			return
		}
		to = rec
	} else {
		running := ""
		if c, err := s.engine.Running(r.Context(), d.Name); err != nil {
			s.apiError(w, r, fmt.Errorf("%w: container engine: %v", errUnavailable, err))
			return
		} else if c != nil {
			running = c.Labels[deploy.LabelDigest]
		}
		rec, ok, err := s.history.LastSucceeded(r.Context(), d.Name, running)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		if !ok {
			s.apiError(w, r, fmt.Errorf("%w: no earlier successful deploy of %s with another digest than the one running", errConflict, d.Name))
			return
		}
		to = rec
	}
	s.enqueue(w, r, d, to.Tag, to.Digest, "rollback", &to)
}

// enqueue asks the engine to deploy tag or digest as the caller, and
// answers 202 with the delivery that follows it and what it deploys (for a
// rollback, the deploy it goes back to).
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request, d *deployments.Deployment, tag, digest, action string, to *deploy.Record) {
	p := principal(r)
	id := newDeliveryID()
	req := deploy.Request{Deployment: d.Name, Image: d.Image, Tag: tag, Digest: digest, Trigger: deploy.TriggerAPI,
		Delivery: id, Actor: p.Name, Received: s.now()}
	if _, err := s.engine.Enqueue(r.Context(), req); err != nil {
		if errors.Is(err, deploy.ErrClosed) {
			s.apiError(w, r, errDraining)
			return
		}
		s.log.Error().Err(err).Str("delivery", id).Msg("api: the deploy could not be recorded")
		s.apiError(w, r, errNotRecorded)
		return
	}
	s.log.Info().Str("delivery", id).Str("deployment", d.Name).Str("actor", p.Name).Str("action", action).
		Str("tag", tag).Str("digest", digest).Msg("api: deploy asked for")
	s.record(deploy.Delivery{ID: id, Source: "api", Image: d.Image, Tag: tagOr(tag, digest), Actor: p.Name, Received: req.Received,
		Accepted: []string{d.Name}})
	ans := apiv1.Enqueued{Delivery: id, Deployment: d.Name, Tag: tag, Digest: digest}
	if to != nil {
		ans.RollbackTo = to.ID
	}
	writeJSON(w, http.StatusAccepted, ans)
}

// actionVerbs is the scope verb each action on a deployment takes, for
// the API's routes and the status page's buttons alike.
var actionVerbs = map[string]deployments.Verb{
	"pause": deployments.VerbDeploy, "resume": deployments.VerbDeploy,
	"approve": deployments.VerbApprove, "reject": deployments.VerbApprove,
}

func (s *Server) postPause(w http.ResponseWriter, r *http.Request) {
	d, err := s.target(r, actionVerbs["pause"])
	if err == nil {
		err = decode(w, r, &struct{}{})
	}
	if err == nil {
		err = s.pause(r.Context(), d, principal(r))
	}
	s.afterAction(w, r, d, err, nil)
}

func (s *Server) postResume(w http.ResponseWriter, r *http.Request) {
	d, err := s.target(r, actionVerbs["resume"])
	if err == nil {
		err = decode(w, r, &struct{}{})
	}
	var held *deploy.Request
	if err == nil {
		held, err = s.resume(r.Context(), d, principal(r))
	}
	s.afterAction(w, r, d, err, held)
}

// The actions on a deployment, shared by the API's handlers and the status
// page's forms. The caller has checked the scope (target); each acts
// through the engine, logs, and records a Delivery.

// pause pauses d as p.
func (s *Server) pause(ctx context.Context, d *deployments.Deployment, p deployments.Principal) error {
	err := s.engine.Pause(ctx, d.Name, p.Name)
	if errors.Is(err, deploy.ErrPaused) {
		return fmt.Errorf("%w: %s is paused already", errConflict, d.Name)
	}
	if err == nil {
		s.recordPause(d, p, "pause")
	}
	return err
}

// resume resumes d as p, and returns the push it sent on (held meanwhile),
// if any.
func (s *Server) resume(ctx context.Context, d *deployments.Deployment, p deployments.Principal) (*deploy.Request, error) {
	held, err := s.engine.Unpause(ctx, d.Name, p.Name)
	if errors.Is(err, deploy.ErrNotPaused) {
		return nil, fmt.Errorf("%w: %s is not paused", errConflict, d.Name)
	}
	if err == nil {
		s.recordPause(d, p, "resume")
	}
	return held, err
}

// recordPause logs and records a pause or a resume.
func (s *Server) recordPause(d *deployments.Deployment, p deployments.Principal, action string) {
	s.log.Info().Str("deployment", d.Name).Str("actor", p.Name).Str("action", action).Msg("api: " + action)
	s.record(deploy.Delivery{ID: newDeliveryID(), Source: "api", Image: d.Image, Actor: p.Name, Received: s.now(),
		Ignored: []deployments.Ignored{{Deployment: d.Name, Reason: action}}})
}

// afterAction answers a pause or resume: 200 with the deployment, and for a
// resume the push it sent on (held meanwhile): where it went.
func (s *Server) afterAction(w http.ResponseWriter, r *http.Request, d *deployments.Deployment, err error, held *deploy.Request) {
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.view(r.Context(), d)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := apiv1.Acted{Deployment: v}
	if held != nil {
		out.Resumed = &apiv1.Resumed{Delivery: held.Delivery, Tag: held.Tag, Digest: held.Digest, State: string(held.State)}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) postApprove(w http.ResponseWriter, r *http.Request) {
	s.postDecide(w, r, "approve")
}

func (s *Server) postReject(w http.ResponseWriter, r *http.Request) {
	s.postDecide(w, r, "reject")
}

// postDecide approves or rejects the deployment's pending push: 202
// (approved: it deploys) or 200 (rejected) with the push's delivery.
func (s *Server) postDecide(w http.ResponseWriter, r *http.Request, action string) {
	d, err := s.target(r, actionVerbs[action])
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := decode(w, r, &struct{}{}); err != nil {
		s.apiError(w, r, err)
		return
	}
	push, err := s.decide(r.Context(), d, principal(r), action)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	status := http.StatusAccepted
	if action == "reject" {
		status = http.StatusOK
	}
	writeJSON(w, status, apiv1.Decided{Delivery: push.Delivery, Deployment: d.Name, Tag: push.Tag, Digest: push.Digest,
		Outcome: map[string]string{"approve": "queued", "reject": string(deploy.Rejected)}[action]})
}

// decide approves ("approve") or rejects ("reject") d's pending push as p,
// and returns the push.
func (s *Server) decide(ctx context.Context, d *deployments.Deployment, p deployments.Principal, action string) (deploy.Request, error) {
	f := s.engine.Approve
	if action == "reject" {
		f = s.engine.Reject
	}
	push, err := f(ctx, d.Name, p.Name)
	if errors.Is(err, deploy.ErrNothingPending) {
		return push, fmt.Errorf("%w: no push of %s awaits approval", errConflict, d.Name)
	}
	if err != nil {
		return push, err
	}
	s.log.Info().Str("deployment", d.Name).Str("actor", p.Name).Str("action", action).
		Str("delivery", push.Delivery).Str("tag", push.Tag).Msg("api: " + action)
	rec := deploy.Delivery{ID: newDeliveryID(), Source: "api", Image: d.Image, Tag: tagOr(push.Tag, push.Digest), Actor: p.Name, Received: s.now()}
	if action == "approve" {
		rec.Accepted = []string{d.Name}
	} else {
		rec.Ignored = []deployments.Ignored{{Deployment: d.Name, Reason: "rejected push of delivery " + push.Delivery}}
	}
	s.record(rec)
	return push, nil
}

// record hands a delivery to OnDelivery.
func (s *Server) record(d deploy.Delivery) {
	if s.onDelivery != nil {
		s.onDelivery(d)
	}
}

// --- views ---

func deliveryViews(ds []deploy.Delivery) []apiv1.Delivery {
	out := make([]apiv1.Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, apiv1.Delivery{ID: d.ID, Source: d.Source, Image: d.Image, Tag: d.Tag, Pusher: d.Pusher,
			Actor: d.Actor, Received: d.Received.UTC(), Accepted: nonNil(d.Accepted), Ignored: ignoredViews(d.Ignored)})
	}
	return out
}

func deployViews(recs []deploy.Record) []apiv1.Deploy {
	out := make([]apiv1.Deploy, 0, len(recs))
	for _, r := range recs {
		v := apiv1.Deploy{ID: r.ID, Deployment: r.Deployment, Environment: r.Environment, Image: r.Image, Tag: r.Tag,
			Digest: r.Digest, PreviousDigest: r.Previous, Trigger: r.Trigger, Actor: r.Actor, Pusher: r.Pusher,
			Delivery: r.Delivery, Outcome: outcome(r.Outcome), Settled: r.Outcome != "" && !r.Open,
			Error: r.Error, Started: r.Started.UTC(), Ended: timePtr(r.Ended), Phases: map[string]float64{},
			ReleaseOutput: r.ReleaseOutput}
		if r.Outcome == "" {
			v.Step = r.Step // under way: how far it got
		}
		for k, d := range r.Phases {
			v.Phases[k] = d.Seconds()
		}
		out = append(out, v)
	}
	return out
}

func outcome(o deploy.Outcome) *string {
	if o == "" {
		return nil // still running
	}
	s := string(o)
	return &s
}

func outcomeText(o deploy.Outcome) string {
	if o == "" {
		return "still running"
	}
	return string(o)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ignoredViews is never nil: the API answers [] for none.
func ignoredViews(igs []deployments.Ignored) []apiv1.Ignored {
	out := make([]apiv1.Ignored, len(igs))
	for i, ig := range igs {
		out[i] = apiv1.Ignored(ig)
	}
	return out
}

func tagOr(tag, digest string) string {
	if tag != "" {
		return tag
	}
	return digest
}

// trim keeps what a bad value echoes back short.
func trim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
