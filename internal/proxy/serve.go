package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// statusClientGone is what a request whose client went away counts as
// (nginx's 499): not the upstream's fault, so not a 5xx.
const statusClientGone = 499

// retryAfter is the Retry-After of a 503 while there is no upstream, in
// seconds.
const retryAfter = "5"

var (
	errNoUpstream = errors.New("no upstream in time")
	errGone       = errors.New("route removed")
)

// site is one deployment: its route's settings, its metrics, its upstreams.
type site struct {
	name  string
	p     *Proxy
	route atomic.Pointer[Route] // nil until routed
	met   *siteMetrics          // set by Configure before any request
	door  *listener             // guarded by p.mu
	cur   atomic.Pointer[backend]

	mu       sync.Mutex          // guards what follows
	ready    chan struct{}       // closed while cur is set
	gone     chan struct{}       // closed when the route is removed
	backends map[string]*backend // the current one, and those with requests in flight
	open     bool                // ready is closed
	dropped  bool                // gone is closed
}

func newSite(p *Proxy, name string) *site {
	return &site{
		name:     name,
		p:        p,
		ready:    make(chan struct{}),
		gone:     make(chan struct{}),
		backends: map[string]*backend{},
	}
}

// set makes addr the current upstream, and returns the previous one.
func (s *site) set(addr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := ""
	if b := s.cur.Load(); b != nil {
		prev = b.addr
	}
	if addr == prev {
		return prev
	}
	var b *backend
	if addr != "" {
		b = s.backends[addr]
		if b == nil {
			b = s.p.newBackend(s, addr)
			s.backends[addr] = b
		}
	}
	s.cur.Store(b)
	switch {
	case b != nil && !s.open:
		close(s.ready)
		s.open = true
	case b == nil && s.open:
		s.ready = make(chan struct{})
		s.open = false
	}
	// Forget the backends no longer current with nothing in flight: a
	// request that took one before the Store above finds it no longer
	// current and takes the new one.
	for a, x := range s.backends {
		if x != b && x.inflight.Load() == 0 {
			delete(s.backends, a)
			x.tr.CloseIdleConnections()
		}
	}
	return prev
}

// drop makes the requests waiting for an upstream give up: the route is
// gone. Those in flight go on.
func (s *site) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dropped {
		close(s.gone)
		s.dropped = true
	}
	for _, b := range s.backends {
		b.tr.CloseIdleConnections()
	}
}

func (s *site) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.backends {
		b.tr.CloseIdleConnections()
	}
}

// acquire counts a request on the current backend and returns it, nil if
// there is none. Counting first and checking that the backend is still
// current after is what lets Drain trust the count once Switch returned.
func (s *site) acquire() *backend {
	for {
		b := s.cur.Load()
		if b == nil {
			return nil
		}
		if s.p.onAcquire != nil {
			s.p.onAcquire()
		}
		b.inflight.Add(1)
		if s.cur.Load() == b {
			return b
		}
		b.release()
	}
}

