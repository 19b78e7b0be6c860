package daemon

import (
	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// recordDelivery hands an accepted delivery to the recorder goroutine,
// which writes it to the history without holding up the webhook's answer
// (the deploy requests themselves are journaled before the answer, by the
// engine). A full queue drops the record, never the answer. A delivery
// that concerns no deployment is kept in memory only (history's
// KeepDelivery): an image no deployment uses, or a signature tag.
func (a *Daemon) recordDelivery(d deploy.Delivery) {
	if !concernsDeployment(d) {
		a.history.KeepDelivery(d)
		return
	}
	a.deliveries.Record(d) // after Run, nothing: a handler outlived the shutdown
}

// concernsDeployment tells whether d queued a deploy or was turned away by
// a deployment (its tag rules, a pause, an approval): those are written to
// the history. The others name no deployment: their image is none's, or
// their tag is a signature's.
func concernsDeployment(d deploy.Delivery) bool {
	if len(d.Accepted) > 0 {
		return true
	}
	for _, ig := range d.Ignored {
		if ig.Deployment != "" {
			return true
		}
	}
	return false
}
