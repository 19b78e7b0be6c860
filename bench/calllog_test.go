package bench

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

// callLog stands between a client of the Docker engine (liftoff, the
// docker CLI, a moby client) and the engine, passes every call on
// untouched (streamed: pull progress, events) and notes when each began
// and ended: what the engine was asked, when, as the client asked it.
// It adds a few hundred microseconds to a call.
type callLog struct {
	path   string
	engine *http.Client
	srv    *http.Server

	mu    sync.Mutex
	calls []engineCall
}

// engineCall is one call through a callLog.
type engineCall struct {
	method, path string // path without the API version and query
	status       int
	start, end   time.Time // the request came in; the answer's body ended
}

func (c engineCall) String() string {
	return fmt.Sprintf("%s %s %d", c.method, c.path, c.status)
}

// newCallLog starts a callLog to the engine of DOCKER_HOST (unix://) or the
// local socket; it stops when the benchmark ends.
func newCallLog(tb testing.TB) *callLog {
	tb.Helper()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		rest, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			tb.Skipf("SKIPPED: the engine call log proxies unix:// engines only, DOCKER_HOST is %q", h)
		}
		sock = rest
	}
	// Socket paths are limited to about 100 bytes: tb.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "lt-calls-")
	if err != nil {
		tb.Fatal(err)
	}
	l := &callLog{path: filepath.Join(dir, "engine.sock")}
	l.engine = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 16,
	}}
	ln, err := net.Listen("unix", l.path)
	if err != nil {
		tb.Fatal(err)
	}
	l.srv = &http.Server{Handler: l}
	go l.srv.Serve(ln)
	tb.Cleanup(func() {
		l.srv.Close() // cuts long calls (an event stream)
		os.RemoveAll(dir)
	})
	return l
}

// Host is the callLog's address, for docker_host or DOCKER_HOST.
func (l *callLog) Host() string { return "unix://" + l.path }

// between returns the calls that began in [from, to).
func (l *callLog) between(from, to time.Time) []engineCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []engineCall
	for _, c := range l.calls {
		if !c.start.Before(from) && c.start.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

var apiPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

func (l *callLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := engineCall{method: r.Method, path: apiPrefix.ReplaceAllString(r.URL.Path, ""), start: time.Now()}
	defer func() {
		call.end = time.Now()
		l.mu.Lock()
		l.calls = append(l.calls, call)
		l.mu.Unlock()
	}()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://docker"+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := l.engine.Do(out)
	if err != nil {
		http.Error(w, fmt.Sprintf("call log: %v", err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	call.status = resp.StatusCode
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
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