// await waits for an upstream, at most wait.
func (s *site) await(ctx context.Context, m *siteMetrics, wait time.Duration) (*backend, error) {
	m.waiting.Inc()
	defer m.waiting.Dec()
	if s.p.onWait != nil {
		s.p.onWait(s.name)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ready, gone := s.ready, s.gone
		s.mu.Unlock()
		if b := s.acquire(); b != nil {
			return b, nil
		}
		select {
		case <-ready:
		case <-gone:
			return nil, errGone
		case <-timer.C:
			return nil, errNoUpstream
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.site.Load().serve(l, w, r)
}

func (s *site) serve(l *listener, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m := s.met
	rt := s.route.Load()
	rec := &recorder{ResponseWriter: w, l: l, m: m}
	var b *backend
	m.inflight.Inc()
	defer func() {
		// Also when ReverseProxy aborts a response with a panic.
		m.inflight.Dec()
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		m.count(status)
		if status != http.StatusSwitchingProtocols {
			m.duration.Observe(time.Since(start).Seconds())
		}
		if rec.conn != nil {
			l.untrack(rec.conn)
		}
		// Last, so that what Drain waited for is also counted.
		if b != nil {
			b.release()
		}
	}()

	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		if rt.MaxBody > 0 {
			if r.ContentLength > rt.MaxBody {
				tooLarge(rec, rt.MaxBody)
				return
			}
			// The server's own writer, so that it closes the
			// connection rather than read the rest of a body too large.
			r.Body = http.MaxBytesReader(w, r.Body, rt.MaxBody)
		}
		rec.body = &bodyReader{ReadCloser: r.Body}
		r.Body = rec.body
	}

	if b = s.acquire(); b == nil {
		var err error
		if b, err = s.await(r.Context(), m, rt.WaitTimeout); err != nil {
			if r.Context().Err() != nil {
				rec.WriteHeader(statusClientGone)
				return
			}
			rec.Header().Set("Retry-After", retryAfter)
			answer(rec, http.StatusServiceUnavailable, "liftoff: no healthy container for "+s.name+" yet")
			return
		}
	}
	b.rp.ServeHTTP(rec, r)
}

// rewrite points the outgoing request at target, keeps the client's Host,
// and sets X-Forwarded-*: ReverseProxy has removed the client's ones from
// pr.Out, and we carry them over only when the route trusts them.
func (s *site) rewrite(pr *httputil.ProxyRequest, target *url.URL) {
	pr.SetURL(target)
	pr.Out.Host = pr.In.Host
	rt := s.route.Load()
	if rt == nil || !rt.TrustForwarded {
		pr.SetXForwarded()
		return
	}
	in, out := pr.In.Header, pr.Out.Header
	if v := in["X-Forwarded-For"]; len(v) > 0 {
		out["X-Forwarded-For"] = slices.Clone(v) // SetXForwarded appends the client to it
	}
	pr.SetXForwarded()
	// A host and a scheme are one value each: keep the first proxy's, as
	// apps read them (Django's SECURE_PROXY_SSL_HEADER compares it whole).
	for _, k := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v := in[k]; len(v) > 0 {
			out[k] = slices.Clone(v)
		}
	}
}

// backend is one upstream of a site, with its own transport (so that
// draining it closes its idle connections only) and its count of requests
// in flight.
type backend struct {
	addr     string
	site     *site
	tr       *http.Transport
	rp       *httputil.ReverseProxy
	inflight atomic.Int64

	watched atomic.Bool // someone waits for inflight to reach 0
	mu      sync.Mutex  // guards zero
	zero    chan struct{}

	lastLog atomic.Int64 // unix nanoseconds of the last error logged
	quiet   atomic.Int64 // errors not logged since
}

func (p *Proxy) newBackend(s *site, addr string) *backend {
	b := &backend{addr: addr, site: s}
	var protos http.Protocols
	protos.SetHTTP1(true)
	b.tr = &http.Transport{
		Proxy:                 nil, // never the environment's
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          maxIdlePerUpstream,
		MaxIdleConnsPerHost:   maxIdlePerUpstream,
		IdleConnTimeout:       upstreamIdleTimeout,
		ResponseHeaderTimeout: p.headerTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		// Pass Accept-Encoding and bodies through untouched.
		DisableCompression: true,
		Protocols:          &protos,
	}
	target := &url.URL{Scheme: "http", Host: addr}
	b.rp = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { s.rewrite(pr, target) },
		Transport: b.tr,
		// 0: ReverseProxy flushes at once what streams (no length, or
		// text/event-stream) and buffers the rest.
		FlushInterval:  0,
		BufferPool:     &p.bufs,
		ErrorLog:       p.errLog,
		ErrorHandler:   b.fail,
		ModifyResponse: b.watch,
	}
	return b
}

// watch wraps a response's body to count and log an upstream that fails
// in the middle of it (ReverseProxy can only cut the response then).
func (b *backend) watch(res *http.Response) error {
	if res.StatusCode != http.StatusSwitchingProtocols && res.Body != nil && res.Body != http.NoBody {
		res.Body = &responseBody{ReadCloser: res.Body, b: b, ctx: res.Request.Context()}
	}
	return nil
}

// responseBody is an upstream's response body, watched for errors.
type responseBody struct {
	io.ReadCloser
	b      *backend
	ctx    context.Context
	failed bool
}

func (r *responseBody) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !r.failed && r.ctx.Err() == nil {
		r.failed = true
		r.b.site.met.other.Inc()
		r.b.warn(kindOther, 0, err)
	}
	return n, err
}

func (b *backend) release() {
	if b.inflight.Add(-1) == 0 && b.watched.Load() {
		b.mu.Lock()
		if b.zero != nil {
			close(b.zero)
			b.zero = nil
			b.watched.Store(false)
		}
		b.mu.Unlock()
	}
}

