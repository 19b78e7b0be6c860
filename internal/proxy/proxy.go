// Package proxy is liftoff's front door for each deployment: it listens on
// the address the deployment's route names and forwards HTTP (WebSockets
// included) to the deployment's current container, its upstream. A deploy
// starts the new container beside the old one, gates it, calls Switch to send
// new requests to it, calls Drain to wait (bounded) for the requests still on
// the old one, and only then stops the old container: a deploy refuses no
// request, and cuts only those that outlast the drain (long-lived WebSockets).
//
// The request path is net/http/httputil.ReverseProxy with Rewrite, not
// Director: with Rewrite the proxy strips the client's Forwarded and
// X-Forwarded-* before our function sees the request, so a client cannot
// smuggle its own X-Forwarded-For past us, and the hop-by-hop headers of the
// client cannot remove the ones we set. Only with Route.TrustForwarded does
// the proxy carry the incoming ones over (a proxy in front of us set them).
// The Host header stays the client's, so that the app (Django's
// ALLOWED_HOSTS) sees the public host.
//
// Each upstream a deployment has had since it last had nothing in flight is
// a backend: its own http.Transport, its own ReverseProxy and its own count
// of requests in flight. A request reads the current backend once (an atomic
// pointer), counts itself there and then checks that the backend is still
// current, so that once Switch has returned, every request either is counted
// on the old backend (and Drain waits for it) or goes to the new one. It
// stays counted until its response body has been copied, or its upgraded
// connection has closed. Separate transports let Drain close the idle
// keep-alive connections to the old container, which is about to stop,
// without touching the pool of the new one.
//
// Routes (listeners) and backends are separate: Configure can move a
// deployment to another address, or hand an address over from a removed
// deployment to a new one, while its upstream and the requests in flight
// stay where they are.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults of Route.
const (
	DefaultDrainTimeout = 30 * time.Second
	DefaultWaitTimeout  = 30 * time.Second
)

// Settings of the listeners and of the transports to upstreams.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	dialTimeout       = 5 * time.Second
	// upstreamIdleTimeout is shorter than the keep-alive of common app
	// servers (gunicorn closes an idle connection after 2s, uvicorn and
	// Node after 5s): a connection the app closes as a request is sent on
	// it fails that request, and Go's transport retries only idempotent
	// ones, so a POST would get a 502. On loopback a new connection costs
	// far less than that risk.
	upstreamIdleTimeout   = 1 * time.Second
	maxIdlePerUpstream    = 128
	responseHeaderTimeout = 5 * time.Minute
	expectContinueTimeout = time.Second
)

// ErrClosed is returned by Configure after Close.
var ErrClosed = errors.New("proxy: closed")

// Options configure a Proxy.
type Options struct {
	Logger     zerolog.Logger
	Registerer prometheus.Registerer // nil: metrics not registered
}

// Route is one deployment's front door (from config deployments[].proxy).
type Route struct {
	Deployment string
	// Listen is the route's own address: "127.0.0.1:8001", ":8001". ""
	// routes it through the front door (see Door) by Hosts and
	// PathPrefix instead.
	Listen string
	// Hosts are the Host names the front door sends to the deployment:
	// exact ("app.example.com") or one label of wildcard
	// ("*.example.com"; an exact host wins over a wildcard).
	Hosts []string
	// PathPrefix, if set, narrows Hosts to the paths under it ("/api"
	// takes /api and /api/x, not /apix); the longest prefix wins. The
	// path reaches the container unchanged.
	PathPrefix string
	// DrainTimeout is how long Drain should wait at most (the caller's
	// deadline) and how long a removed route lets its requests finish
	// (default 30s).
	DrainTimeout time.Duration
	// WaitTimeout is how long a request waits while the deployment has no
	// upstream, before a 503 (default 30s).
	WaitTimeout time.Duration
	// MaxBody limits request bodies, in bytes; 0 is no limit. A larger
	// body is answered 413.
	MaxBody int64
	// TrustForwarded keeps the incoming X-Real-IP and the other
	// client-address headers (see spoofable), X-Forwarded-For (appending the
	// client's address to it), X-Forwarded-Host and X-Forwarded-Proto
	// (as they are: one host, one scheme, the first proxy's). False, the
	// default, replaces them with the client's address, the Host and
	// "http": only set it when every client comes through a proxy of yours
	// that sets them. Forwarded (RFC 7239) is always removed.
	TrustForwarded bool
}

