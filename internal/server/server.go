// Package server is liftoff's HTTP side: the chi router and its middleware,
// one file per webhook source, the management API under /api/v1 (api.go),
// the status page over the same tokens (ui.go), /healthz, /readyz and
// /metrics.
//
// A webhook is authenticated by the secret token in its URL before its body is
// read, parsed, matched against the catalogue and turned into deploy requests;
// the handler answers 202 as soon as they are queued and never waits for a
// deploy. The server knows the catalogue and the deploy engine only through the
// small interfaces below, so a config reload can swap the catalogue between two
// requests and tests can use fakes.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Catalogue is what the server needs of the loaded configuration;
// *deployments.Config implements it.
type Catalogue interface {
	// Match returns the deployments a push of repo:tag updates.
	Match(repo, tag string) deployments.MatchResult
	// HookAuth tells, in constant time, whether token belongs to source.
	HookAuth(source, token string) bool

	// For the management API: who an API token acts as (in constant
	// time), whether any is configured, and the deployments.
	APIAuth(token string) (deployments.Principal, bool)
	// APIAuthSum is APIAuth for the SHA-256 sum of a token: what a
	// session of the status page keeps.
	APIAuthSum(sum [sha256.Size]byte) (deployments.Principal, bool)
	APIEnabled() bool
	// PublicHTTPS: the status page is reached over HTTPS (public_url),
	// maybe through a proxy that terminates TLS.
	PublicHTTPS() bool
	Deployment(name string) *deployments.Deployment
	All() []*deployments.Deployment
}

var _ Catalogue = (*deployments.Config)(nil)

// Deployer queues deploys. The webhook handler calls Enqueue with the
// requests of one delivery while the sender waits for its answer: it may
// record them durably (the engine's journal) but must never wait for a
// deploy. It fails with deploy.ErrClosed once deploys are no longer taken
// (shutting down), or when the requests could not be recorded; either way
// nothing was queued.
type Deployer interface {
	Enqueue(ctx context.Context, rs ...deploy.Request) ([]deploy.Disposition, error)
}

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
	DefaultMaxBody         = 1 << 20                     // bytes of a webhook body
	DefaultHookRateLimit   = deployments.DefaultHookRate // hook requests a minute per client IP
	DefaultHookConcurrency = 64                          // hook requests served at once
	DefaultShutdownTimeout = 10 * time.Second
	readyTimeout           = 2 * time.Second
)

// Options configure a Server. Catalogue and Deployer are required.
type Options struct {
	// Catalogue returns the configuration in force, or an untyped nil while
	// none is loaded (a nil *deployments.Config in a Catalogue is not nil).
	// It is called once per request, so a reload may swap what it returns.
	Catalogue func() Catalogue
	Deployer  Deployer
	// Pinger is asked by /readyz; nil leaves the engine out of readiness.
	Pinger Pinger
	// Engines are the container engines by name, for liftoff driving
	// several: /readyz asks each (and Pinger, if set, too) at once, and
	// names each one that does not answer.
	Engines map[string]Pinger
	// Health is asked by /readyz; nil leaves the deployments out of it.
	Health Health
	// Engine and History serve the management API under /api/v1 and the
	// status page (/, /login, /deployments/...); without both there is
	// neither. Both also need API tokens in the configuration: without
	// one their routes are 404.
	Engine  Engine
	History History
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
	deployer        Deployer
	pinger          Pinger
	engines         map[string]Pinger
	health          Health
	engine          Engine
	history         History
	apiOnMain       bool
	log             zerolog.Logger
	gatherer        prometheus.Gatherer
	metrics         *metrics
	maxBody         int64
	rateLimit       int // requests a minute per client IP; 0: no limit
	hookSem         chan struct{}
	shutdownTimeout time.Duration
	now             func() time.Time
	sources         map[string]parser
	draining        atomic.Bool
	onDelivery      func(deploy.Delivery)
	reload          func() error
	metricsOnMain   bool
	sessions        *sessions // of the status page
	router          chi.Router
}

