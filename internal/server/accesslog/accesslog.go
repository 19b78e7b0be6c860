// Package accesslog is the HTTP side's request log and panic guard, and
// what the handlers that log a request themselves (a webhook's one line)
// need of it. It logs chi's route pattern, never the path: a hook's path
// holds its secret token.
package accesslog

import (
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// Requests logs one line per request. It logs chi's route pattern, never
// the URL path: the path of a hook holds its secret token, and an unmatched
// path may be a mistyped hook URL. A handler that logs the request itself
// (a hook's "webhook" line) says so with MarkLogged, and then
// this line is left out: one line per delivery.
func Requests(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			aw := &accessWriter{ResponseWriter: w, start: time.Now()}
			next.ServeHTTP(aw, r)
			if aw.logged {
				return
			}

			route := Route(r)
			level := zerolog.InfoLevel
			switch {
			case aw.status >= 500:
				level = zerolog.WarnLevel
			case route == "/healthz" || route == "/readyz" || route == "/metrics":
				level = zerolog.DebugLevel // probes and scrapes would drown the rest
			}
			log.WithLevel(level).
				Str("method", r.Method).
				Str("route", route).
				Int("status", aw.Status()).
				Int("bytes", aw.bytes).
				Dur("duration", time.Since(aw.start)).
				Str("remote", r.RemoteAddr).
				Msg("http request")
		})
	}
}

// accessWriter is the ResponseWriter that Requests hands on: it notes
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

// MarkLogged tells Requests that the handler logged the request itself,
// and returns when Requests began with it (zero without Requests).
func MarkLogged(w http.ResponseWriter) (start time.Time) {
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

// Route is the pattern of the route r matched, or "(unmatched)".
func Route(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return "(unmatched)"
}

// Recoverer turns a panic in a handler into a logged 500; the daemon goes on.
func Recoverer(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler { // net/http's way to abort a response
					panic(v)
				}
				log.Error().
					Str("method", r.Method).
					Str("route", Route(r)).
					Interface("panic", v).
					Str("stack", string(debug.Stack())).
					Msg("http: handler panicked")
				if aw, ok := w.(*accessWriter); ok && aw.Status() != 0 {
					return // the answer has begun; the client sees a cut response
				}
				httperr.JSON(w, http.StatusInternalServerError, apiv1.Error{Error: "internal error"})
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// ClientIP keys a rate limit by the peer's address. Forwarding headers are
// not trusted: anyone could send them.
func ClientIP(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return httprate.CanonicalizeIP(host), nil
}
