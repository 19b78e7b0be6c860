package server

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/liftoff-deploy/liftoff/internal/server/accesslog"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// routes builds the router of Handler: every route but those of a
// listener of their own (APIElsewhere, MetricsElsewhere).
func (s *Server) routes() chi.Router {
	r := s.newRouter()
	r.Get("/healthz", s.healthz)
	r.With(noRebinding).Get("/readyz", s.readyz)
	if s.gatherer != nil && s.metricsOnMain {
		r.With(noRebinding).Method(http.MethodGet, "/metrics", s.metricsHandler())
	}
	if s.reload != nil {
		r.With(crossOrigin).Post("/-/reload", s.handleReload)
	}
	if s.api != nil && s.apiOnMain {
		s.api.Routes(r)
		s.ui.Routes(r) // the status page goes where the API goes
	}
	s.hooks.Routes(r)
	return r
}

// newRouter is a router with the access log and the panic guard, that
// answers unknown paths as unknown hook tokens are answered.
func (s *Server) newRouter() chi.Router {
	r := chi.NewRouter()
	r.Use(accesslog.Requests(s.log), accesslog.Recoverer(s.log))
	r.NotFound(httperr.NotFound)
	return r
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
}

// healthz tells that the process serves HTTP at all.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	httperr.Text(w, http.StatusOK, "ok")
}

// readyz tells whether deliveries can be acted on and everything runs: a
// configuration is loaded, the server is not draining, every container
// engine answers (each that does not is named), and no deployment is down
// (each is named, with why).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.hooks.Draining():
		httperr.Text(w, http.StatusServiceUnavailable, "not ready: draining")
		return
	case s.catalogue() == nil:
		httperr.Text(w, http.StatusServiceUnavailable, "not ready: no configuration loaded")
		return
	}
	var problems []string
	if p := s.pingEngines(r.Context()); p != "" {
		problems = append(problems, p)
	}
	if s.health != nil {
		if down := s.health.Down(); len(down) > 0 {
			var b strings.Builder
			b.WriteString("deployments down (no container passes its health gate):")
			for _, name := range slices.Sorted(maps.Keys(down)) {
				fmt.Fprintf(&b, "\n%s: %v", name, down[name])
			}
			problems = append(problems, b.String())
		}
	}
	if len(problems) > 0 {
		httperr.Text(w, http.StatusServiceUnavailable, "not ready: "+strings.Join(problems, "\n"))
		return
	}
	httperr.Text(w, http.StatusOK, "ok")
}

// pingEngines pings Pinger and every engine at once, each bounded by
// readyTimeout, and says which do not answer ("" when all do).
func (s *Server) pingEngines(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		single error
		failed = map[string]error{}
	)
	if s.pinger != nil {
		wg.Go(func() {
			err := s.pinger.Ping(ctx)
			mu.Lock()
			single = err
			mu.Unlock()
		})
	}
	for name, p := range s.engines {
		wg.Go(func() {
			if err := p.Ping(ctx); err != nil {
				mu.Lock()
				failed[name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var b strings.Builder
	if single != nil {
		b.WriteString("container engine: " + single.Error())
	}
	if len(failed) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("container engines not answering:")
		for _, name := range slices.Sorted(maps.Keys(failed)) {
			fmt.Fprintf(&b, "\nengine %q: not answering (%v)", name, failed[name])
		}
	}
	return b.String()
}

// handleReload reloads the configuration. It is open to loopback clients
// only, without a token: whoever can reach liftoff from elsewhere must not
// make it reread its files. The Host must be a loopback name too, so that
// a page of another site that a browser on the host resolves to 127.0.0.1
// (DNS rebinding) cannot call it either; crossOrigin refuses a page's
// cross-site POST.
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		httperr.JSON(w, http.StatusForbidden, map[string]string{"error": "reload is allowed from loopback only (or send SIGHUP)"})
		return
	}
	if !loopbackHost(r) {
		httperr.JSON(w, http.StatusForbidden, map[string]string{"error": "reload answers only a loopback Host: POST http://127.0.0.1:<port>/-/reload or http://localhost:<port>/-/reload (or send SIGHUP)"})
		return
	}
	if err := s.reload(); err != nil {
		httperr.JSON(w, http.StatusBadRequest, map[string]string{"error": "configuration kept: " + err.Error()})
		return
	}
	httperr.JSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}
