package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// HoldProxy stands between liftoff and the Docker engine (point
// docker_host at Host) and can hold one chosen engine call for a while
// before passing it on. The call is passed on whether or not its caller is
// still there: kill liftoff while a call is held, and the engine carries it
// out after liftoff died — a stop, create, rename... that lands while the
// restarted liftoff reconciles. Everything else goes through untouched,
// streamed (pull progress included).
type HoldProxy struct {
	path   string
	srv    *http.Server
	engine *http.Client

	mu   sync.Mutex
	hold *hold // armed, not yet matched
}

type hold struct {
	method string
	path   *regexp.Regexp // matched against the path without the /v1.xx prefix
	delay  time.Duration
	call   *HeldCall
}

// HeldCall tells what happens to the call a Hold matches.
type HeldCall struct {
	// Held receives "METHOD PATH" the moment the call is held.
	Held <-chan string
	// Done is closed once the engine has answered it.
	Done <-chan struct{}

	held chan string
	done chan struct{}
}

// NewHoldProxy starts a proxy to the engine of DOCKER_HOST (unix:// or
// tcp://) or the local socket; it stops when the test ends.
func NewHoldProxy(t testing.TB) *HoldProxy {
	t.Helper()
	network, addr := "unix", "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		scheme, rest, _ := strings.Cut(h, "://")
		switch scheme {
		case "unix":
			addr = rest
		case "tcp":
			network, addr = "tcp", rest
		default:
			t.Fatalf("testenv: hold proxy: DOCKER_HOST %q: only unix:// and tcp:// are proxied", h)
		}
	}
	// Socket paths are limited to about 100 bytes: t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "lt-hold-")
	if err != nil {
		t.Fatal(err)
	}
	p := &HoldProxy{path: filepath.Join(dir, "engine.sock")}
	p.engine = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 16,
	}}
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatalf("testenv: hold proxy: %v", err)
	}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.srv.Shutdown(ctx) // waits for held calls to be passed on
		os.RemoveAll(dir)
	})
	return p
}

// Host is the proxy's address for docker_host.
func (p *HoldProxy) Host() string { return "unix://" + p.path }

// Hold arms the proxy: the next call with that method whose path (without
// the API version) matches pattern is held for delay, then passed on.
func (p *HoldProxy) Hold(method, pattern string, delay time.Duration) *HeldCall {
	c := &HeldCall{held: make(chan string, 1), done: make(chan struct{})}
	c.Held, c.Done = c.held, c.done
	h := &hold{method: method, path: regexp.MustCompile("^" + pattern + "$"), delay: delay, call: c}
	p.mu.Lock()
	p.hold = h
	p.mu.Unlock()
	return c
}

// Disarm drops a hold that has not matched.
func (p *HoldProxy) Disarm() {
	p.mu.Lock()
	p.hold = nil
	p.mu.Unlock()
}

var apiVersion = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

func (p *HoldProxy) take(r *http.Request) *hold {
	path := apiVersion.ReplaceAllString(r.URL.Path, "")
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hold
	if h == nil || r.Method != h.method || !h.path.MatchString(path) {
		return nil
	}
	p.hold = nil
	return h
}

func (p *HoldProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if h := p.take(r); h != nil {
		h.call.held <- r.Method + " " + r.URL.Path
		time.Sleep(h.delay) // the caller may be dead by now: the call goes on
		defer close(h.call.done)
	}
	// Not r.Context(): a call whose caller died is carried out all the same.
	out, err := http.NewRequestWithContext(context.Background(), r.Method, "http://docker"+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := p.engine.Do(out)
	if err != nil {
		http.Error(w, fmt.Sprintf("hold proxy: %v", err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		// At once: the engine answers a container's wait with its headers
		// first (the wait is registered), and its body only at the exit.
		fl.Flush()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				io.Copy(io.Discard, resp.Body) // the caller is gone; the engine finishes
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
