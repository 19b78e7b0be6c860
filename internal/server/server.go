// Package server assembles liftoff's HTTP side: the chi router and its
// middleware, the webhooks (package webhooks), the management API under
// /api/v1 (package api) and the status page over the same tokens (package
// ui), both over one control.Service, and /healthz, /readyz, /metrics and
// /-/reload. It serves them on the listeners the daemon opens: Serve,
// ServeAPI and ServeMetrics.
//
// The server knows the catalogue and the deploy engine only through small
// interfaces, so a config reload can swap the catalogue between two
// requests and tests can use fakes.
package server

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/api"
	"github.com/liftoff-deploy/liftoff/internal/server/ui"
	"github.com/liftoff-deploy/liftoff/internal/server/webhooks"
)

// Catalogue is the configuration in force as the HTTP side reads it:
// what the webhooks, the API and the page each declare they need.
// *deployments.Config implements it.
type Catalogue interface {
	webhooks.Catalogue
	api.Catalogue
	ui.Catalogue
	control.Catalogue
}

var _ Catalogue = (*deployments.Config)(nil)

// Health tells which deployments are down: a rollback or a repair could not
// leave them with a container that passes its health gate.
type Health interface {
	Down() map[string]error
}

// Pinger tells whether the container engine answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Defaults for the zero values of Options.
const (
	DefaultMaxBody         = webhooks.DefaultMaxBody     // bytes of a webhook body
	DefaultHookRateLimit   = deployments.DefaultHookRate // hook requests a minute per client IP
	DefaultHookConcurrency = webhooks.DefaultConcurrency // hook requests served at once
	DefaultShutdownTimeout = 10 * time.Second
	readyTimeout           = 2 * time.Second
)

// Options configure a Server. Catalogue is required, and a Deployer or a
// DeployEngine.
type Options struct {
	// Catalogue returns the configuration in force, or an untyped nil while
	// none is loaded (a nil *deployments.Config in a Catalogue is not nil).
	// It is called once per request, so a reload may swap what it returns.
	Catalogue func() Catalogue
	// Deployer queues the deploys of webhook deliveries; nil means the
	// DeployEngine.
	Deployer webhooks.Deployer
	// Pinger is asked by /readyz; nil leaves the engine out of readiness.
	Pinger Pinger
	// Engines are the container engines by name, for liftoff driving
	// several: /readyz asks each (and Pinger, if set, too) at once, and
	// names each one that does not answer.
	Engines map[string]Pinger
	// Health is asked by /readyz; nil means the DeployEngine, and without
	// one leaves the deployments out of it.
	Health Health
	// DeployEngine (the deploy engine, not a Docker one: those are
	// Engines) and History serve the management API under /api/v1 and the
	// status page (/, /login, /deployments/...) through a
	// control.Service; without both there is neither. Both also need API
	// tokens in the configuration: without one their routes are 404. The
	// DeployEngine is also the Deployer and the Health unless those are
	// set: the daemon passes its engine once.
	DeployEngine control.Engine
	History      control.History
	// Polls says what the registry polls did, for the API and the page;
	// nil when nothing is polled.
	Polls control.Polls
	// APIElsewhere leaves /api and the status page off Handler, for a
	// config that serves them on their own listener (ServeAPI).
	APIElsewhere bool

	Logger zerolog.Logger
	// Registerer receives liftoff_webhooks_total; nil means a private
	// registry. Gatherer serves /metrics; nil means the Registerer when it is
	// also a Gatherer, else /metrics is not served.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer

	// MaxBody limits a webhook body (0: DefaultMaxBody); larger is 413.
	MaxBody int64
	// HookRateLimit is the number of /hooks requests a minute allowed to one
	// client IP (r.RemoteAddr; forwarding headers are not trusted); beyond
	// it the answer is 429 with Retry-After. As hook_rate_limit in the
	// config: 0 means DefaultHookRateLimit, and -1 (any negative) turns the
	// limit off.
	HookRateLimit int
	// HookConcurrency caps the /hooks requests served at once
	// (0: DefaultHookConcurrency); beyond it the answer is 503.
	HookConcurrency int
	// ShutdownTimeout bounds the graceful shutdown of Serve
	// (0: DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	// OnDelivery, if set, is told of every webhook delivery answered 202
	// and of every API request that acted (the history records them). It
	// must not block.
	OnDelivery func(deploy.Delivery)
	// Reload, if set, is POST /-/reload: it reloads the configuration.
	// Only loopback clients may call it.
	Reload func() error
	// MetricsElsewhere leaves /metrics off Handler, for a config that serves
	// it on its own listener (ServeMetrics).
	MetricsElsewhere bool
}

