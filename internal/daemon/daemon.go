// Package daemon is liftoff's daemon wired: the config, a Docker client
// per engine, the history, the deploy engine, the notifier, the front
// doors and the HTTP server, started by New, served by Run, stopped when
// Run's context ends. The command line (internal/cli) parses flags and
// loads the config; this package knows the concrete types of every
// adapter, and no other does.
package daemon

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/history"
	"github.com/liftoff-deploy/liftoff/internal/notify"
	"github.com/liftoff-deploy/liftoff/internal/poll"
	"github.com/liftoff-deploy/liftoff/internal/proxy"
	"github.com/liftoff-deploy/liftoff/internal/server"
)

// defaultDrainTimeout bounds how long a stopping daemon waits for the deploy
// in flight; past it the deploy is cancelled and rolls back.
const defaultDrainTimeout = 2 * time.Minute

// notifyDrainTimeout bounds how long a stopping daemon keeps sending the
// notifications still queued once the deploys have ended.
const notifyDrainTimeout = 10 * time.Second

// Options are what New needs besides the config; the zero value of each
// knob is its default.
type Options struct {
	Logger zerolog.Logger
	// Version is liftoff's version, for the logs, liftoff_build_info and
	// the notifications' User-Agent ("" says "(devel)").
	Version    string
	ConfigPath string
	Lookup     func(string) (string, bool)
	// DrainTimeout bounds the wait for deploys in flight at shutdown.
	DrainTimeout time.Duration
	// OnDeploy, if set, sees every deploy's result (tests).
	OnDeploy func(deploy.Result)
	// BeforeStep, if set, runs before each journaled deploy step (crash
	// tests kill the process there).
	BeforeStep func(deployment, step string)
	// WatchInterval is how often each engine is pinged to notice that it
	// came back (default 5s).
	WatchInterval time.Duration
	// RetryBackoff is the first wait before a deploy step retries an
	// engine that does not answer (0: deploy's default, 1s).
	RetryBackoff time.Duration
	// Listen, if set, replaces the config's listen, at start-up and in
	// every config a reload loads (serve's --listen, $LIFTOFF_LISTEN).
	Listen string
	// PruneInterval is how often the history is pruned to
	// history_retention (default 10m; once at start-up too). OnPrune, if
	// set, is called after each prune (tests).
	PruneInterval time.Duration
	OnPrune       func()
}

// Daemon is the liftoff daemon: config, Docker adapter, deploy engine and HTTP
// server, wired. New listens at once, so Addr is known before Run.
type Daemon struct {
	opts        Options
	log         zerolog.Logger
	cfg         atomic.Pointer[deployments.Config]
	reloadMu    sync.Mutex // one reload at a time
	reloadOK    prometheus.Gauge
	reloadTS    prometheus.Gauge
	registry    *prometheus.Registry
	docker      *docker.Client            // the local engine (docker_host)
	engines     map[string]*docker.Client // the config's other engines, by name
	history     *history.Store
	historyRows *prometheus.GaugeVec // liftoff_history_rows{table}
	engine      *deploy.Engine
	notifier    *notify.Notifier
	proxy       *proxy.Proxy // the front doors of the deployments with a proxy
	proxyMu     sync.Mutex   // one proxy.Apply at a time (applyProxy)
	server      *server.Server
	ln          net.Listener // hooks (and /metrics unless metricsLn, /api unless apiLn)
	metricsLn   net.Listener
	apiLn       net.Listener
	// deliveries writes the webhook deliveries to the history.
	deliveries *history.Recorder
	poller     *poll.Poller // asks the registries of deployments with poll (poll.go)
	closeOnce  sync.Once
}

