package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// ErrClosed is returned by Enqueue once the engine is shutting down.
var ErrClosed = errors.New("deploy engine is shutting down")

// Options configure an Engine. Runtime and Config are required.
type Options struct {
	// Runtime is the engine of deployments.LocalEngine, Engines those of
	// the config's engines, by name: each deployment runs on the one its
	// Engine names. Watch pings each and reconciles its deployments when
	// it answers again. An engine a reload adds to the config is not
	// here: its deployments fail, saying to restart liftoff.
	Runtime Runtime
	Engines map[string]Runtime
	// FrontDoor, if set, is liftoff's proxy: deployments with a proxy are
	// swapped through it (see proxySwap).
	FrontDoor FrontDoor
	// Config returns the current configuration; it is called once per
	// deploy, so a reload applies to the next deploy.
	Config     func() *deployments.Config
	Logger     zerolog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered anywhere
	Now        func() time.Time

	// PullTimeout bounds resolve and pull together (default 10m).
	PullTimeout time.Duration
	// OpTimeout bounds every other engine call (default 1m).
	OpTimeout time.Duration
	// OnDone, if set, is called after each deploy with its result; tests
	// use it to learn when a deploy ended.
	OnDone func(Result)
	// OnPending, if set, is called when a push starts to await approval
	// (from Enqueue, or Unpause routing the held push), with its Expires;
	// not for the pending pushes Load puts back at start-up. OnDropped, if
	// set, is called when an accepted push is dropped without a deploy:
	// Outcome Superseded, Rejected or Expired, Err saying why, Started the
	// push's arrival. Both run while the engine orders its actions
	// (Engine.accept): they must not block.
	OnPending func(Request)
	OnDropped func(Result)
	// OnCanary, if set, is told when a canary starts and ends (canary.go);
	// it must not block.
	OnCanary func(CanaryEvent)
	// OnPreviews, if set, is called when a preview starts or stops being
	// tracked (see previews.go): the front door routes Previews' hosts.
	// It must not block for long.
	OnPreviews func()

	// Journal, if set, records every deploy step before it is taken, so
	// that Reconcile can finish or undo a deploy interrupted by a crash.
	Journal Journal
	// Retries is how many times a step is retried while the engine is
	// unavailable (default 5), waiting RetryBackoff (default 1s) first and
	// doubling up to 30s: about half a minute in all by default.
	Retries      int
	RetryBackoff time.Duration
	// DownRetry is how often Watch repairs again a deployment left without
	// a healthy container (default 1m), while its engine answers.
	DownRetry time.Duration
	// BeforeStep, if set, is called before each journaled step is taken
	// (crash tests kill the process there).
	BeforeStep func(deployment, step string)

	// waits are the engine's fixed waits (see waits); zero is the
	// default, and only the package's tests set them.
	waits waits
}

// Result is what one deploy did.
type Result struct {
	Request     Request
	Environment string
	Outcome     Outcome
	Digest      string // the digest deployed (or tried)
	Previous    string // digest of the container it replaced, if any
	ContainerID string // the container running after the deploy, if any
	Err         error  // why, for every outcome but succeeded and unchanged
	Started     time.Time
	Ended       time.Time
	// Processes is, for an app of several processes whose swap began,
	// what each replica of each process runs after the deploy, in swap
	// order; nil for a deployment without processes, and for a deploy of
	// an app that ended before its swap (none of its containers was
	// touched).
	Processes []ProcessResult
}

// ProcessResult is one replica of an app's process after a deploy.
type ProcessResult struct {
	Process   string // its name under processes
	Replica   int    // from 1 to its scale
	Container string // the replica's container name
	// Digest is what the container runs after the deploy: the digest
	// deployed once every process passed its gate, the one it ran before
	// otherwise (rolled back, or never swapped); "" when no container of
	// the replica runs (a first deploy undone, a container that was not
	// running, or a rollback left incomplete: reconcile finishes it).
	Digest string
}

// Engine runs deploys: serially per deployment, concurrently across
// deployments, coalescing requests that arrive while one runs.
type Engine struct {
	opts    Options
	log     zerolog.Logger
	metrics *metrics
	http    *http.Client // health.url probes
	front   *frontDoor   // nil without Options.FrontDoor

	ctx     context.Context // cancelled by Close when its deadline passes
	cancel  context.CancelFunc
	closing chan struct{} // closed by Close: waits before anything was touched end
	wg      sync.WaitGroup

	// accept orders Enqueue and Recover: each reads the queues, writes the
	// journal and queues, and neither may see the other half done.
	accept sync.Mutex
	mu     sync.Mutex // guards what follows
	closed bool
	queues map[string]*queue
	down   map[string]error // deployments left without a healthy container, and why
	// strayed: containers (engine/id) of deployments moved to another
	// engine, already warned of.
	strayed map[string]bool

	paused  map[string]Pause       // deployments whose pushes are held
	held    map[string]Request     // the newest push of a paused deployment
	pending map[string]Request     // the push awaiting approval
	expiry  map[string]*time.Timer // of each pending push
	cooling map[string]Request     // the push whose image is younger than min_image_age (cooldown.go)
	ripen   map[string]*time.Timer // of each cooling push

	canaries sync.Map // deployment → *canaryRun in progress

	previews previewSet // the previews that run (previews.go)
}

