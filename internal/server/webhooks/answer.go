package webhooks

import (
	"net/http"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// The header values of a 202, shared by every answer: net/http only reads
// them, and Header.Set or Add would replace them rather than write into
// them.
var (
	headerJSON    = []string{"application/json"}
	headerNosniff = []string{"nosniff"}
)

// writeAnswer answers status (202, or 200 for a ping or a redelivery)
// {"delivery", "accepted", "pending", "held", "ignored"[, "redelivery"]}: the delivery's
// id and counts, as httperr.JSON would (apiv1's TestAnswerJSON), without
// its reflection. The answer names no deployment, tag rule or reason:
// whoever holds the hook token learns nothing of the config from it; the
// reasons are in the log, the history and the API.
func writeAnswer(w http.ResponseWriter, status int, d *delivery) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["X-Content-Type-Options"] = headerNosniff
	w.WriteHeader(status)
	w.Write(d.answer().AppendJSON(make([]byte, 0, 128)))
}

// answer of d: its id, the deployments queued, awaiting approval and
// held, and every other deployment or tag not deployed.
func (d *delivery) answer() apiv1.HookAnswer {
	return apiv1.HookAnswer{Delivery: d.id, Accepted: len(d.accepted), Pending: d.pending, Held: d.held,
		Ignored: len(d.ignored) - d.pending - d.held, Redelivery: d.redelivery}
}
