package server

import (
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"
	"github.com/rs/zerolog"
)

// logRequests logs one line per request. It logs chi's route pattern, never
// the URL path: the path of a hook holds its secret token, and an unmatched
// path may be a mistyped hook URL.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)

		route := routePattern(r)
		level := zerolog.InfoLevel
		switch {
		case ww.Status() >= 500:
			level = zerolog.WarnLevel
		case route == "/healthz" || route == "/readyz" || route == "/metrics":
			level = zerolog.DebugLevel // probes and scrapes would drown the rest
		}
		s.log.WithLevel(level).
			Str("method", r.Method).
			Str("route", route).
			Int("status", ww.Status()).
			Int("bytes", ww.BytesWritten()).
			Dur("duration", time.Since(start)).
			Str("remote", r.RemoteAddr).
			Msg("http request")
	})
}

// routePattern is the pattern of the route r matched, or "(unmatched)".
func routePattern(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return "(unmatched)"
}

// recoverer turns a panic in a handler into a logged 500; the daemon goes on.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's way to abort a response
				panic(v)
			}
			s.log.Error().
				Str("method", r.Method).
				Str("route", routePattern(r)).
				Interface("panic", v).
				Str("stack", string(debug.Stack())).
				Msg("http: handler panicked")
			if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
				return // the answer has begun; the client sees a cut response
			}
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// hookLimits guard /hooks: a per-client rate limit and a cap on deliveries
// served at once.
func (s *Server) hookLimits() []func(http.Handler) http.Handler {
	var mws []func(http.Handler) http.Handler
	if s.rateLimit > 0 {
		mws = append(mws, httprate.LimitBy(s.rateLimit, time.Minute, clientIP,
			httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
				// httprate has set Retry-After.
				s.reject(w, r, errRateLimited)
			})))
	}
	return append(mws, s.limitConcurrency)
}

// clientIP keys the rate limit by the peer's address. Forwarding headers are
// not trusted: anyone could send them.
func clientIP(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return httprate.CanonicalizeIP(host), nil
}

// limitConcurrency answers 503 when HookConcurrency deliveries are being
// served already, rather than queueing more.
func (s *Server) limitConcurrency(next http.Handler) http.Handler {
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
