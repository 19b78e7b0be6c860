package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// key is the signing key of the json receivers of these tests.
const key = "notify-test-key-0123456789abcdef"

// call is one request a receiver got.
type call struct {
	header http.Header
	body   []byte
}

// receiver is an HTTP server on 127.0.0.1 that records what it gets and
// answers with handle (200 when nil).
type receiver struct {
	*httptest.Server
	calls chan call
	n     atomic.Int32
}

func newReceiver(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	t.Helper()
	rv := &receiver{calls: make(chan call, 256)}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := int(rv.n.Add(1))
		rv.calls <- call{header: r.Header.Clone(), body: body}
		if handle != nil {
			handle(w, r, n)
		}
	}))
	t.Cleanup(rv.Close)
	return rv
}

// next returns the next request the receiver got.
func (rv *receiver) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-rv.calls:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got nothing within 30s")
		return call{}
	}
}

// syncBuffer is a log destination safe for the workers and the test.
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

// harness is a Notifier over a config of receivers, with its log.
type harness struct {
	n   *Notifier
	cfg atomic.Pointer[deployments.Config]
	log *syncBuffer
}

// config parses a config whose notifications are given; KEYFILE in it is
// replaced by a file holding key.
func config(t *testing.T, notifications string) *deployments.Config {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `
hooks: [{source: dockerhub, token: 0123456789abcdef0123456789abcdef}]
environments: {staging: {}, production: {}}
deployments:
  - {name: web, image: acme/web, tags: [latest], environment: production}
  - {name: web-staging, image: acme/web, tags: [staging], environment: staging}
  - {name: tool, image: acme/tool, tags: [latest]}
` + strings.ReplaceAll(notifications, "KEYFILE", keyFile)
	cfg, err := deployments.Parse([]byte(text), "", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return cfg
}

func newHarness(t *testing.T, cfg *deployments.Config, opts Options) *harness {
	t.Helper()
	h := &harness{log: &syncBuffer{}}
	h.cfg.Store(cfg)
	opts.Config = h.cfg.Load
	opts.Logger = zerolog.New(h.log).Level(zerolog.DebugLevel)
	opts.Registerer = prometheus.NewRegistry()
	if opts.Backoff == 0 {
		opts.Backoff = time.Millisecond
	}
	h.n = New(opts)
	t.Cleanup(func() { h.n.Close(context.Background()) })
	return h
}

func (h *harness) count(receiver, outcome string) int {
	return int(testutil.ToFloat64(h.n.total.WithLabelValues(receiver, outcome)))
}

// result is a deploy's result of deployment with outcome.
func result(deployment, env string, o deploy.Outcome) deploy.Result {
	start := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	r := deploy.Result{
		Request:     deploy.Request{Deployment: deployment, Image: "docker.io/acme/web", Tag: "v1.2.3", Delivery: "dlv-1", Actor: "lead"},
		Environment: env, Outcome: o,
		Digest:   "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Previous: "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
		Started:  start, Ended: start.Add(2500 * time.Millisecond),
	}
	if o != deploy.Succeeded {
		r.Err = errors.New("health gate: the container exited with code 3 <boom>")
	}
	return r
}

func decode(t *testing.T, c call) Message {
	t.Helper()
	var m Message
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body %s: %v", c.body, err)
	}
	return m
}