// Proxy serves every route. Its methods are safe for concurrent use.
type Proxy struct {
	log     zerolog.Logger
	met     *metrics
	bufs    bufferPool
	errLog  *stdlog.Logger // ReverseProxy's own messages: none
	srvLog  *stdlog.Logger // http.Server's
	base    context.Context
	cut     context.CancelFunc // ends the grace of routes being removed
	retired sync.WaitGroup     // routes being removed

	// Tests shorten the transports' ResponseHeaderTimeout, learn when a
	// request starts waiting for an upstream, and pause one between
	// reading the current upstream and counting itself there.
	headerTimeout time.Duration
	onWait        func(deployment string)
	onAcquire     func()
	rollFn        func() int // decides a new client's side of a canary split

	// What the front door's open listeners read at each request or
	// handshake; replaced whole by Apply.
	front atomic.Pointer[front]
	table atomic.Pointer[table]

	mu     sync.Mutex // guards what follows
	closed bool
	sites  map[string]*site   // by deployment: routed, or named by Switch
	doors  map[*listener]bool // open, by route
}

// New returns a Proxy without routes; Configure opens them.
func New(opts Options) *Proxy {
	base, cut := context.WithCancel(context.Background())
	p := &Proxy{
		log:           opts.Logger,
		met:           newMetrics(opts.Registerer),
		base:          base,
		cut:           cut,
		headerTimeout: responseHeaderTimeout,
		sites:         map[string]*site{},
		doors:         map[*listener]bool{},
	}
	// ReverseProxy's one message (a body copy that failed) would repeat
	// what backend.watchBody logs.
	p.errLog = stdlog.New(io.Discard, "", 0)
	p.srvLog = stdlog.New(logWriter{opts.Logger, zerolog.WarnLevel}, "", 0)
	return p
}

// Switch makes upstream ("host:port"; "" is none) the target of new requests
// for deployment, at once, and returns the previous one. Requests waiting for
// an upstream proceed. A deployment without a route keeps it for when
// Configure routes it.
func (p *Proxy) Switch(deployment, upstream string) (previous string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sites[deployment]
	if s == nil {
		s = newSite(p, deployment)
		p.sites[deployment] = s
	}
	return s.set(upstream)
}

// Upstream returns the deployment's upstream, "" if none.
func (p *Proxy) Upstream(deployment string) string {
	p.mu.Lock()
	s := p.sites[deployment]
	p.mu.Unlock()
	if s == nil {
		return ""
	}
	if b := s.cur.Load(); b != nil {
		return b.addr
	}
	return ""
}

// Drain waits until no request proxied to upstream for deployment is in
// flight — a request counts until its response body has been copied, an
// upgraded connection (WebSocket) until it closes — or ctx ends; then it
// closes the idle keep-alive connections to upstream unless it is current
// again. When ctx ends first, its error says how many requests are still in
// flight and wraps ctx.Err(); the caller stopping the old container cuts
// them, long-lived WebSockets included. Draining the current upstream waits
// for a moment with nothing in flight.
func (p *Proxy) Drain(ctx context.Context, deployment, upstream string) error {
	p.mu.Lock()
	s := p.sites[deployment]
	p.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	b := s.backends[upstream]
	s.mu.Unlock()
	if b == nil {
		return nil // never set, or nothing in flight since
	}
	err := b.idle(ctx)
	s.mu.Lock()
	canary := s.isCanary(b)
	if s.cur.Load() != b && !canary && s.backends[upstream] == b && b.inflight.Load() == 0 {
		delete(s.backends, upstream)
	}
	s.mu.Unlock()
	if s.cur.Load() != b && !canary {
		b.tr.CloseIdleConnections()
	}
	if err != nil {
		n := b.inflight.Load()
		return fmt.Errorf("drain %s of %s: %d %s still in flight: %w", upstream, deployment, n, plural(n, "request"), err)
	}
	return nil
}

// Addr returns the address the deployment's route is bound to, nil if it has
// none.
func (p *Proxy) Addr(deployment string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sites[deployment]
	if s == nil || s.door == nil {
		return nil
	}
	return s.door.ln.Addr()
}

// Close shuts every listener down: it stops accepting, answers 503 to the
// requests waiting for an upstream, and waits for the others (upgraded
// connections included) until ctx ends, when it cuts those left and returns
// ctx.Err().
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	doors := p.doors
	p.doors = map[*listener]bool{}
	for _, l := range p.front.Load().listeners() {
		doors[l] = true
	}
	sites := make([]*site, 0, len(p.sites))
	for _, s := range p.sites {
		s.drop()
		sites = append(sites, s)
	}
	p.mu.Unlock()

	errs := make(chan error, len(doors))
	for l := range doors {
		l.closing.Store(true)
		go func() { errs <- l.shutdown(ctx) }()
	}
	var err error
	for range doors {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}

	done := make(chan struct{})
	go func() {
		p.retired.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		p.cut()
		<-done
		if err == nil {
			err = ctx.Err()
		}
	}
	p.cut()
	for _, s := range sites {
		s.closeIdle()
	}
	return err
}
