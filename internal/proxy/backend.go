package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// backend is one upstream of a site, with its own transport (so that
// draining it closes its idle connections only) and its count of requests
// in flight.
type backend struct {
	addr     string
	site     *site
	tr       *http.Transport
	rp       *httputil.ReverseProxy
	inflight atomic.Int64
	stats    upstreamStats // for a canary's judge (Figures)

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
		ModifyResponse: b.watchBody,
	}
	return b
}

// watchBody wraps a response's body to count and log an upstream that fails
// in the middle of it (ReverseProxy can only cut the response then).
func (b *backend) watchBody(res *http.Response) error {
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
		rec.upErr = true
	case kindTimeout:
		rec.m.timeout.Inc()
		rec.upErr = true
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
