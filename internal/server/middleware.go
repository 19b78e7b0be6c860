package server

import (
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// logRequests logs one line per request. It logs chi's route pattern, never
// the URL path: the path of a hook holds its secret token, and an unmatched
// path may be a mistyped hook URL. A handler that logs the request itself
// (a hook's "webhook" line, see finish) says so with markLogged, and then
// this line is left out: one line per delivery.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aw := &accessWriter{ResponseWriter: w, start: time.Now()}
		next.ServeHTTP(aw, r)
		if aw.logged {
			return
		}

		route := routePattern(r)
		level := zerolog.InfoLevel
		switch {
		case aw.status >= 500:
			level = zerolog.WarnLevel
		case route == "/healthz" || route == "/readyz" || route == "/metrics":
			level = zerolog.DebugLevel // probes and scrapes would drown the rest
		}
		s.log.WithLevel(level).
			Str("method", r.Method).
			Str("route", route).
			Int("status", aw.Status()).
			Int("bytes", aw.bytes).
			Dur("duration", time.Since(aw.start)).
			Str("remote", r.RemoteAddr).
			Msg("http request")
	})
}

// accessWriter is the ResponseWriter that logRequests hands on: it notes
// the status and size of the answer, and whether the handler logged the
// request itself.
type accessWriter struct {
	http.ResponseWriter
	start  time.Time
	status int // 0 until the header is written
	bytes  int
	logged bool
}

// Status is the status answered, 0 if none yet.
func (w *accessWriter) Status() int { return w.status }

func (w *accessWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: the answer is still to come
		return
	}
	if w.status == 0 {
		w.status = code
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Flush flushes the answer, if the ResponseWriter underneath can.
func (w *accessWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the ResponseWriter underneath.
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// markLogged tells logRequests that the handler logged the request itself,
// and returns when logRequests began with it (zero without logRequests).
func markLogged(w http.ResponseWriter) (start time.Time) {
	for {
		switch x := w.(type) {
		case *accessWriter:
			x.logged = true
			return x.start
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return time.Time{}
		}
	}
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
			if aw, ok := w.(*accessWriter); ok && aw.Status() != 0 {
				return // the answer has begun; the client sees a cut response
			}
			writeJSON(w, http.StatusInternalServerError, apiv1.Error{Error: "internal error"})
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
			// Retry-After on a 429 only: the X-RateLimit-* headers on
			// every answer would tell a sender nothing it acts on, for
			// six allocations a delivery.
			httprate.WithResponseHeaders(httprate.ResponseHeaders{RetryAfter: "Retry-After"}),
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
