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
func (s *Handler) limits() []func(http.Handler) http.Handler {
	var mws []func(http.Handler) http.Handler
	if s.rateLimit > 0 {
		mws = append(mws, httprate.LimitBy(s.rateLimit, time.Minute, accesslog.ClientIP,
			// Retry-After on a 429 only: the X-RateLimit-* headers on
			// every answer would tell a sender nothing it acts on, for
			// six allocations a delivery.
			httprate.WithResponseHeaders(httprate.ResponseHeaders{RetryAfter: "Retry-After"}),
			httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
				// httprate has set Retry-After.
				s.reject(w, r, httperr.ErrRateLimited)
			})))
	}
	return append(mws, s.limitConcurrency)
}

// limitConcurrency answers 503 when Concurrency deliveries are being
// served already, rather than queueing more.
func (s *Handler) limitConcurrency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.hookSem <- struct{}{}:
			defer func() { <-s.hookSem }()
			next.ServeHTTP(w, r)
		default:
			s.reject(w, r, errBusy)
		}
	})
}
