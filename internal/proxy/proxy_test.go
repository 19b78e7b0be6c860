package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func web() Route { return Route{Deployment: "web", Listen: "127.0.0.1:0"} }

func TestForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		trust           bool
		incoming        bool // the client sends X-Forwarded-* and Forwarded
		xff, host, prto string
	}{
		{"replaced", false, true, "127.0.0.1", "app.example.com", "http"},
		{"trusted", true, true, "203.0.113.9, 198.51.100.7, 127.0.0.1", "public.example.com", "https"},
		{"trusted, none incoming", true, false, "127.0.0.1", "app.example.com", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			a := newApp(t, "a")
			r := web()
			r.TrustForwarded = tt.trust
			h.configure(r)
			h.p.Switch("web", a.addr())

			req, err := http.NewRequest(http.MethodPost, h.url("web", "/a/b?x=1&y=%20z"), strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "app.example.com"
			if tt.incoming {
				req.Header.Add("X-Forwarded-For", "203.0.113.9")
				req.Header.Add("X-Forwarded-For", "198.51.100.7")
				req.Header.Set("X-Forwarded-Host", "public.example.com")
				req.Header.Set("X-Forwarded-Proto", "https")
				req.Header.Set("Forwarded", "for=203.0.113.9")
			}
			res, body := h.do(req)
			if res.StatusCode != http.StatusOK || body != "hello" {
				t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, "hello")
			}
			got := res.Header
			for k, want := range map[string]string{
				"X-Got-Host":              "app.example.com",
				"X-Got-Uri":               "/a/b?x=1&y=%20z",
				"X-Got-X-Forwarded-For":   tt.xff,
				"X-Got-X-Forwarded-Host":  tt.host,
				"X-Got-X-Forwarded-Proto": tt.prto,
				"X-Got-Forwarded":         "",
			} {
				if v := strings.Join(got[k], ", "); v != want {
					t.Errorf("%s = %q, want %q", strings.TrimPrefix(k, "X-Got-"), v, want)
				}
			}
		})
	}
}

// TestClientIPHeaders: the headers apps and frameworks read the client's
// address (or scheme, or path) from are the proxy's to set, not the
// client's: without trust_forwarded a client cannot claim another address
// with X-Real-IP, True-Client-IP, CF-Connecting-IP and the like.
func TestClientIPHeaders(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trust=%v", trust), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			a := newApp(t, "a")
			r := web()
			r.TrustForwarded = trust
			h.configure(r)
			h.p.Switch("web", a.addr())
			req, err := http.NewRequest(http.MethodGet, h.url("web", "/"), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range clientIPHeaders {
				req.Header.Set(k, "203.0.113.9")
			}
			res, _ := h.do(req)
			for _, k := range clientIPHeaders {
				got := strings.Join(res.Header["X-Got-"+http.CanonicalHeaderKey(k)], ", ")
				want := ""
				switch {
				case trust:
					want = "203.0.113.9"
				case k == "X-Real-Ip":
					want = "127.0.0.1" // set to the address the proxy saw
				}
				if got != want {
					t.Errorf("%s reached the app as %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestSwitchUnderLoad(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const switches, workers, perUpstream = 50, 8, 16
	apps := make([]*app, switches+1)
	reached := make([]chan struct{}, switches+1) // closed once an app served perUpstream requests
	for i := range apps {
		reached[i] = make(chan struct{})
		var n atomic.Int64
		a := &app{name: fmt.Sprint("app", i)}
		a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.served.Add(1)
			if n.Add(1) == perUpstream {
				close(reached[i])
			}
			io.WriteString(w, a.name)
		}))
		t.Cleanup(a.srv.Close)
		apps[i] = a
	}
	h.configure(web())
	h.p.Switch("web", apps[0].addr())
	url := h.url("web", "/")

	// gen is a seqlock: odd while a Switch is under way, gen/2 the index
	// of the current app otherwise.
	var gen atomic.Int64
	var failed, misrouted atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				g0 := gen.Load()
				res, err := h.client.Get(url)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s %v", res.StatusCode, b, err))
					continue
				}
				// Sent after a Switch returned and answered before the
				// next began: only the current app may have served it.
				if g1 := gen.Load(); g0 == g1 && g0%2 == 0 && string(b) != apps[g0/2].name {
					misrouted.Add(1)
				}
			}
		})
	}
	halt := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer halt()

	for i := 1; i <= switches; i++ {
		recv(t, reached[i-1], fmt.Sprintf("requests on app%d", i-1))
		gen.Add(1)
		prev := h.p.Switch("web", apps[i].addr())
		gen.Add(1)
		if prev != apps[i-1].addr() {
			t.Fatalf("Switch returned %q, want %q", prev, apps[i-1].addr())
		}
		if _, body := h.get("web", "/"); body != apps[i].name {
			t.Fatalf("right after Switch, a request went to %s, want %s", body, apps[i].name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		err := h.p.Drain(ctx, "web", prev)
		cancel()
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
		// The old container stops: had anything still been sent to it,
		// a worker would fail.
		n := apps[i-1].served.Load()
		apps[i-1].srv.Close()
		if m := apps[i-1].served.Load(); m != n {
			t.Fatalf("app%d served %d requests after Drain returned", i-1, m-n)
		}
	}
	recv(t, reached[switches], "requests on the last app")
	halt()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed, the first: %v", n, firstErr.Load())
	}
	if n := misrouted.Load(); n > 0 {
		t.Errorf("%d requests sent after a Switch went to the previous upstream", n)
	}
	total := int64(0)
	for _, a := range apps {
		total += a.served.Load()
	}
	t.Logf("%d requests over %d switches", total, switches)
}

