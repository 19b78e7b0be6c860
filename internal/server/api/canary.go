package api

import (
	"net/http"
	"strings"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// postCanary promotes or aborts the deployment's canary in progress
// (deploy:<env>): 202, as the deploy it is part of then ends (promoted:
// switched and cleaned up; aborted: rolled back); 409 when none runs.
func (h *Handler) postCanary(a control.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := h.target(r, deployments.VerbDeploy)
		if err == nil {
			err = decode(w, r, &struct{}{})
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		delivery, err := h.svc.EndCanary(r.Context(), d, principal(r).Name, a)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httperr.JSON(w, http.StatusAccepted, apiv1.CanaryEnded{Deployment: d.Name,
			Action: strings.TrimPrefix(string(a), "canary/"), Delivery: delivery})
	}
}
