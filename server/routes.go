package server

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes builds the router. Middleware that must see the {source} of a hook
// (rate limit, concurrency cap) is mounted inline with With, which runs after
// routing.
func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.logRequests, s.recoverer)
	r.NotFound(notFound)

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	if s.gatherer != nil && s.metricsOnMain {
		r.Method(http.MethodGet, "/metrics", s.metricsHandler())
	}
	if s.reload != nil {
		r.Post("/-/reload", s.handleReload)
	}
	if s.engine != nil && s.history != nil && s.apiOnMain {
		s.apiRoutes(r)
		s.uiRoutes(r) // the status page goes where the API goes
	}
	hooks := r.With(s.hookLimits()...)
	hooks.Post("/hooks/{source}/{token}", s.hook)
	// A hook URL pasted with a trailing slash works too.
	hooks.Post("/hooks/{source}/{token}/", s.hook)
	return r
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
}

// healthz tells that the process serves HTTP at all.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

// readyz tells whether deliveries can be acted on and everything runs: a
// configuration is loaded, the server is not draining, the container engine
// answers, and no deployment is down (each is named, with why).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.draining.Load():
		writeText(w, http.StatusServiceUnavailable, "not ready: draining")
		return
	case s.catalogue() == nil:
		writeText(w, http.StatusServiceUnavailable, "not ready: no configuration loaded")
		return
	}
	if s.pinger != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.pinger.Ping(ctx); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: container engine: "+err.Error())
			return
		}
	}
	if s.health != nil {
		if down := s.health.Down(); len(down) > 0 {
			var b strings.Builder
			b.WriteString("not ready: deployments down (no container passes its health gate):")
			for _, name := range slices.Sorted(maps.Keys(down)) {
				fmt.Fprintf(&b, "\n%s: %v", name, down[name])
			}
			writeText(w, http.StatusServiceUnavailable, b.String())
			return
		}
	}
	writeText(w, http.StatusOK, "ok")
}

// handleReload reloads the configuration. It is open to loopback clients
// only, without a token: whoever can reach liftoff from elsewhere must not
// make it reread its files.
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "reload is allowed from loopback only (or send SIGHUP)"})
		return
	}
	if err := s.reload(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "configuration kept: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}