func TestDrain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	closed := make(chan struct{}, 8)
	old := newBlockingConns(t, true, func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	})
	fresh := newApp(t, "fresh")
	h.configure(web())
	h.p.Switch("web", old.addr())

	// A response under way: its headers and first line are out, the rest
	// is not.
	res, err := h.client.Get(h.url("web", "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); line != "started\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	recv(t, old.entered, "the slow request")
	if prev := h.p.Switch("web", fresh.addr()); prev != old.addr() {
		t.Fatalf("Switch returned %q, want %q", prev, old.addr())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err = h.p.Drain(ctx, "web", old.addr())
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 request still in flight") {
		t.Fatalf("Drain with a request in flight: %v, want a deadline error counting 1 request", err)
	}
	if _, body := h.get("web", "/"); body != "fresh" {
		t.Fatalf("a new request went to %q during the drain", body)
	}

	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		drained <- h.p.Drain(ctx, "web", old.addr())
	}()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while the request was in flight", err)
	default:
	}
	old.free()
	if rest, err := io.ReadAll(br); string(rest) != "done\n" || err != nil {
		t.Fatalf("the rest of the response: %q, %v", rest, err)
	}
	if err := recv(t, drained, "Drain"); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	recv(t, closed, "the idle connection to the drained upstream to close")

	// Nothing to wait for: an upstream drained already, one never set, a
	// deployment unknown.
	ctx, cancel = context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for _, c := range [][2]string{{"web", old.addr()}, {"web", "127.0.0.1:1"}, {"nope", old.addr()}} {
		if err := h.p.Drain(ctx, c[0], c[1]); err != nil {
			t.Errorf("Drain(%s, %s): %v", c[0], c[1], err)
		}
	}
}

func TestWaitForUpstream(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	waiting := make(chan string, 8)
	h.p.onWait = func(d string) { waiting <- d }
	a := newApp(t, "a")
	r := web()
	r.WaitTimeout = deadline
	h.configure(r)

	got := h.goGet("web", "/")
	recv(t, waiting, "a request to wait")
	if v := testutil.ToFloat64(h.p.met.waiting.WithLabelValues("web")); v != 1 {
		t.Errorf("waiting requests = %v, want 1", v)
	}
	if prev := h.p.Switch("web", a.addr()); prev != "" {
		t.Errorf("first Switch returned %q", prev)
	}
	res := recv(t, got, "the request")
	if res.err != nil || res.res.StatusCode != http.StatusOK || res.body != "a" {
		t.Fatalf("got %+v, want 200 from a", res)
	}
	if v := testutil.ToFloat64(h.p.met.waiting.WithLabelValues("web")); v != 0 {
		t.Errorf("waiting requests = %v, want 0", v)
	}
}

