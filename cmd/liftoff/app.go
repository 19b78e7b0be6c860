package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/history"
	"github.com/liftoff-deploy/liftoff/internal/notify"
	"github.com/liftoff-deploy/liftoff/internal/proxy"
	"github.com/liftoff-deploy/liftoff/internal/server"
)

// defaultDrainTimeout bounds how long a stopping daemon waits for the deploy
// in flight; past it the deploy is cancelled and rolls back.
const defaultDrainTimeout = 2 * time.Minute

// notifyDrainTimeout bounds how long a stopping daemon keeps sending the
// notifications still queued once the deploys have ended.
const notifyDrainTimeout = 10 * time.Second

type appOptions struct {
	Logger     zerolog.Logger
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
}

// app is the liftoff daemon: config, Docker adapter, deploy engine and HTTP
// server, wired. newApp listens at once, so Addr is known before Run.
type app struct {
	opts      appOptions
	log       zerolog.Logger
	cfg       atomic.Pointer[deployments.Config]
	reloadMu  sync.Mutex // one reload at a time
	reloadOK  prometheus.Gauge
	reloadTS  prometheus.Gauge
	registry  *prometheus.Registry
	docker    *docker.Client            // the local engine (docker_host)
	engines   map[string]*docker.Client // the config's other engines, by name
	history   *history.Store
	engine    *deploy.Engine
	notifier  *notify.Notifier
	proxy     *proxy.Proxy // the front doors of the deployments with a proxy
	server    *server.Server
	ln        net.Listener // hooks (and /metrics unless metricsLn, /api unless apiLn)
	metricsLn net.Listener
	apiLn     net.Listener
	// deliveries queues the webhook deliveries to record in the history.
	deliveries       chan deploy.Delivery
	deliveriesMu     sync.RWMutex
	deliveriesClosed bool
	// deliveriesDropped counts the deliveries not recorded since the
	// recorder last said so (the queue was full).
	deliveriesDropped atomic.Int64
}

func newApp(cfg *deployments.Config, opts appOptions) (*app, error) {
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = defaultDrainTimeout
	}
	if opts.WatchInterval == 0 {
		opts.WatchInterval = 5 * time.Second
	}
	a := &app{opts: opts, log: opts.Logger, registry: prometheus.NewRegistry(), deliveries: make(chan deploy.Delivery, 1024)}
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
	a.reloadTS.SetToCurrentTime()
	a.registry.MustRegister(
		a.reloadOK, a.reloadTS,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
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
	// Notifications read the config in force at each event: a reload
	// applies to the next one.
	a.notifier = notify.New(notify.Options{
		Config:     a.cfg.Load,
		Logger:     a.log.With().Str("component", "notify").Logger(),
		Registerer: a.registry,
		UserAgent:  "liftoff/" + buildVersion(),
	})
	a.proxy = proxy.New(proxy.Options{
		Logger:     a.log.With().Str("component", "proxy").Logger(),
		Registerer: a.registry,
	})
	a.engine = deploy.New(deploy.Options{
		FrontDoor:  a.proxy,
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
		OnPending:    a.notifier.Pending,
		OnDropped:    a.notifier.Dropped,
		BeforeStep:   opts.BeforeStep,
		RetryBackoff: opts.RetryBackoff,
	})
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
		APIElsewhere:     cfg.APIListen != "",
	})
	if err := a.listen(cfg); err != nil {
		a.close()
		return nil, err
	}
	// The front doors listen at once; their requests wait until the
	// reconcile has found each deployment's container (Run).
	if err := a.proxy.Configure(proxyRoutes(cfg)); err != nil {
		a.close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return a, nil
}

// listen opens the listeners now, so that a port in use fails start-up and
// tests know the address before Run.
func (a *app) listen(cfg *deployments.Config) error {
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls_cert: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// listen and api_listen carry secrets (hook tokens, API tokens): both
	// serve HTTPS when tls_cert is set.
	open := func(key, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if tlsConfig != nil {
			ln = tls.NewListener(ln, tlsConfig)
		}
		return ln, nil
	}
	var err error
	if a.ln, err = open("listen", cfg.Listen); err != nil {
		return err
	}
	if cfg.APIListen != "" {
		if a.apiLn, err = open("api_listen", cfg.APIListen); err != nil {
			return err
		}
	}
	if cfg.MetricsListen != "" {
		if a.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
	}
	return nil
}

