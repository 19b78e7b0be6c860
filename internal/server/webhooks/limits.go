package webhooks

import (
	"net/http"
	"time"

	"github.com/go-chi/httprate"

	"github.com/liftoff-deploy/liftoff/internal/server/accesslog"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// limits guard /hooks: a per-client rate limit and a cap on deliveries
// served at once.
func (h *Handler) limits() []func(http.Handler) http.Handler {
	var mws []func(http.Handler) http.Handler
	if h.rateLimit > 0 {
		mws = append(mws, httprate.LimitBy(h.rateLimit, time.Minute, accesslog.ClientIP,
			// Retry-After on a 429 only: the X-RateLimit-* headers on
			// every answer would tell a sender nothing it acts on, for
			// six allocations a delivery.
			httprate.WithResponseHeaders(httprate.ResponseHeaders{RetryAfter: "Retry-After"}),
			httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
				// httprate has set Retry-After.
				h.reject(w, r, httperr.ErrRateLimited)
			})))
	}
	return append(mws, h.limitConcurrency)
}

// limitConcurrency answers 503 when Concurrency deliveries are being
// served already, rather than queueing more.
func (h *Handler) limitConcurrency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case h.hookSem <- struct{}{}:
			defer func() { <-h.hookSem }()
			next.ServeHTTP(w, r)
		default:
			h.reject(w, r, errBusy)
		}
	})
}