func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := newApp(t, "a")
	r := web()
	r.WaitTimeout = 20 * time.Millisecond
	h.configure(r)

	check := func() {
		t.Helper()
		res, body := h.get("web", "/")
		if res.StatusCode != http.StatusServiceUnavailable || body != "liftoff: no healthy container for web yet\n" {
			t.Errorf("got %d %q, want 503", res.StatusCode, body)
		}
		if ra := res.Header.Get("Retry-After"); ra == "" {
			t.Error("no Retry-After")
		}
	}
	check()
	h.p.Switch("web", a.addr())
	if _, body := h.get("web", "/"); body != "a" {
		t.Fatalf("got %q", body)
	}
	if prev := h.p.Switch("web", ""); prev != a.addr() {
		t.Fatalf("Switch to none returned %q", prev)
	}
	if u := h.p.Upstream("web"); u != "" {
		t.Fatalf("Upstream = %q after Switch to none", u)
	}
	check()
	if v := testutil.ToFloat64(h.p.met.requests.WithLabelValues("web", "5xx")); v != 2 {
		t.Errorf("5xx = %v, want 2", v)
	}
}

func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		kind   string
	}{
		{"refused", http.StatusBadGateway, "liftoff: the deployment's container did not answer (connection refused)\n", kindConnect},
		{"no headers in time", http.StatusGatewayTimeout, "liftoff: the deployment's container did not answer in time\n", kindTimeout},
		{"closed", http.StatusBadGateway, "liftoff: the deployment's container failed to answer (connection closed)\n", kindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			var addr string
			switch tt.kind {
			case kindConnect:
				addr = freeAddr(t)
			case kindTimeout:
				h.p.headerTimeout = 20 * time.Millisecond
				addr = newBlocking(t, false).addr()
			case kindOther:
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() { // reads the request, answers nothing
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						http.ReadRequest(bufio.NewReader(c))
						c.Close()
					}
				}()
				addr = ln.Addr().String()
			}
			h.configure(web())
			h.p.Switch("web", addr)

			res, body := h.get("web", "/x?token=s3cret")
			if res.StatusCode != tt.status || body != tt.body {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tt.status, tt.body)
			}
			for _, kind := range []string{kindConnect, kindTimeout, kindOther} {
				want := 0.0
				if kind == tt.kind {
					want = 1
				}
				if v := testutil.ToFloat64(h.p.met.errors.WithLabelValues("web", kind)); v != want {
					t.Errorf("upstream errors of kind %s = %v, want %v", kind, v, want)
				}
			}
			lines := h.logs.lines()
			if len(lines) != 1 {
				t.Fatalf("logged %q, want one line", lines)
			}
			for _, s := range []string{`"level":"warn"`, `"deployment":"web"`, `"upstream":"` + addr + `"`, `"kind":"` + tt.kind + `"`} {
				if !strings.Contains(lines[0], s) {
					t.Errorf("log line %s lacks %s", lines[0], s)
				}
			}
			if strings.Contains(lines[0], "s3cret") {
				t.Errorf("log line %s shows the query", lines[0])
			}
		})
	}
}

// A client that goes away is not an upstream error.
func TestClientGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := newBlocking(t, false)
	h.configure(web())
	h.p.Switch("web", b.addr())

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url("web", "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := h.goDo(req)
	recv(t, b.entered, "the request upstream")
	cancel()
	if res := recv(t, got, "the client"); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("client got %+v", res)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), deadline)
	defer dcancel()
	if err := h.p.Drain(dctx, "web", b.addr()); err != nil {
		t.Fatal(err)
	}
	if lines := h.logs.lines(); len(lines) > 0 {
		t.Errorf("logged %q", lines)
	}
	if v := testutil.ToFloat64(h.p.met.requests.WithLabelValues("web", "4xx")); v != 1 {
		t.Errorf("4xx = %v, want 1", v)
	}
	if v := testutil.ToFloat64(h.p.met.requests.WithLabelValues("web", "5xx")); v != 0 {
		t.Errorf("5xx = %v, want 0", v)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(up.Close)
	r := web()
	r.MaxBody = 10
	h.configure(r)
	h.p.Switch("web", up.Listener.Addr().String())

	post := func(body string, chunked bool) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, h.url("web", "/"), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1
		}
		return h.do(req)
	}
	const tooLargeBody = "liftoff: the request body is larger than the 10 bytes allowed\n"
	if res, body := post("0123456789", false); res.StatusCode != http.StatusOK || body != "0123456789" {
		t.Errorf("at the limit: %d %q", res.StatusCode, body)
	}
	if res, body := post("0123456789", true); res.StatusCode != http.StatusOK || body != "0123456789" {
		t.Errorf("at the limit, chunked: %d %q", res.StatusCode, body)
	}
	before := reached.Load()
	if res, body := post(strings.Repeat("x", 100), false); res.StatusCode != http.StatusRequestEntityTooLarge || body != tooLargeBody {
		t.Errorf("over the limit: %d %q", res.StatusCode, body)
	}
	if n := reached.Load() - before; n != 0 {
		t.Errorf("a body whose Content-Length is over the limit reached the upstream")
	}
	if res, body := post(strings.Repeat("x", 100), true); res.StatusCode != http.StatusRequestEntityTooLarge || body != tooLargeBody {
		t.Errorf("over the limit, chunked: %d %q", res.StatusCode, body)
	}
	if v := testutil.ToFloat64(h.p.met.errors.WithLabelValues("web", kindOther)); v != 0 {
		t.Errorf("a body too large counted as an upstream error")
	}

	// Settings change in place: the same listener, no limit.
	addr := h.p.Addr("web").String()
	r.MaxBody = 0
	h.configure(r)
	if a := h.p.Addr("web").String(); a != addr {
		t.Fatalf("the listener moved from %s to %s", addr, a)
	}
	if res, _ := post(strings.Repeat("x", 100), true); res.StatusCode != http.StatusOK {
		t.Errorf("without a limit: %d", res.StatusCode)
	}
}