// close releases what newApp opened. The notifications are drained by
// Run before; here they are only stopped.
func (a *app) close() {
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

// openEngines opens a client of each engine of cfg: docker_host (the
// local engine) and each of engines. Nothing is dialled yet: an engine
// that does not answer makes only its deployments wait (see
// deploy.Engine.Watch). Engines apply at start-up only (see restartOnly).
func openEngines(cfg *deployments.Config, reg prometheus.Registerer, log zerolog.Logger) (*docker.Client, map[string]*docker.Client, error) {
	local, err := docker.Open(docker.Engine{Name: deployments.LocalEngine, Host: cfg.DockerHost}, reg,
		log.With().Str("engine", deployments.LocalEngine).Logger())
	if err != nil {
		return nil, nil, fmt.Errorf("docker_host: %w", err)
	}
	others := map[string]*docker.Client{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Engines)) {
		e := cfg.Engines[name]
		c, err := docker.Open(docker.Engine{Name: name, Host: e.Host, TLSCA: e.TLSCA, TLSCert: e.TLSCert, TLSKey: e.TLSKey}, reg,
			log.With().Str("engine", name).Logger())
		if err != nil {
			local.Close()
			for _, c := range others {
				c.Close()
			}
			return nil, nil, fmt.Errorf("engines.%s: %w", name, err)
		}
		others[name] = c
	}
	return local, others, nil
}

// runtimes is the deploy engine's view of the other engines.
func runtimes(cs map[string]*docker.Client) map[string]deploy.Runtime {
	m := make(map[string]deploy.Runtime, len(cs))
	for name, c := range cs {
		m[name] = c
	}
	return m
}

// closeEngines closes the client of every engine.
func (a *app) closeEngines() {
	a.docker.Close()
	for _, c := range a.engines {
		c.Close()
	}
}

// pingEngines logs which engines do not answer at start-up, pinging them
// all at once.
func (a *app) pingEngines(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	all := maps.Clone(a.engines)
	if all == nil {
		all = map[string]*docker.Client{}
	}
	all[deployments.LocalEngine] = a.docker
	var wg sync.WaitGroup
	for name, c := range all {
		wg.Go(func() {
			if err := c.Ping(pctx); err != nil {
				a.log.Warn().Err(err).Str("engine", name).
					Msg("Docker engine does not answer yet; /readyz fails and its deployments wait until it does")
			}
		})
	}
	wg.Wait()
}

// recordDelivery hands an accepted delivery to the recorder goroutine,
// which writes it to the history without holding up the webhook's answer
// (the deploy requests themselves are journaled before the answer, by the
// engine). A full queue drops the record, never the answer. A delivery
// that concerns no deployment is kept in memory only (history's
// KeepDelivery): an image no deployment uses, or a signature tag.
func (a *app) recordDelivery(d deploy.Delivery) {
	a.deliveriesMu.RLock()
	defer a.deliveriesMu.RUnlock()
	if a.deliveriesClosed {
		return // a handler outlived the shutdown
	}
	if !concernsDeployment(d) {
		a.history.KeepDelivery(d)
		return
	}
	select {
	case a.deliveries <- d:
	default:
		// Counted, and logged by the recorder once per batch: a flood of
		// deliveries must not also be a flood of log lines.
		a.deliveriesDropped.Add(1)
	}
}

// concernsDeployment tells whether d queued a deploy or was turned away by
// a deployment (its tag rules, a pause, an approval): those are written to
// the history. The others name no deployment: their image is none's, or
// their tag is a signature's.
func concernsDeployment(d deploy.Delivery) bool {
	if len(d.Accepted) > 0 {
		return true
	}
	for _, ig := range d.Ignored {
		if ig.Deployment != "" {
			return true
		}
	}
	return false
}

