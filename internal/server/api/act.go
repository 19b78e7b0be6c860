package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// maxBody bounds the body of an API request.
const maxBody = 64 << 10

// Grammar of what POST .../deploy takes: Docker's tag grammar, and a
// sha256 digest.
var (
	tagGrammar    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestGrammar = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// decode reads a JSON body into v: at most maxBody bytes, no unknown
// fields, nothing after it. An empty body is an empty object.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: over %d bytes", httperr.ErrTooLarge, maxBody)
	case err != nil:
		return fmt.Errorf("%w: reading body: %v", httperr.ErrBadRequest, err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", httperr.ErrBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value", httperr.ErrBadRequest)
	}
	return nil
}

// postDeploy deploys a tag or a digest: 202 with the delivery that
// follows it.
func (h *Handler) postDeploy(w http.ResponseWriter, r *http.Request) {
	d, err := h.target(r, control.Deploy.Verb())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var body apiv1.DeployRequest
	if err := decode(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	switch {
	case (body.Tag == "") == (body.Digest == ""):
		err = fmt.Errorf(`%w: give either "tag" or "digest"`, httperr.ErrBadRequest)
	case h.catalogue().IsToken(body.Tag):
		// Neither deployed, logged nor echoed: a token pasted into the
		// wrong field.
		err = fmt.Errorf(`%w: "tag" is one of liftoff's tokens: refused`, httperr.ErrBadRequest)
	case body.Tag != "" && !tagGrammar.MatchString(body.Tag):
		err = fmt.Errorf("%w: %q is not a valid tag (Docker's grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", httperr.ErrBadRequest, body.Tag)
	case body.Digest != "" && !digestGrammar.MatchString(body.Digest):
		err = fmt.Errorf("%w: %q is not a sha256 digest (sha256: and 64 lowercase hex digits)", httperr.ErrBadRequest, body.Digest)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id, err := h.svc.Deploy(r.Context(), d, principal(r).Name, body.Tag, body.Digest)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httperr.JSON(w, http.StatusAccepted, apiv1.Enqueued{Delivery: id, Deployment: d.Name, Tag: body.Tag, Digest: body.Digest})
}

// postRollback goes back to a deploy that succeeded: 202 with the delivery
// that follows it and the deploy it goes back to.
func (h *Handler) postRollback(w http.ResponseWriter, r *http.Request) {
	d, err := h.target(r, control.Rollback.Verb())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var body apiv1.RollbackRequest
	if err := decode(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	to, id, err := h.svc.Rollback(r.Context(), d, principal(r).Name, body.To)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httperr.JSON(w, http.StatusAccepted, apiv1.Enqueued{Delivery: id, Deployment: d.Name, Tag: to.Tag, Digest: to.Digest,
		RollbackTo: to.ID})
}

// postAction pauses, resumes, approves or rejects. A pause or a resume
// answers 200 with the deployment, and for a resume the push it sent on
// (held meanwhile): where it went. An approval answers 202 (the push
// deploys) and a rejection 200, with the push's delivery.
func (h *Handler) postAction(a control.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := h.target(r, a.Verb())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if a == control.Approve || a == control.Reject {
			h.decided(w, r, a, d)
			return
		}
		if err := decode(w, r, &struct{}{}); err != nil {
			h.fail(w, r, err)
			return
		}
		actor := principal(r).Name
		var held *deploy.Request
		switch a {
		case control.Pause:
			err = h.svc.Pause(r.Context(), d, actor)
		case control.Resume:
			held, err = h.svc.Resume(r.Context(), d, actor)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		// Done: the answer says so even when the container engine does
		// not answer now (what runs is then unknown: engine_error says
		// why), as the list does.
		v, _, err := h.svc.View(r.Context(), d)
		if errors.Is(err, control.ErrUnavailable) {
			msg := err.Error()
			v.EngineError = &msg
		} else if err != nil {
			h.fail(w, r, err)
			return
		}
		out := apiv1.Acted{Deployment: v}
		if held != nil {
			out.Resumed = &apiv1.Resumed{Delivery: held.Delivery, Tag: held.Tag, Digest: held.Digest, State: string(held.State)}
		}
		httperr.JSON(w, http.StatusOK, out)
	}
}

// decided approves or rejects the pending push of d (its scope checked)
// that the body names, and answers it.
func (h *Handler) decided(w http.ResponseWriter, r *http.Request, a control.Action, d *deployments.Deployment) {
	var body apiv1.DecideRequest
	if err := decode(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	var err error
	switch {
	case body.Request <= 0:
		err = fmt.Errorf(`%w: give "request": the id of the push awaiting approval (pending.request in GET /api/v1/deployments/{name})`, httperr.ErrBadRequest)
	case body.Digest != "" && !digestGrammar.MatchString(body.Digest):
		err = fmt.Errorf(`%w: "digest" is not a sha256 digest (sha256: and 64 lowercase hex digits)`, httperr.ErrBadRequest)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	decide, status, outcome := h.svc.Approve, http.StatusAccepted, "queued"
	if a == control.Reject {
		decide, status, outcome = h.svc.Reject, http.StatusOK, string(deploy.Rejected)
	}
	push, err := decide(r.Context(), d, principal(r).Name, deploy.Decision{Request: body.Request, Digest: body.Digest})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httperr.JSON(w, status, apiv1.Decided{Request: push.ID, Delivery: push.Delivery, Deployment: d.Name, Tag: push.Tag,
		Digest: push.Digest, Outcome: outcome})
}