// Each receiver gets the events it asks for, in the environments it asks
// for, and nothing else. That nothing else came is proven by order: a
// receiver's messages are sent one after the other, so the first it gets
// after the filtered ones is the one it wanted.
func TestRouting(t *testing.T) {
	all := newReceiver(t, nil)   // slack, the default events, every environment
	prod := newReceiver(t, nil)  // json, succeeded and failed, production
	stage := newReceiver(t, nil) // json, pending, staging
	cfg := config(t, fmt.Sprintf(`notifications:
  - {name: all, url: "%s/x", format: slack}
  - {name: prod, url: "%s/y", format: json, events: [succeeded, failed], environments: [production], secret_file: KEYFILE}
  - {name: stage, url: "%s/z", format: json, events: [pending, expired], environments: [staging], secret_file: KEYFILE}
`, all.URL, prod.URL, stage.URL))
	h := newHarness(t, cfg, Options{})
	n := h.n

	n.Deployed(result("web-staging", "staging", deploy.Succeeded)) // nobody: all does not want succeeded, prod not staging
	n.Deployed(result("web", "production", deploy.Unchanged))      // not an event
	n.Dropped(result("web", "production", deploy.Superseded))      // not an event
	n.Dropped(result("web", "production", deploy.Rejected))        // not an event
	n.Deployed(result("tool", "", deploy.Failed))                  // all only: prod wants production
	n.Deployed(result("web", "production", deploy.Succeeded))      // prod only
	n.Pending(deploy.Request{Deployment: "web-staging", Tag: "staging", Received: time.Now(), Expires: time.Now().Add(time.Hour)})
	exp := result("web-staging", "staging", deploy.Expired)
	n.Dropped(exp) // all and stage

	if m := decodeSlack(t, all.next(t)); !strings.Contains(m, "*tool* failed to deploy") {
		t.Errorf("all's first message: %s", m)
	}
	if m := decodeSlack(t, all.next(t)); !strings.Contains(m, "*web-staging* (staging) awaits approval") {
		t.Errorf("all's second message: %s", m)
	}
	if m := decodeSlack(t, all.next(t)); !strings.Contains(m, "*web-staging* (staging) expired") {
		t.Errorf("all's third message: %s", m)
	}
	if m := decode(t, prod.next(t)); m.Event != "succeeded" || m.Deployment != "web" {
		t.Errorf("prod's first message: %+v", m)
	}
	if m := decode(t, stage.next(t)); m.Event != "pending" || m.Deployment != "web-staging" || m.Outcome != "" || m.Expires == nil {
		t.Errorf("stage's first message: %+v", m)
	}
	if m := decode(t, stage.next(t)); m.Event != "expired" || m.Outcome != "expired" || m.DurationSeconds != nil {
		t.Errorf("stage's second message: %+v", m)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for rv, want := range map[*receiver]int{all: 3, prod: 1, stage: 2} {
		if got := int(rv.n.Load()); got != want {
			t.Errorf("a receiver got %d requests, want %d", got, want)
		}
	}
	if h.count("all", Sent) != 3 || h.count("prod", Sent) != 1 || h.count("stage", Sent) != 2 || h.count("all", Failed) != 0 {
		t.Errorf("sent: all %d, prod %d, stage %d", h.count("all", Sent), h.count("prod", Sent), h.count("stage", Sent))
	}
}

func decodeSlack(t *testing.T, c call) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.body, &m); err != nil {
		t.Fatalf("slack body %s: %v", c.body, err)
	}
	text, ok := m["text"].(string)
	if len(m) != 1 || !ok {
		t.Fatalf("slack body %s: want {\"text\": ...} alone", c.body)
	}
	if ct := c.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if c.header.Get("X-Liftoff-Signature") != "" {
		t.Error("a slack message is signed")
	}
	return text
}

