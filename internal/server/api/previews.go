package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// listPreviews is GET /deployments/{name}/previews (read).
func (h *Handler) listPreviews(w http.ResponseWriter, r *http.Request) {
	d, err := h.target(r, deployments.VerbRead)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httperr.JSON(w, http.StatusOK, apiv1.Previews{Previews: h.svc.Previews(d)})
}

// deletePreview is DELETE /deployments/{name}/previews/{tag}
// (deploy:<env>): 200 once its route and containers are gone.
func (h *Handler) deletePreview(w http.ResponseWriter, r *http.Request) {
	d, err := h.target(r, deployments.VerbDeploy)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tag := chi.URLParam(r, "tag")
	if err := h.svc.RemovePreview(r.Context(), principal(r), d, tag); err != nil {
		h.fail(w, r, err)
		return
	}
	httperr.JSON(w, http.StatusOK, apiv1.PreviewRemoved{Removed: d.Name + "-" + tag})
}