// idle waits until nothing is in flight, or ctx ends.
func (b *backend) idle(ctx context.Context) error {
	for {
		b.mu.Lock()
		if b.zero == nil {
			b.zero = make(chan struct{})
			b.watched.Store(true) // before reading inflight: see release
		}
		zero := b.zero
		n := b.inflight.Load()
		b.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-zero:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fail is the ErrorHandler: it answers a request RoundTrip failed.
func (b *backend) fail(w http.ResponseWriter, r *http.Request, err error) {
	rec, ok := w.(*recorder)
	if !ok {
		answer(w, http.StatusBadGateway, "liftoff: the deployment's container did not answer")
		return
	}
	if rec.conn != nil {
		return // an upgraded connection ended badly: nothing to answer on
	}
	var tooBig *http.MaxBytesError
	switch {
	case r.Context().Err() != nil:
		rec.WriteHeader(statusClientGone) // nobody reads it
		return
	case errors.As(err, &tooBig):
		tooLarge(rec, tooBig.Limit)
		return
	case rec.body != nil && rec.body.failed.Load():
		answer(rec, http.StatusBadRequest, "liftoff: the request body could not be read")
		return
	}
	kind, code, msg := classify(err)
	switch kind {
	case kindConnect:
		rec.m.connect.Inc()
	case kindTimeout:
		rec.m.timeout.Inc()
	default:
		rec.m.other.Inc()
	}
	b.warn(kind, code, err)
	answer(rec, code, msg)
}

// warn logs an upstream error: the first, then at most one a second per
// upstream (a container that dies under load fails every request; the
// metric counts them all).
func (b *backend) warn(kind string, code int, err error) {
	now := time.Now().UnixNano()
	last := b.lastLog.Load()
	if now-last < int64(time.Second) || !b.lastLog.CompareAndSwap(last, now) {
		b.quiet.Add(1)
		return
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // never the URL: its query may hold a secret
	}
	ev := b.site.p.log.Warn().Str("deployment", b.site.name).Str("upstream", b.addr).Str("kind", kind)
	if code != 0 {
		ev = ev.Int("status", code)
	} else {
		ev = ev.Bool("mid_response", true)
	}
	ev = ev.Err(err)
	if n := b.quiet.Swap(0); n > 0 {
		ev = ev.Int64("not_logged", n)
	}
	ev.Msg("proxy: upstream error")
}

// Kinds of upstream errors, the kind label of
// liftoff_proxy_upstream_errors_total.
const (
	kindConnect = "connect" // no connection: refused, unreachable, connect timeout
	kindTimeout = "timeout" // connected, no answer in time
	kindOther   = "other"   // reset, closed, or a malformed answer
)

func classify(err error) (kind string, code int, msg string) {
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	switch {
	case dial && timeout:
		return kindConnect, http.StatusGatewayTimeout, "liftoff: the deployment's container could not be reached in time (connect timeout)"
	case dial:
		return kindConnect, http.StatusBadGateway, "liftoff: the deployment's container did not answer (" + reason(err) + ")"
	case timeout:
		return kindTimeout, http.StatusGatewayTimeout, "liftoff: the deployment's container did not answer in time"
	default:
		return kindOther, http.StatusBadGateway, "liftoff: the deployment's container failed to answer (" + reason(err) + ")"
	}
}

// reason says in a few words what went wrong, without addresses.
func reason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	default:
		return "bad answer"
	}
}

func tooLarge(w http.ResponseWriter, limit int64) {
	answer(w, http.StatusRequestEntityTooLarge, "liftoff: the request body is larger than the "+strconv.FormatInt(limit, 10)+" bytes allowed")
}

// answer writes a short plain-text answer of the proxy's own.
func answer(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// recorder notes the status of a response and the connection of an
// upgrade; it is what ReverseProxy writes to, and what its ErrorHandler
// receives.
type recorder struct {
	http.ResponseWriter
	l      *listener
	m      *siteMetrics
	status int
	conn   net.Conn // hijacked for an upgrade
	body   *bodyReader
}

func (w *recorder) WriteHeader(code int) {
	// 1xx but 101 are informational (100 Continue, 103 Early Hints).
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// FlushError is what http.ResponseController (and so ReverseProxy) calls.
func (w *recorder) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack is what ReverseProxy calls on 101 Switching Protocols; the
// connection is tracked so that a shutdown can wait for it, or cut it.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.status = http.StatusSwitchingProtocols
		w.conn = c
		w.l.track(c)
	}
	return c, brw, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bodyReader notes that reading the client's body failed, to tell a client
// that stopped sending from an upstream that failed. The transport may
// still read it after the handler returned, hence the atomic.
type bodyReader struct {
	io.ReadCloser
	failed atomic.Bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers.
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