// The JSON document has every field, and its signature checks out with
// the key of secret_file, as a receiver would check it.
func TestJSONDocument(t *testing.T) {
	rv := newReceiver(t, nil)
	cfg := config(t, fmt.Sprintf(`public_url: https://liftoff.example.com/
notifications:
  - {name: audit, url: "%s/hook?x=1", format: json, events: [rolled_back], secret_file: KEYFILE}
`, rv.URL))
	h := newHarness(t, cfg, Options{UserAgent: "liftoff/test"})
	h.n.Deployed(result("web", "production", deploy.RolledBack))
	c := rv.next(t)

	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(c.body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := c.header.Get("X-Liftoff-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
	if Sign([]byte(key), c.body) != want {
		t.Error("Sign disagrees")
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "User-Agent": "liftoff/test", "X-Liftoff-Event": "rolled_back"} {
		if got := c.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal(c.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"id", "event", "deployment", "environment", "image", "tag", "digest", "previous_digest", "outcome",
		"error", "duration_seconds", "actor", "delivery", "started", "ended", "expires", "url", "canary", "processes"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("field %s missing from %s", f, c.body)
		}
	}
	m := decode(t, c)
	r := result("web", "production", deploy.RolledBack)
	if m.Event != "rolled_back" || m.Outcome != "rolled_back" || m.Deployment != "web" || m.Environment != "production" ||
		m.Image != "docker.io/acme/web" || m.Tag != "v1.2.3" || m.Digest != r.Digest || m.PreviousDigest != r.Previous ||
		m.Error != r.Err.Error() || m.Actor != "lead" || m.Delivery != "dlv-1" || len(m.ID) != 24 ||
		m.DurationSeconds == nil || *m.DurationSeconds != 2.5 || !m.Started.Equal(r.Started) || !m.Ended.Equal(r.Ended) ||
		m.Expires != nil || m.URL != "https://liftoff.example.com/deployments/web" || raw["processes"] != nil {
		t.Errorf("document %s", c.body)
	}
}

func TestSlackText(t *testing.T) {
	rv := newReceiver(t, nil)
	cfg := config(t, fmt.Sprintf(`public_url: https://liftoff.example.com
notifications:
  - {name: team, url: "%s/services/T0/B0/x", format: slack, events: [succeeded, rolled_back]}
`, rv.URL))
	h := newHarness(t, cfg, Options{})
	h.n.Deployed(result("web", "production", deploy.Succeeded))
	h.n.Deployed(result("web", "production", deploy.RolledBack))
	ok := decodeSlack(t, rv.next(t))
	if want := ":white_check_mark: *web* (production) deployed `v1.2.3` (0123456789ab) in 2.5s, by lead <https://liftoff.example.com/deployments/web|details>"; ok != want {
		t.Errorf("succeeded:\n%s\nwant\n%s", ok, want)
	}
	rb := decodeSlack(t, rv.next(t))
	for _, want := range []string{"*web* (production) rolled back from `v1.2.3` (0123456789ab); fedcba987654 runs again",
		"exited with code 3 &lt;boom&gt;", "<https://liftoff.example.com/deployments/web|details>"} {
		if !strings.Contains(rb, want) {
			t.Errorf("rolled back: %s\nlacks %s", rb, want)
		}
	}
}

// A receiver that hangs holds up neither Send nor the other receivers; its
// queue fills, and what does not fit is dropped and counted.
func TestHangingReceiverDoesNotBlockSend(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	hang := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fine := newReceiver(t, nil)
	cfg := config(t, fmt.Sprintf(`notifications:
  - {name: hang, url: "%s/", format: slack, events: [failed]}
  - {name: fine, url: "%s/", format: slack, events: [failed]}
`, hang.URL, fine.URL))
	const queue = 4
	h := newHarness(t, cfg, Options{QueueSize: queue, Timeout: time.Hour})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the harness's Close, if the test fails
	h.n.Deployed(result("web", "production", deploy.Failed))
	<-entered // the worker is stuck in its first try: the queue is empty
	for range queue + 2 {
		h.n.Deployed(result("web", "production", deploy.Failed)) // returns at once, or the test hangs here
	}
	if got := h.count("hang", Dropped); got != 2 {
		t.Errorf("dropped %d, want 2 (the queue holds %d)", got, queue)
	}
	fine.next(t) // the other receiver is not held up meanwhile
	if !strings.Contains(h.log.String(), "notification dropped: the receiver's queue is full") {
		t.Errorf("log:\n%s", h.log)
	}
	once.Do(func() { close(release) })
	if err := h.n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// fine's queue is as small: it may have dropped some of the burst.
	if s, d := h.count("hang", Sent), h.count("fine", Sent)+h.count("fine", Dropped); s != queue+1 || d != queue+3 {
		t.Errorf("hang sent %d, want %d; fine sent or dropped %d, want %d", s, queue+1, d, queue+3)
	}
}

// A receiver that answers 500 gets three tries, then the message counts
// failed; one that answers 400 gets one; one that recovers gets it sent.
func TestRetries(t *testing.T) {
	down := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(500) })
	bad := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(400) })
	flaky := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n < 3 {
			w.WriteHeader(503)
		}
	})
	cfg := config(t, fmt.Sprintf(`notifications:
  - {name: down, url: "%s/", format: json, events: [failed], secret_file: KEYFILE}
  - {name: bad, url: "%s/", format: slack, events: [failed]}
  - {name: flaky, url: "%s/", format: json, events: [failed], secret_file: KEYFILE}
`, down.URL, bad.URL, flaky.URL))
	h := newHarness(t, cfg, Options{})
	h.n.Deployed(result("web", "production", deploy.Failed))
	first := down.next(t)
	if err := h.n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := down.n.Load(); got != 3 {
		t.Errorf("down got %d tries, want 3", got)
	}
	for range 2 {
		if c := down.next(t); !bytes.Equal(c.body, first.body) || c.header.Get("X-Liftoff-Signature") != first.header.Get("X-Liftoff-Signature") {
			t.Errorf("a try differs from the first: %s", c.body)
		}
	}
	if got := bad.n.Load(); got != 1 {
		t.Errorf("bad got %d tries, want 1 (400 is not retried)", got)
	}
	if got := flaky.n.Load(); got != 3 {
		t.Errorf("flaky got %d tries, want 3", got)
	}
	for name, want := range map[string][3]int{"down": {0, 1, 0}, "bad": {0, 1, 0}, "flaky": {1, 0, 0}} {
		if got := [3]int{h.count(name, Sent), h.count(name, Failed), h.count(name, Dropped)}; got != want {
			t.Errorf("%s: sent, failed, dropped = %v, want %v", name, got, want)
		}
	}
	if !strings.Contains(h.log.String(), `"receiver":"down","event":"failed","deployment":"web"`) ||
		!strings.Contains(h.log.String(), `"tries":3,"error":"answered 500","message":"notification failed"`) {
		t.Errorf("log:\n%s", h.log)
	}
}

