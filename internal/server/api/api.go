// Package api is liftoff's management API under /api/v1: JSON over the
// API tokens and scopes of the config, the answers and bodies of package
// apiv1. Every route acts or reads through control.Service, as the status
// page does, and answers its failures through httperr.
package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/accesslog"
	"github.com/liftoff-deploy/liftoff/internal/server/bearer"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// Catalogue is what the API needs of the configuration in force:
// *deployments.Config implements it.
type Catalogue interface {
	// APIAuth tells, in constant time, who an API token acts as.
	APIAuth(token string) (deployments.Principal, bool)
	// APIEnabled tells whether any API token is configured: without
	// one the API does not exist (404).
	APIEnabled() bool
	All() []*deployments.Deployment
	// IsToken tells, in constant time, whether v is a token of the
	// config (a hook's or an API token).
	IsToken(v string) bool
}

var _ Catalogue = (*deployments.Config)(nil)

// historyShown is how many deploys GET /api/v1/deployments/{name} shows.
const historyShown = 20

// Handler serves the management API.
type Handler struct {
	svc       *control.Service
	catalogue func() Catalogue
	log       zerolog.Logger
}

// New returns a Handler that acts through svc on the configuration
// catalogue returns (nil while none is loaded).
func New(svc *control.Service, catalogue func() Catalogue, log zerolog.Logger) *Handler {
	return &Handler{svc: svc, catalogue: catalogue, log: log}
}

// Routes mounts the management API on r. Every route needs a token of
// the config; each says which scope it needs.
func (h *Handler) Routes(r chi.Router) {
	r.Route("/api/v1", func(r chi.Router) {
		// A browser's cross-site POST is refused before its token is
		// looked at: the API is for the CLI and scripts, not web pages.
		cop := http.NewCrossOriginProtection()
		cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httperr.JSON(w, http.StatusForbidden, apiv1.Error{Error: "cross-origin request refused: the API takes requests from the CLI and scripts, not from web pages"})
		}))
		r.Use(cop.Handler, h.auth)
		r.Get("/deployments", h.listDeployments)
		r.Get("/deployments/{name}", h.getDeployment)
		r.Get("/deploys", h.listDeploys)
		r.Get("/deliveries", h.listDeliveries)
		r.Get("/deploys/{id}/logs", h.getLogs)
		r.Post("/deployments/{name}/deploy", h.postDeploy)
		r.Post("/deployments/{name}/rollback", h.postRollback)
		r.Post("/deployments/{name}/pause", h.postAction(control.Pause))
		r.Post("/deployments/{name}/resume", h.postAction(control.Resume))
		r.Post("/deployments/{name}/approve", h.postAction(control.Approve))
		r.Post("/deployments/{name}/reject", h.postAction(control.Reject))
		r.Post("/deployments/{name}/canary/promote", h.postCanary(control.CanaryPromote))
		r.Post("/deployments/{name}/canary/abort", h.postCanary(control.CanaryAbort))
		r.Get("/deployments/{name}/previews", h.listPreviews)
		r.Delete("/deployments/{name}/previews/{tag}", h.deletePreview)
		r.NotFound(httperr.NotFound)
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			httperr.JSON(w, http.StatusMethodNotAllowed, apiv1.Error{Error: "method not allowed"})
		})
	})
}

// fail answers err with its status: {"error": reason}. Internal errors
// are logged, not shown.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := httperr.Status(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		h.log.Error().Err(err).Str("route", accesslog.Route(r)).Msg("api: internal error")
		msg = "internal error"
	}
	httperr.Write(w, status, msg, "")
}

type principalKey struct{}