// closeDeliveries ends recordDeliveries once it has written what is queued.
func (a *app) closeDeliveries() {
	a.deliveriesMu.Lock()
	defer a.deliveriesMu.Unlock()
	if !a.deliveriesClosed {
		a.deliveriesClosed = true
		close(a.deliveries)
	}
}

// recordBatchWindow is how long the recorder gathers deliveries after the
// first before it writes them in one transaction: under a flood of
// webhooks the commit, not the rows, is what costs (measured: a quarter
// of liftoff's CPU at 9k deliveries a second when each batch was what
// happened to be queued).
const recordBatchWindow = 25 * time.Millisecond

// recordDeliveries writes the deliveries recordDelivery queues, those
// arriving within recordBatchWindow of each other in one transaction,
// until the queue is closed and drained.
func (a *app) recordDeliveries() {
	batch := make([]deploy.Delivery, 0, cap(a.deliveries))
	for d := range a.deliveries {
		batch = append(batch[:0], d)
		window := time.NewTimer(recordBatchWindow)
	more:
		for len(batch) < cap(batch) {
			select {
			case d, ok := <-a.deliveries:
				if !ok {
					break more
				}
				batch = append(batch, d)
			case <-window.C:
				break more
			}
		}
		window.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.history.RecordDeliveries(ctx, batch); err != nil {
			a.log.Error().Err(err).Int("deliveries", len(batch)).Str("first", batch[0].ID).Msg("history: could not record deliveries")
		}
		cancel()
		if n := a.deliveriesDropped.Swap(0); n > 0 {
			a.log.Warn().Int64("deliveries", n).Msg("history: too many deliveries to record at once; these are not in the deliveries list (their deploys are journaled)")
		}
	}
}

// Addr is the address the HTTP server listens on.
func (a *app) Addr() string { return a.ln.Addr().String() }

// Run serves until ctx is done (or a listener fails), then stops in this
// order: hooks answer 503 and readiness fails; the watch (reconcile,
// resume, repairs) stops; the deploys in flight finish, bounded by
// DrainTimeout (past it they are cancelled and roll back); the queued
// notifications are sent, for 10s at most (notifyDrainTimeout); HTTP shuts down;
// the deliveries still queued are recorded; files and clients are closed.
// A push accepted but not yet deployed stays in the journal, and the next
// start deploys it.
func (a *app) Run(ctx context.Context) error {
	cfg := a.cfg.Load()
	a.log.Info().Str("version", buildVersion()).Str("listen", a.Addr()).
		Int("deployments", len(cfg.Deployments)).Msg("liftoff started")
	a.pingEngines(ctx)

	var g errgroup.Group
	// The watch reconciles at the engine's first answer and whenever it
	// comes back, then resumes the pushes accepted and never deployed.
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	g.Go(func() error {
		defer close(watched)
		a.engine.Watch(wctx, a.opts.WatchInterval)
		return nil
	})
	g.Go(func() error { a.recordDeliveries(); return nil })
	g.Go(func() error {
		// A proxied container the engine restarted may have a new port.
		a.engine.WatchFrontDoor(wctx, a.opts.WatchInterval)
		return nil
	})
	// HTTP outlives ctx: while the deploys in flight finish, hooks are
	// answered 503 (senders retry later) and /metrics still serves.
	sctx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	failed := make(chan error, 2) // a listener that failed before the stop
	serve := func(f func(context.Context, net.Listener) error, ln net.Listener) {
		g.Go(func() error {
			err := f(sctx, ln)
			if err != nil {
				failed <- err
			}
			return err
		})
	}
	serve(a.server.Serve, a.ln)
	if a.apiLn != nil {
		serve(a.server.ServeAPI, a.apiLn)
	}
	if a.metricsLn != nil {
		serve(a.server.ServeMetrics, a.metricsLn)
	}

	select {
	case <-ctx.Done():
	case err := <-failed:
		a.log.Error().Err(err).Msg("a listener failed; stopping")
	}
	a.server.SetDraining(true)
	stopWatch()
	<-watched
	a.log.Info().Msg("stopping: hooks now answer 503; waiting for deploys in flight")
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.DrainTimeout)
	defer cancel()
	closeErr := a.engine.Close(dctx)
	if closeErr != nil {
		closeErr = fmt.Errorf("deploys in flight did not finish within %s and were rolled back: %w", a.opts.DrainTimeout, closeErr)
	}
	// No deploy runs now: the front doors finish their requests (bounded
	// like the deploys) and close.
	pctx2, cancelProxy := context.WithTimeout(context.WithoutCancel(ctx), a.opts.DrainTimeout)
	if err := a.proxy.Close(pctx2); err != nil {
		a.log.Warn().Err(err).Msg("stopping: the proxy's requests in flight were cut")
	}
	cancelProxy()
	// No deploy ends now: send what the last ones queued, for a while.
	nctx, cancelNotify := context.WithTimeout(context.WithoutCancel(ctx), notifyDrainTimeout)
	if err := a.notifier.Close(nctx); err != nil {
		a.log.Warn().Dur("waited", notifyDrainTimeout).Msg("stopping: notifications still queued were given up (see liftoff_notifications_total)")
	}
	cancelNotify()
	stopServing()
	a.closeDeliveries()
	err := errors.Join(g.Wait(), closeErr)
	a.close()
	a.log.Info().Msg("liftoff stopped")
	return err
}

