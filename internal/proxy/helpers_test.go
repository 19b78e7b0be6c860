package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// deadline bounds every wait of the tests.
const deadline = 10 * time.Second

type harness struct {
	t      *testing.T
	p      *Proxy
	reg    *prometheus.Registry
	logs   *syncBuffer
	client *http.Client
}

// newHarness returns a Proxy that logs to a buffer and registers to its own
// registry, closed at the end of the test, and a keep-alive client.
func newHarness(t *testing.T) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	p := New(Options{Logger: zerolog.New(logs), Registerer: reg})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &harness{t: t, p: p, reg: reg, logs: logs, client: &http.Client{Transport: tr, Timeout: deadline}}
}

func (h *harness) configure(routes ...Route) {
	h.t.Helper()
	if err := h.p.Configure(routes); err != nil {
		h.t.Fatalf("Configure: %v", err)
	}
}

func (h *harness) url(deployment, path string) string {
	h.t.Helper()
	a := h.p.Addr(deployment)
	if a == nil {
		h.t.Fatalf("%s has no route", deployment)
	}
	return "http://" + a.String() + path
}

// get sends GET path to the deployment's route and returns the answer,
// its body read.
func (h *harness) get(deployment, path string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url(deployment, path), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) (*http.Response, string) {
	h.t.Helper()
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return res, string(b)
}

// series counts the series of the proxy's metrics that have
// deployment=name.
func (h *harness) series(name string) int {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "deployment" && l.GetValue() == name {
					n++
				}
			}
		}
	}
	return n
}

// app is an upstream: it answers with its name and echoes what it got.
type app struct {
	name   string
	srv    *httptest.Server
	served atomic.Int64
}

func newApp(t *testing.T, name string) *app {
	t.Helper()
	a := &app{name: name}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.served.Add(1)
		h := w.Header()
		h.Set("X-Upstream", name)
		h.Set("X-Got-Host", r.Host)
		h.Set("X-Got-Uri", r.RequestURI)
		for _, k := range append([]string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"}, clientIPHeaders...) {
			if v := r.Header[k]; v != nil {
				h["X-Got-"+k] = v
			}
		}
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		if r.Method == http.MethodPost {
			io.Copy(w, r.Body)
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) addr() string { return a.srv.Listener.Addr().String() }

// blocking is an upstream whose requests wait for release (or for their
// client to go away); each tells entered when it has arrived.
type blocking struct {
	srv     *httptest.Server
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// newBlocking starts one; flush sends the headers and a first line
// before waiting.
func newBlocking(t *testing.T, flush bool) *blocking {
	t.Helper()
	return newBlockingConns(t, flush, nil)
}

// newBlockingConns is newBlocking, telling state of its connections.
func newBlockingConns(t *testing.T, flush bool, state func(net.Conn, http.ConnState)) *blocking {
	t.Helper()
	b := &blocking{entered: make(chan struct{}, 16), release: make(chan struct{})}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if flush {
			io.WriteString(w, "started\n")
			http.NewResponseController(w).Flush()
		}
		b.entered <- struct{}{}
		select {
		case <-b.release:
			io.WriteString(w, "done\n")
		case <-r.Context().Done():
		}
	}))
	b.srv.Config.ConnState = state
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	t.Cleanup(b.free) // before Close: Close waits for the requests
	return b
}

func (b *blocking) addr() string { return b.srv.Listener.Addr().String() }
func (b *blocking) free()        { b.once.Do(func() { close(b.release) }) }

// recv waits for ch at most the tests' deadline.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

type result struct {
	res  *http.Response
	body string
	err  error
}

// goDo sends req in a goroutine.
func (h *harness) goDo(req *http.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		res, err := h.client.Do(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		ch <- result{res: res, body: string(b), err: err}
	}()
	return ch
}

func (h *harness) goGet(deployment, path string) <-chan result {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url(deployment, path), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.goDo(req)
}

// freeAddrs returns n distinct loopback addresses nothing listens on (for
// tests that need an address of their own spelling).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // all open until all are chosen: no two alike
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return freeAddrs(t, 1)[0]
}

// refused tells whether nothing accepts on addr.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, deadline)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) lines() []string {
	out := strings.TrimSpace(s.String())
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// clientIPHeaders are the headers TestClientIPHeaders sends: those the
// proxy strips, and X-Real-IP, which it sets.
var clientIPHeaders = append([]string{"X-Real-Ip"}, spoofable...)