func TestStreaming(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"", "text/event-stream"} {
		t.Run("type="+ct, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			next := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if ct != "" {
					w.Header().Set("Content-Type", ct)
				}
				io.WriteString(w, "data: 1\n")
				http.NewResponseController(w).Flush()
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "data: 2\n")
			}))
			t.Cleanup(up.Close)
			t.Cleanup(func() {
				select {
				case <-next:
				default:
					close(next)
				}
			})
			h.configure(web())
			h.p.Switch("web", up.Listener.Addr().String())

			res, err := h.client.Get(h.url("web", "/events"))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			// The first event arrives while the upstream still holds
			// the second (the client's timeout bounds the wait).
			if line, err := br.ReadString('\n'); line != "data: 1\n" {
				t.Fatalf("first event: %q, %v", line, err)
			}
			close(next)
			if rest, err := io.ReadAll(br); string(rest) != "data: 2\n" || err != nil {
				t.Fatalf("second event: %q, %v", rest, err)
			}
		})
	}
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Sec-WebSocket-Key") == "" {
			http.Error(w, "not an upgrade", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw.Reader) // echo
	}))
	t.Cleanup(up.Close)
	other := newApp(t, "other")
	h.configure(web())
	h.p.Switch("web", up.Listener.Addr().String())

	c, err := net.DialTimeout("tcp", h.p.Addr("web").String(), deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("got %d, Upgrade %q", res.StatusCode, res.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"ping", "pong"} {
		io.WriteString(c, msg)
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(br, b); err != nil || string(b) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, b, err)
		}
	}

	// The upgraded connection counts as in flight on its upstream.
	h.p.Switch("web", other.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err = h.p.Drain(ctx, "web", up.Listener.Addr().String())
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with a WebSocket open: %v", err)
	}
	c.Close()
	ctx, cancel = context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := h.p.Drain(ctx, "web", up.Listener.Addr().String()); err != nil {
		t.Fatalf("Drain after the WebSocket closed: %v", err)
	}
	if v := testutil.ToFloat64(h.p.met.requests.WithLabelValues("web", "1xx")); v != 1 {
		t.Errorf("1xx = %v, want 1", v)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := newApp(t, "a")
	h.configure(web())
	h.p.Switch("web", a.addr())
	for range 3 {
		h.get("web", "/")
	}
	if res, _ := h.get("web", "/missing"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("got %d", res.StatusCode)
	}
	h.p.Switch("web", freeAddr(t))
	h.get("web", "/")

	for code, want := range map[string]float64{"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 1, "5xx": 1} {
		if v := testutil.ToFloat64(h.p.met.requests.WithLabelValues("web", code)); v != want {
			t.Errorf("requests %s = %v, want %v", code, v, want)
		}
	}
	if v := testutil.ToFloat64(h.p.met.errors.WithLabelValues("web", kindConnect)); v != 1 {
		t.Errorf("connect errors = %v, want 1", v)
	}
	if v := testutil.ToFloat64(h.p.met.inflight.WithLabelValues("web")); v != 0 {
		t.Errorf("in flight = %v, want 0", v)
	}
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", mf.GetName())
		}
		if mf.GetName() == "liftoff_proxy_request_duration_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 5 {
				t.Errorf("durations observed: %d, want 5", n)
			}
		}
	}
	for _, n := range []string{
		"liftoff_proxy_requests_total", "liftoff_proxy_request_duration_seconds",
		"liftoff_proxy_upstream_errors_total", "liftoff_proxy_requests_in_flight",
		"liftoff_proxy_waiting_requests",
	} {
		if !names[n] {
			t.Errorf("%s is not registered", n)
		}
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	waits := make(chan string, 8)
	h.p.onWait = func(d string) { waits <- d }
	b := newBlocking(t, false)
	h.configure(web(), Route{Deployment: "idle", Listen: "127.0.0.1:0", WaitTimeout: deadline})
	h.p.Switch("web", b.addr())
	addr := h.p.Addr("web").String()

	got := h.goGet("web", "/")
	recv(t, b.entered, "the request upstream")
	waiting := h.goGet("idle", "/")
	recv(t, waits, "a request to wait")

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		closed <- h.p.Close(ctx)
	}()
	// The request waiting for an upstream is answered at once.
	if res := recv(t, waiting, "the waiting request"); res.err != nil || res.res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("waiting request: %+v (%v)", res, res.err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a request in flight", err)
	default:
	}
	b.free()
	if res := recv(t, got, "the request in flight"); res.err != nil || res.body != "done\n" {
		t.Fatalf("the request in flight: %+v", res)
	}
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !refused(addr) {
		t.Error("the listener still accepts after Close")
	}
	if err := h.p.Configure([]Route{web()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Configure after Close: %v", err)
	}
}