// New returns a Server for opts. It panics if opts lack a Catalogue or a
// Deployer, or if its metrics clash with different ones on the Registerer:
// both are wiring mistakes.
func New(opts Options) *Server {
	if opts.Catalogue == nil || opts.Deployer == nil {
		panic("server.New: Options.Catalogue and Options.Deployer are required")
	}
	s := &Server{
		catalogue:       opts.Catalogue,
		deployer:        opts.Deployer,
		pinger:          opts.Pinger,
		engines:         opts.Engines,
		health:          opts.Health,
		engine:          opts.Engine,
		history:         opts.History,
		apiOnMain:       !opts.APIElsewhere,
		log:             opts.Logger,
		gatherer:        opts.Gatherer,
		maxBody:         opts.MaxBody,
		rateLimit:       opts.HookRateLimit,
		shutdownTimeout: opts.ShutdownTimeout,
		now:             opts.Now,
		onDelivery:      opts.OnDelivery,
		reload:          opts.Reload,
		metricsOnMain:   !opts.MetricsElsewhere,
		sessions:        newSessions(),
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	switch {
	case s.rateLimit == 0:
		s.rateLimit = DefaultHookRateLimit
	case s.rateLimit < 0:
		s.rateLimit = 0 // no limit
	}
	concurrency := opts.HookConcurrency
	if concurrency <= 0 {
		concurrency = DefaultHookConcurrency
	}
	s.hookSem = make(chan struct{}, concurrency)
	if s.shutdownTimeout <= 0 {
		s.shutdownTimeout = DefaultShutdownTimeout
	}
	if s.now == nil {
		s.now = time.Now
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
	// One parser per source of deployments.HookSources, and no other.
	normalize := newRepoCache().normalize
	s.sources = map[string]parser{
		deployments.SourceDockerHub: func(body []byte) (push, error) { return parseDockerHubWith(body, normalize) },
	}
	s.metrics = newMetrics(reg, s.sources)
	s.router = s.routes()
	return s
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.router }

// SetDraining makes /hooks answer 503 (so that senders retry later) and
// /readyz fail while on is true. Serve turns it on when its context ends;
// call it earlier to stop taking deliveries before the deploy engine stops.
func (s *Server) SetDraining(on bool) { s.draining.Store(on) }

// Serve serves Handler on ln until ctx is done, then drains and shuts down
// gracefully, waiting at most ShutdownTimeout for requests in flight. It
// returns nil after a clean shutdown. For HTTPS pass a tls.NewListener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.router, true)
}

// ServeAPI serves only the management API, the status page and /healthz
// on ln, for a separate API listener, with the lifecycle of Serve.
func (s *Server) ServeAPI(ctx context.Context, ln net.Listener) error {
	r := chi.NewRouter()
	r.Use(s.logRequests, s.recoverer)
	r.NotFound(notFound)
	r.Get("/healthz", s.healthz)
	if s.engine != nil && s.history != nil {
		s.apiRoutes(r)
		s.uiRoutes(r)
	}
	return s.serve(ctx, ln, r, false)
}

// ServeMetrics serves only /metrics on ln, for a separate metrics listener,
// with the lifecycle of Serve.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	r := chi.NewRouter()
	r.Use(s.logRequests, s.recoverer)
	r.NotFound(notFound)
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

// newDeliveryID returns the id that names one delivery in the answer, the
// logs and the history: 24 hex digits, the first 12 the time in unix
// milliseconds and the rest random. Ids made later sort after, so that the
// history's index of them grows at its end: with random ids each insert
// lands on another page of a large index, and recording a delivery cost
// five times as much at 90k deliveries, and more as they grew
// (BenchmarkRecordDeliveries in history). 48 random bits make two ids of
// the same millisecond equal once in 2.8·10^14 pairs. Ids sort by time
// while the clock does not step back.
func newDeliveryID() string {
	var b [12]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	rand.Read(b[6:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
