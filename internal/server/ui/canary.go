package ui

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// canaryAction is the Promote or Abort button of a canary release in
// progress: deploy:<env>, as the API's routes, and what they call.
func (h *Handler) canaryAction(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	var a control.Action
	switch chi.URLParam(r, "action") {
	case "promote":
		a = control.CanaryPromote
	case "abort":
		a = control.CanaryAbort
	default:
		h.errorPage(w, r, http.StatusNotFound, "There is no such button.")
		return
	}
	d, err := h.target(r, deployments.VerbDeploy)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	_, err = h.svc.EndCanary(r.Context(), d, principal(r).Name, a)
	text := fmt.Sprintf("Promoted the canary of %s: the new version gets all traffic.", d.Name)
	if a == control.CanaryAbort {
		text = fmt.Sprintf("Aborted the canary of %s: all traffic goes back to the old version.", d.Name)
	}
	f := flash{Text: text}
	if err != nil {
		f = flash{Text: h.errorText(r, err), Error: true}
	}
	sess := sessionOf(r)
	if sess == nil {
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httperr.Text(w, http.StatusOK, text)
		return
	}
	back := "/"
	if r.PostForm.Get("from") == "deployment" {
		back = "/deployments/" + url.PathEscape(d.Name)
	}
	h.sessions.setFlash(sess.id, f)
	http.Redirect(w, r, back, http.StatusSeeOther)
}