// Close cuts what is still in flight at its deadline, upgraded connections
// included.
func TestCloseCuts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(io.Discard, brw.Reader)
	}))
	t.Cleanup(up.Close)
	h.configure(web())
	h.p.Switch("web", up.Listener.Addr().String())

	c, err := net.DialTimeout("tcp", h.p.Addr("web").String(), deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", res, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the deadline", err)
	}
	if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the upgraded connection was not cut: %v", err)
	}
}

// An upstream that fails in the middle of a body: the client's response is
// cut, and the failure counted and logged once.
func TestUpstreamFailsMidResponse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "0123456789")
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // the connection closes
	}))
	t.Cleanup(up.Close)
	h.configure(web())
	h.p.Switch("web", up.Listener.Addr().String())

	// What the proxy had buffered is lost with the connection: the client
	// sees a cut response (or none).
	res, err := h.client.Get(h.url("web", "/"))
	if err == nil {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil {
			t.Fatalf("got %d %q in full", res.StatusCode, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := h.p.Drain(ctx, "web", up.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(h.p.met.errors.WithLabelValues("web", kindOther)); v != 1 {
		t.Errorf("other errors = %v, want 1", v)
	}
	if lines := h.logs.lines(); len(lines) != 1 || !strings.Contains(lines[0], `"mid_response":true`) {
		t.Errorf("logged %q, want one line", lines)
	}
}

// TestClientIPHeadersWithUnderscores: WSGI and CGI servers turn both
// X-Real-IP and X_Real_IP into HTTP_X_REAL_IP, so without trust_forwarded
// a client must not get the underscore spelling of a client-address header
// to the app either (nginx and Apache drop such headers for this reason).
// Other headers with underscores pass.
func TestClientIPHeadersWithUnderscores(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var got atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Clone())
	}))
	t.Cleanup(up.Close)
	h.configure(web())
	h.p.Switch("web", strings.TrimPrefix(up.URL, "http://"))
	req, err := http.NewRequest(http.MethodGet, h.url("web", "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	spoofed := []string{"X_Real_IP", "X_Forwarded_For", "x_forwarded_host", "X-Forwarded_Proto", "Forwarded", "True_Client_IP", "CF_Connecting_IP", "Client_Ip"}
	for _, k := range spoofed {
		req.Header[k] = []string{"203.0.113.9"} // as written, not canonicalized
	}
	req.Header["X_Request_Id"] = []string{"abc"}
	if res, _ := h.do(req); res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	hdr, _ := got.Load().(http.Header)
	if hdr == nil {
		t.Fatal("the app got no request")
	}
	for k, v := range hdr {
		for _, s := range v {
			if strings.Contains(s, "203.0.113.9") {
				t.Errorf("the client's %s: %q reached the app", k, s)
			}
		}
	}
	if hdr.Get("X_request_id") != "abc" {
		t.Errorf("X_Request_Id did not reach the app: %v", hdr)
	}
}