// New opens what the daemon needs and listens at once on every address of
// cfg, so that a port in use fails start-up and Addr is known before Run.
// Run, or Close if Run is never called, releases it all.
func New(cfg *deployments.Config, opts Options) (*Daemon, error) {
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = defaultDrainTimeout
	}
	if opts.WatchInterval == 0 {
		opts.WatchInterval = 5 * time.Second
	}
	if opts.Version == "" {
		opts.Version = "(devel)"
	}
	if opts.PruneInterval == 0 {
		opts.PruneInterval = 10 * time.Minute
	}
	a := &Daemon{opts: opts, log: opts.Logger, registry: prometheus.NewRegistry()}
	cfg = a.override(cfg)
	a.cfg.Store(cfg)
	a.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "liftoff_config_last_reload_successful",
		Help: "Whether the last configuration reload succeeded (1) or kept the old configuration (0).",
	})
	a.reloadTS = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "liftoff_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load.",
	})
	a.reloadOK.Set(1)
	a.historyRows = newHistoryRows(a.registry)
	a.reloadTS.SetToCurrentTime()
	a.registry.MustRegister(
		a.reloadOK, a.reloadTS,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(opts.Version),
	)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := history.Open(ctx, cfg.History)
	if err != nil {
		return nil, err
	}
	dc, others, err := openEngines(cfg, a.registry, a.log.With().Str("component", "docker").Logger())
	if err != nil {
		store.Close()
		return nil, err
	}
	a.docker, a.engines, a.history = dc, others, store
	a.deliveries = history.NewRecorder(store, a.log)
	// Notifications read the config in force at each event: a reload
	// applies to the next one.
	a.notifier = notify.New(notify.Options{
		Config:     a.cfg.Load,
		Logger:     a.log.With().Str("component", "notify").Logger(),
		Registerer: a.registry,
		UserAgent:  "liftoff/" + opts.Version,
	})
	a.proxy = proxy.New(proxy.Options{
		Logger:     a.log.With().Str("component", "proxy").Logger(),
		Registerer: a.registry,
	})
	a.engine = deploy.New(deploy.Options{
		FrontDoor:  canaryDoor{a.proxy},
		Runtime:    dc,
		Engines:    runtimes(others),
		Config:     a.cfg.Load,
		Journal:    store,
		Logger:     a.log.With().Str("component", "deploy").Logger(),
		Registerer: a.registry,
		OnDone: func(r deploy.Result) {
			a.notifier.Deployed(r) // never blocks
			if opts.OnDeploy != nil {
				opts.OnDeploy(r)
			}
		},
		OnPreviews:   a.previewsChanged,
		OnPending:    a.notifier.Pending,
		OnDropped:    a.notifier.Dropped,
		OnCanary:     a.notifier.Canary,
		BeforeStep:   opts.BeforeStep,
		RetryBackoff: opts.RetryBackoff,
	})
	a.poller = a.newPoller()
	// A deployment that is a Swarm service needs a swarm manager. Then
	// paused deployments and pushes awaiting approval, before any hook.
	err = a.engine.CheckServices(ctx)
	if err == nil {
		err = a.engine.Load(ctx)
	}
	if err != nil {
		a.notifier.Close(ctx)
		a.closeEngines()
		store.Close()
		return nil, err
	}
	// One engine: /readyz says "container engine: ..." when it does not
	// answer; several: it names each one that does not.
	var pinger server.Pinger = dc
	var pingers map[string]server.Pinger
	if len(others) > 0 {
		pinger, pingers = nil, map[string]server.Pinger{deployments.LocalEngine: dc}
		for name, c := range others {
			pingers[name] = c
		}
	}
	a.server = server.New(server.Options{
		Catalogue:        func() server.Catalogue { return a.cfg.Load() },
		Pinger:           pinger,
		Engines:          pingers,
		Logger:           a.log.With().Str("component", "http").Logger(),
		Registerer:       a.registry,
		Gatherer:         a.registry,
		HookRateLimit:    cfg.HookRateLimit,
		OnDelivery:       a.recordDelivery,
		Reload:           a.Reload,
		MetricsElsewhere: cfg.MetricsListen != "",
		DeployEngine:     a.engine,
		History:          store,
		Polls:            a.poller,
		APIElsewhere:     cfg.APIListen != "",
	})
	if err := a.listen(cfg); err != nil {
		a.close()
		return nil, err
	}
	// The front doors listen at once; their requests wait until the
	// reconcile has found each deployment's container (Run).
	if err := a.applyProxy(cfg); err != nil {
		a.close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return a, nil
}

// override applies the daemon's options that replace the config's
// settings (Listen) to a copy of cfg.
func (a *Daemon) override(cfg *deployments.Config) *deployments.Config {
	if a.opts.Listen == "" || a.opts.Listen == cfg.Listen {
		return cfg
	}
	c := *cfg
	c.Listen = a.opts.Listen
	return &c
}

// Addr is the address the HTTP server listens on.
func (a *Daemon) Addr() string { return a.ln.Addr().String() }

// Close releases what New opened, for a daemon that never ran: Run
// releases it as it returns. Calling it again does nothing.
func (a *Daemon) Close() { a.closeOnce.Do(a.close) }

// close releases what New opened. The notifications are drained by
// Run before; here they are only stopped.
func (a *Daemon) close() {
	ctx, cancel := context.WithTimeout(context.Background(), notifyDrainTimeout)
	a.notifier.Close(ctx)
	cancel()
	for _, ln := range []net.Listener{a.ln, a.metricsLn, a.apiLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if a.proxy != nil {
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		a.proxy.Close(pctx) // at once if Run closed it already
		cancel()
	}
	a.closeEngines()
	if err := a.history.Close(); err != nil {
		a.log.Error().Err(err).Msg("closing the history")
	}
}

func buildInfo(version string) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "liftoff_build_info",
		Help: "Version of liftoff and of the Go it was built with (value 1).",
	}, []string{"version", "goversion"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
	return g
}