// Server routes liftoff's HTTP interface. It is safe for concurrent use.
type Server struct {
	catalogue       func() Catalogue
	pinger          Pinger
	engines         map[string]Pinger
	health          Health
	hooks           *webhooks.Handler
	api             *api.Handler // nil without a DeployEngine and a History
	ui              *ui.Handler  // as api
	apiOnMain       bool
	log             zerolog.Logger
	gatherer        prometheus.Gatherer
	shutdownTimeout time.Duration
	reload          func() error
	metricsOnMain   bool
	router          chi.Router
}

// New returns a Server for opts. It panics if opts lack a Catalogue or a
// Deployer (or DeployEngine), or if its metrics clash with different ones
// on the Registerer: both are wiring mistakes.
func New(opts Options) *Server {
	if opts.DeployEngine != nil {
		if opts.Deployer == nil {
			opts.Deployer = opts.DeployEngine
		}
		if opts.Health == nil {
			opts.Health = opts.DeployEngine
		}
	}
	if opts.Catalogue == nil || opts.Deployer == nil {
		panic("server.New: Options.Catalogue and Options.Deployer (or DeployEngine) are required")
	}
	s := &Server{
		catalogue:       opts.Catalogue,
		pinger:          opts.Pinger,
		engines:         opts.Engines,
		health:          opts.Health,
		apiOnMain:       !opts.APIElsewhere,
		log:             opts.Logger,
		gatherer:        opts.Gatherer,
		shutdownTimeout: opts.ShutdownTimeout,
		reload:          opts.Reload,
		metricsOnMain:   !opts.MetricsElsewhere,
	}
	if s.shutdownTimeout <= 0 {
		s.shutdownTimeout = DefaultShutdownTimeout
	}
	reg := opts.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
		if s.gatherer == nil {
			s.gatherer = r
		}
	}
	if s.gatherer == nil {
		s.gatherer, _ = reg.(prometheus.Gatherer)
	}
	rateLimit := opts.HookRateLimit
	switch {
	case rateLimit == 0:
		rateLimit = DefaultHookRateLimit
	case rateLimit < 0:
		rateLimit = 0 // no limit
	}
	s.hooks = webhooks.New(webhooks.Options{
		Catalogue:   func() webhooks.Catalogue { return opts.Catalogue() },
		Deployer:    opts.Deployer,
		Logger:      opts.Logger,
		Registerer:  reg,
		MaxBody:     opts.MaxBody,
		RateLimit:   rateLimit,
		Concurrency: opts.HookConcurrency,
		Now:         opts.Now,
		OnDelivery:  opts.OnDelivery,
	})
	if opts.DeployEngine != nil && opts.History != nil {
		svc := control.New(control.Options{
			Engine:     opts.DeployEngine,
			History:    opts.History,
			Polls:      opts.Polls,
			Catalogue:  func() control.Catalogue { return opts.Catalogue() },
			Logger:     opts.Logger,
			Now:        opts.Now,
			OnDelivery: opts.OnDelivery,
		})
		s.api = api.New(svc, func() api.Catalogue { return opts.Catalogue() }, opts.Logger)
		s.ui = ui.New(svc, func() ui.Catalogue { return opts.Catalogue() }, opts.Logger)
	}
	s.router = s.routes()
	return s
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.router }

// SetDraining makes /hooks answer 503 (so that senders retry later) and
// /readyz fail while on is true. Serve turns it on when its context ends;
// call it earlier to stop taking deliveries before the deploy engine stops.
func (s *Server) SetDraining(on bool) { s.hooks.SetDraining(on) }

// Serve serves Handler on ln until ctx is done, then drains and shuts down
// gracefully, waiting at most ShutdownTimeout for requests in flight. It
// returns nil after a clean shutdown. For HTTPS pass a tls.NewListener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.router, true)
}

// ServeAPI serves only the management API, the status page and /healthz
// on ln, for a separate API listener, with the lifecycle of Serve.
func (s *Server) ServeAPI(ctx context.Context, ln net.Listener) error {
	r := s.newRouter()
	r.Get("/healthz", s.healthz)
	if s.api != nil {
		s.api.Routes(r)
		s.ui.Routes(r)
	}
	return s.serve(ctx, ln, r, false)
}

// ServeMetrics serves only /metrics on ln, for a separate metrics listener,
// with the lifecycle of Serve.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	r := s.newRouter()
	if s.gatherer != nil {
		r.Method(http.MethodGet, "/metrics", s.metricsHandler())
	}
	return s.serve(ctx, ln, r, false)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler, drain bool) error {
	hs := &http.Server{
		Handler: h,
		// Hooks are small and answered at once; these bound slow or idle
		// clients, not our work.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdlog.New(s.log.With().Str("component", "http").Logger(), "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("http: serving")
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	if drain {
		s.SetDraining(true)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		hs.Close()
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	s.log.Info().Str("addr", ln.Addr().String()).Msg("http: stopped")
	return nil
}