// auth lets through requests with a token of the config, and tells the
// handlers who it is. A missing and an unknown token get the same answer.
// With no API token configured the API does not exist (404).
func (h *Handler) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cat := h.catalogue()
		if cat == nil || !cat.APIEnabled() {
			httperr.NotFound(w, r)
			return
		}
		token, ok := bearer.Token(r)
		p, known := cat.APIAuth(token)
		if !ok || !known {
			h.fail(w, r, httperr.ErrUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func principal(r *http.Request) deployments.Principal {
	p, _ := r.Context().Value(principalKey{}).(deployments.Principal)
	return p
}

// target finds the route's deployment and checks the caller's scope on it.
func (h *Handler) target(r *http.Request, verb deployments.Verb) (*deployments.Deployment, error) {
	return h.svc.Target(principal(r), chi.URLParam(r, "name"), verb)
}

// --- reading ---

func (h *Handler) listDeployments(w http.ResponseWriter, r *http.Request) {
	if err := control.May(principal(r), deployments.VerbRead, ""); err != nil {
		h.fail(w, r, err)
		return
	}
	// A deployment whose engine does not answer is listed with why
	// (engine_error), beside those whose engine does: with several
	// engines, one away must not hide the others. Only when no engine
	// answered at all is the whole list a 503.
	out := []apiv1.Deployment{}
	answered := false
	var engineErr error
	for _, d := range h.catalogue().All() {
		v, _, err := h.svc.View(r.Context(), d)
		switch {
		case err == nil:
			answered = true
		case errors.Is(err, control.ErrUnavailable):
			engineErr = err
			msg := err.Error()
			v.EngineError = &msg
		default:
			h.fail(w, r, err)
			return
		}
		out = append(out, v)
	}
	if engineErr != nil && !answered {
		h.fail(w, r, engineErr)
		return
	}
	httperr.JSON(w, http.StatusOK, apiv1.Deployments{Deployments: out})
}

func (h *Handler) getDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := h.target(r, deployments.VerbRead)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, _, err := h.svc.View(r.Context(), d)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	recs, _, err := h.svc.ListDeploys(r.Context(), deploy.DeployQuery{Deployment: d.Name, Limit: historyShown})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httperr.JSON(w, http.StatusOK, apiv1.DeploymentDetail{Deployment: v, History: control.Deploys(recs)})
}

func (h *Handler) listDeploys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// A token without read may follow the deploys of one delivery in the
	// environments it may deploy or approve in: what a CI job that asked
	// for a deploy needs to wait for it.
	p := principal(r)
	readsAll := p.Can(deployments.VerbRead, "")
	if !readsAll && q.Get("delivery") == "" {
		h.fail(w, r, fmt.Errorf("%w: this token lacks scope %s (without it, deploys can be followed by delivery only)",
			control.ErrForbidden, deployments.Scope(deployments.VerbRead, "")))
		return
	}
	limit, before, err := page(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dq := deploy.DeployQuery{Deployment: q.Get("deployment"), Environment: q.Get("environment"),
		Outcome: q.Get("outcome"), Delivery: q.Get("delivery"), Limit: limit, Before: before}
	recs, next, err := h.svc.ListDeploys(r.Context(), dq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !readsAll {
		for _, rec := range recs {
			if !p.Can(deployments.VerbDeploy, rec.Environment) && !p.Can(deployments.VerbApprove, rec.Environment) {
				h.fail(w, r, fmt.Errorf("%w: this token lacks scope %s", control.ErrForbidden, deployments.Scope(deployments.VerbRead, "")))
				return
			}
		}
	}
	httperr.JSON(w, http.StatusOK, apiv1.Deploys{Deploys: control.Deploys(recs), Next: cursor(next)})
}

// getLogs answers the output of a deploy's backup and release commands,
// to a token with logs:<env> of the deploy's environment only.
func (h *Handler) getLogs(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, fmt.Errorf("%w: want a deploy id (a positive integer)", httperr.ErrBadRequest))
		return
	}
	logs, err := h.svc.Logs(r.Context(), principal(r), id)
	if errors.Is(err, deploy.ErrNotFound) {
		err = fmt.Errorf("%w: no deploy %d", httperr.ErrNotFound, id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httperr.JSON(w, http.StatusOK, logs)
}

func (h *Handler) listDeliveries(w http.ResponseWriter, r *http.Request) {
	if err := control.May(principal(r), deployments.VerbRead, ""); err != nil {
		h.fail(w, r, err)
		return
	}
	limit, before, err := page(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ds, next, err := h.svc.ListDeliveries(r.Context(), limit, before)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httperr.JSON(w, http.StatusOK, apiv1.Deliveries{Deliveries: control.Deliveries(ds), Next: cursor(next)})
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
			return 0, fmt.Errorf("%w: %s must be a positive integer", httperr.ErrBadRequest, k)
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
