package poll_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/poll"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// clock is a fake clock: After fires only when the test advances it.
type clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

// settle waits until n timers are pending (every target is asleep).
func (c *clock) settle(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.waiters)
		c.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d polls asleep after 20s", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// advance moves the clock by d in steps of step, letting the n targets
// poll and fall asleep again at each.
func (c *clock) advance(t *testing.T, n int, d, step time.Duration) {
	t.Helper()
	for done := time.Duration(0); done < d; done += step {
		c.settle(t, n)
		c.mu.Lock()
		c.now = c.now.Add(step)
		kept := c.waiters[:0]
		for _, w := range c.waiters {
			if !w.at.After(c.now) {
				w.ch <- c.now
			} else {
				kept = append(kept, w)
			}
		}
		c.waiters = kept
		c.mu.Unlock()
	}
	c.settle(t, n)
}

// fixture is a poller over a test registry, with what it delivered.
type fixture struct {
	reg      *testenv.Reg
	clock    *clock
	poller   *poll.Poller
	metrics  *prometheus.Registry
	logs     *testenv.SyncBuffer
	mu       sync.Mutex
	pushes   []poll.Push
	current  map[string][]string
	busy     map[string]bool
	cfg      atomic.Pointer[deployments.Config]
	stop     func()
	requests *counter
}

// counter counts a registry's requests by kind: "manifest" (a manifest
// HEAD or GET), "tags" (a tags/list page).
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := ""
		switch {
		case strings.Contains(r.URL.Path, "/manifests/") && (r.Method == http.MethodHead || r.Method == http.MethodGet):
			kind = "manifest"
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			kind = "tags"
		}
		if kind != "" {
			c.mu.Lock()
			c.n[kind]++
			c.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (c *counter) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// newFixture starts a registry wrapped in mws (outermost first), after the
// request counter.
func newFixture(t *testing.T, mws ...func(http.Handler) http.Handler) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), metrics: prometheus.NewRegistry(), logs: &testenv.SyncBuffer{},
		current: map[string][]string{}, busy: map[string]bool{}, requests: &counter{n: map[string]int{}}}
	opts := []testenv.RegOption{testenv.WithMiddleware(f.requests.middleware)}
	for _, mw := range mws {
		opts = append(opts, testenv.WithMiddleware(mw))
	}
	f.reg = testenv.Registry(t, opts...)
	return f
}

// start runs the poller on config (deployments YAML, %s the registry host).
func (f *fixture) start(t *testing.T, config string) {
	t.Helper()
	f.load(t, config)
	f.requests.mu.Lock()
	clear(f.requests.n) // the pushes' own requests
	f.requests.mu.Unlock()
	dc, err := docker.New("unix:///nonexistent.sock", nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f.poller = poll.New(poll.Options{
		Registry:   dc,
		Config:     f.cfg.Load,
		Deliver:    f.deliver,
		Current:    f.currentOf,
		Logger:     zerolog.New(f.logs),
		Registerer: f.metrics,
		Now:        f.clock.Now,
		After:      f.clock.After,
		Jitter:     func(time.Duration) time.Duration { return 0 },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.poller.Run(ctx) }()
	f.stop = func() { cancel(); <-done }
	t.Cleanup(f.stop)
}

func (f *fixture) load(t *testing.T, config string) {
	t.Helper()
	cfg, err := deployments.Parse([]byte(strings.ReplaceAll(config, "REG", f.reg.Host())), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	f.cfg.Store(cfg)
}

func (f *fixture) deliver(_ context.Context, p poll.Push) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, p)
	return nil
}

func (f *fixture) currentOf(_ context.Context, d string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy[d] {
		return nil, poll.ErrBusy
	}
	return f.current[d], nil
}

func (f *fixture) delivered() []poll.Push {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]poll.Push(nil), f.pushes...)
}

// push pushes a random image as repo:tag and returns its digest.
func (f *fixture) push(t testing.TB, repo, tag string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(f.reg.Ref(repo, tag), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d.String()
}

// count is the value of liftoff_polls_total for outcome.
func (f *fixture) count(t testing.TB, outcome string) int {
	t.Helper()
	mfs, err := f.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "liftoff_polls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(n)
}

// deploymentsYAML is n deployments of REG/repo with tags and poll.
func deploymentsYAML(n int, repo, tags, pollInterval string) string {
	var b bytes.Buffer
	b.WriteString("deployments:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: d%d\n    image: REG/%s\n    tags: %s\n    poll: {interval: %s}\n", i, repo, tags, pollInterval)
	}
	return b.String()
}

// pageTags makes tags/list answer pages of size, with a Link header to
// the next, as Docker Hub and GHCR do (the test registry does not).
func pageTags(size int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/tags/list") {
				next.ServeHTTP(w, r)
				return
			}
			q := r.URL.Query()
			q.Set("n", fmt.Sprint(size))
			r.URL.RawQuery = q.Encode()
			rec := &recorder{header: http.Header{}}
			next.ServeHTTP(rec, r)
			var page struct {
				Tags []string `json:"tags"`
			}
			_ = json.Unmarshal(rec.body.Bytes(), &page)
			sort.Strings(page.Tags)
			if len(page.Tags) == size {
				q.Set("last", page.Tags[size-1])
				w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, q.Encode()))
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rec.code)
			w.Write(rec.body.Bytes())
		})
	}
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }
