package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// statusClientGone is what a request whose client went away counts as
// (nginx's 499): not the upstream's fault, so not a 5xx.
const statusClientGone = 499

// retryAfter is the Retry-After of a 503 while there is no upstream, in
// seconds.
const retryAfter = "5"

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
			b.observe(status, time.Since(start), rec.upErr)
			if c := s.canary.Load(); c != nil {
				m.side(c.b == b, status)
			}
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

	if b = s.pick(rec, r); b == nil {
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
		for _, k := range spoofable {
			delete(pr.Out.Header, k)
		}
		dropUnderscored(pr.Out.Header)
		if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
			pr.Out.Header.Set("X-Real-Ip", ip)
		} else {
			delete(pr.Out.Header, "X-Real-Ip")
		}
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
	upErr  bool // the container could not be reached, or did not answer in time
}

func (w *recorder) WriteHeader(code int) {
	// 1xx but 101 are informational (100 Continue, 103 Early Hints).
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	// The front door's HSTS was set before the app's headers were added:
	// an app that sends its own keeps it, alone (a browser heeds only the
	// first of two).
	if h := w.Header(); len(h[hsts]) > 1 && w.l.kind == kindFront {
		h[hsts] = h[hsts][1:]
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

// dropUnderscored removes the headers whose name, with "_" read as "-",
// is a client-address header: WSGI and CGI servers turn X_Real_IP into the
// same HTTP_X_REAL_IP as X-Real-IP, so a client could otherwise claim an
// address under the underscore spelling (nginx and Apache drop such
// headers for this reason). Other headers with "_" pass.
func dropUnderscored(h http.Header) {
	for k := range h {
		if !strings.Contains(k, "_") {
			continue
		}
		if c := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-")); forwarding[c] || slices.Contains(spoofable, c) {
			delete(h, k)
		}
	}
}

// forwarding are the headers ReverseProxy itself replaces.
var forwarding = map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "Forwarded": true, "X-Real-Ip": true}

// spoofable are the headers besides X-Forwarded-* and Forwarded that apps,
// frameworks and CDNs read the client's address, scheme or path from.
// Without TrustForwarded a client could claim any address with them, so
// the proxy removes them; X-Real-IP it sets to the address it saw.
var spoofable = []string{
	"True-Client-Ip",
	"X-Client-Ip",
	"Cf-Connecting-Ip",
	"Cf-Connecting-Ipv6",
	"Fastly-Client-Ip",
	"X-Cluster-Client-Ip",
	"X-Original-Forwarded-For",
	"X-Forwarded",
	"X-Forwarded-Server",
	"X-Forwarded-Port",
	"X-Forwarded-Prefix",
	"X-Forwarded-Scheme",
	"X-Forwarded-Ssl",
	"X-Url-Scheme",
	"Front-End-Https",
	"X-Original-Url",
	"X-Rewrite-Url",
	"Client-Ip",
}