// New returns an engine. Call Close to stop it.
func New(opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PullTimeout == 0 {
		opts.PullTimeout = 10 * time.Minute
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = time.Minute
	}
	if opts.Retries == 0 {
		opts.Retries = 5
	}
	if opts.DownRetry == 0 {
		opts.DownRetry = time.Minute
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Second
	}
	opts.waits = opts.waits.orDefault()
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var front *frontDoor
	if opts.FrontDoor != nil {
		front = &frontDoor{fd: opts.FrontDoor, served: map[string]served{}}
	}
	return &Engine{
		front:   front,
		opts:    opts,
		log:     opts.Logger,
		metrics: newMetrics(reg, func(name string) string { return deploymentEngine(opts.Config, name) }),
		ctx:     ctx,
		cancel:  cancel,
		queues:  map[string]*queue{},
		down:    map[string]error{},
		strayed: map[string]bool{},
		paused:  map[string]Pause{},
		held:    map[string]Request{},
		pending: map[string]Request{},
		expiry:  map[string]*time.Timer{},
		cooling: map[string]Request{},
		ripen:   map[string]*time.Timer{},
		closing: make(chan struct{}),
		http: &http.Client{
			// 3xx passes the gate: do not follow redirects away from the container.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Close stops accepting requests and waits for the deploys in flight to
// finish; those waiting do not start (with a journal they stay accepted,
// and Recover deploys them at the next start). When ctx ends first,
// in-flight deploys are cancelled; each still rolls back (on a context of
// its own) so that the previous container runs again, and Close waits for
// that too.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		close(e.closing)
	}
	e.closed = true
	for _, t := range e.expiry {
		t.Stop() // a push expiring now stays pending, for the next start
	}
	for _, t := range e.ripen {
		t.Stop() // a push old enough now stays cooling: Load re-arms it
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		<-done
		return ctx.Err()
	}
}

// runtime returns the engine d runs on. An engine that the config names
// but liftoff was not started with (a reload added it) is an error saying
// so: engines apply at start-up only.
func (e *Engine) runtime(d *deployments.Deployment) (Runtime, error) {
	if d.Engine == "" || d.Engine == deployments.LocalEngine {
		return e.opts.Runtime, nil
	}
	if rt, ok := e.opts.Engines[d.Engine]; ok {
		return rt, nil
	}
	return nil, fmt.Errorf("engine %q was added to the configuration after liftoff started: restart liftoff to use it", d.Engine)
}

// inspect inspects the container nameOrID on d's engine.
func (e *Engine) inspect(ctx context.Context, d *deployments.Deployment, nameOrID string) (Container, error) {
	rt, err := e.runtime(d)
	if err != nil {
		return Container{}, err
	}
	return rt.Inspect(ctx, nameOrID)
}

// deploymentEngine names the engine the deployment runs on in the config
// in force; LocalEngine for a deployment the config lacks.
func deploymentEngine(config func() *deployments.Config, name string) string {
	var cfg *deployments.Config
	if config != nil {
		cfg = config()
	}
	if cfg == nil {
		return deployments.LocalEngine
	}
	if d := cfg.Deployment(name); d != nil {
		return engineName(d)
	}
	return deployments.LocalEngine
}

// Running returns the container that runs as the deployment (in whatever
// state it is), or nil when there is none; for an app of several
// processes, the first one found in swap order (they all run one
// version: see Processes for each).
func (e *Engine) Running(ctx context.Context, deployment string) (*Container, error) {
	d := e.opts.Config().Deployment(deployment)
	if d == nil {
		return nil, nil
	}
	if d.Service != nil {
		return e.runningService(ctx, d)
	}
	if d.HasProcesses() {
		return e.runningApp(ctx, d)
	}
	c, err := e.inspect(ctx, d, d.ContainerName())
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &c, nil
}

// Down returns the deployments that a rollback or a repair could not leave
// with a healthy container, and why. A later deploy that succeeds, or a
// repair whose container passes its gate, takes a deployment off the list.
func (e *Engine) Down() map[string]error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.down)
}

func (e *Engine) isDown(deployment string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, down := e.down[deployment]
	return down
}

func (e *Engine) setDown(deployment string, why error) {
	e.mu.Lock()
	e.down[deployment] = why
	e.mu.Unlock()
	e.metrics.down.WithLabelValues(deployment).Set(1)
}

func (e *Engine) clearDown(deployment string) {
	e.mu.Lock()
	_, was := e.down[deployment]
	delete(e.down, deployment)
	e.mu.Unlock()
	if was {
		e.metrics.down.WithLabelValues(deployment).Set(0)
		e.log.Info().Str("deployment", deployment).Msg("the deployment runs a healthy container again")
	}
}