// Reload loads and validates the config file again and, only if all of it
// is valid, swaps it in atomically: the next deploy uses it, the one in
// flight keeps the one it started with. An invalid file keeps the old
// config. Deployments removed from the file are left running.
func (a *app) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := deployments.Load(a.opts.ConfigPath, a.opts.Lookup)
	if err != nil {
		a.reloadOK.Set(0)
		a.log.Error().Err(err).Str("config", a.opts.ConfigPath).Msg("reload failed; keeping the running configuration")
		return err
	}
	// The front doors first: a listen address that cannot be opened
	// fails the reload, and the running configuration stays.
	if err := a.proxy.Configure(proxyRoutes(cfg)); err != nil {
		a.reloadOK.Set(0)
		a.log.Error().Err(err).Str("config", a.opts.ConfigPath).Msg("reload failed; keeping the running configuration")
		return fmt.Errorf("proxy: %w", err)
	}
	old := a.cfg.Load()
	for _, k := range restartOnly(old, cfg) {
		a.log.Warn().Str("key", k).Msg("reload: this setting changed but applies only after a restart")
	}
	a.cfg.Store(cfg)
	a.engine.ServeNew(context.Background())
	a.reloadOK.Set(1)
	a.reloadTS.SetToCurrentTime()
	a.log.Info().Str("config", a.opts.ConfigPath).Int("deployments", len(cfg.Deployments)).Msg("configuration reloaded")
	return nil
}

// restartOnly names the settings that differ between two configs but are
// read only at start-up.
func restartOnly(old, cfg *deployments.Config) []string {
	var keys []string
	for _, k := range []struct {
		key      string
		old, new any
	}{
		{"listen", old.Listen, cfg.Listen},
		{"metrics_listen", old.MetricsListen, cfg.MetricsListen},
		{"api_listen", old.APIListen, cfg.APIListen},
		{"tls_cert", old.TLSCert, cfg.TLSCert},
		{"tls_key", old.TLSKey, cfg.TLSKey},
		{"docker_host", old.DockerHost, cfg.DockerHost},
		{"history", old.History, cfg.History},
		{"hook_rate_limit", old.HookRateLimit, cfg.HookRateLimit},
	} {
		if k.old != k.new {
			keys = append(keys, k.key)
		}
	}
	// A client per engine is opened at start-up (see openEngines).
	if !maps.Equal(old.Engines, cfg.Engines) {
		keys = append(keys, "engines")
	}
	return keys
}

func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "liftoff_build_info",
		Help: "Version of liftoff and of the Go it was built with (value 1).",
	}, []string{"version", "goversion"})
	g.WithLabelValues(buildVersion(), runtime.Version()).Set(1)
	return g
}