// Close sends what is queued; past its context it gives up on the rest,
// even with a receiver that never answers, and counts it.
func TestCloseBounded(t *testing.T) {
	entered := make(chan struct{}, 1)
	hang := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	})
	cfg := config(t, fmt.Sprintf(`notifications:
  - {name: hang, url: "%s/", format: slack, events: [failed]}
`, hang.URL))
	h := newHarness(t, cfg, Options{Timeout: time.Hour})
	for range 3 {
		h.n.Deployed(result("web", "production", deploy.Failed))
	}
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- h.n.Close(ctx) }()
	h.n.Deployed(result("web", "production", deploy.Failed)) // after Close: dropped (or, if Close has not begun, queued and dropped)
	cancel()
	if err := <-closed; !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if f, d := h.count("hang", Failed), h.count("hang", Dropped); f != 1 || d != 3 {
		t.Errorf("failed %d, dropped %d; want 1 (the try in flight) and 3", f, d)
	}
	if got := hang.n.Load(); got != 1 {
		t.Errorf("%d tries, want 1", got)
	}
}

// A receiver's URL appears nowhere in the log, even in the errors of
// requests that could not connect; nor does its host.
func TestURLNeverLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	const marker = "urlmarker-5b7d9f1e"
	redirect := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Redirect(w, r, "http://127.0.0.1:1/"+marker, http.StatusFound)
	})
	cfg := config(t, fmt.Sprintf(`notifications:
  - {name: dead, url: "http://%s/%s?token=%s", format: json, events: [failed], secret_file: KEYFILE}
  - {name: moved, url: "%s/%s", format: slack, events: [failed]}
`, dead, marker, marker, redirect.URL, marker))
	h := newHarness(t, cfg, Options{})
	h.n.Deployed(result("web", "production", deploy.Failed))
	if err := h.n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := h.log.String()
	for _, s := range []string{marker, dead, key, strings.TrimPrefix(redirect.URL, "http://")} {
		if strings.Contains(log, s) {
			t.Errorf("the log holds %q:\n%s", s, log)
		}
	}
	if h.count("dead", Failed) != 1 || h.count("moved", Failed) != 1 {
		t.Errorf("failed: dead %d, moved %d", h.count("dead", Failed), h.count("moved", Failed))
	}
	if got := redirect.n.Load(); got != 1 {
		t.Errorf("moved got %d tries, want 1 (a redirect is not followed, nor retried)", got)
	}
	if !strings.Contains(log, "connection refused") || !strings.Contains(log, "answered 302: redirects are not followed") {
		t.Errorf("the log does not say why:\n%s", log)
	}
}

// A reload applies to the next message: a new receiver gets it, a removed
// one does not.
func TestReloadApplies(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	h := newHarness(t, config(t, fmt.Sprintf("notifications: [{name: a, url: %q, format: slack, events: [failed]}]\n", a.URL)), Options{})
	h.n.Deployed(result("web", "production", deploy.Failed))
	a.next(t)
	h.cfg.Store(config(t, fmt.Sprintf("notifications: [{name: b, url: %q, format: slack, events: [failed]}]\n", b.URL)))
	h.n.Deployed(result("web", "production", deploy.Failed))
	b.next(t)
	if err := h.n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.n.Load() != 1 || b.n.Load() != 1 {
		t.Errorf("a got %d, b got %d; want 1 each", a.n.Load(), b.n.Load())
	}
}
