package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// fakeCatalogue is a Catalogue whose behaviour each test sets.
type fakeCatalogue struct {
	MatchFn    func(repo, tag string) deployments.MatchResult
	HookAuthFn func(source, token string) bool
	APIAuthFn  func(token string) (deployments.Principal, bool)

	mu      sync.Mutex
	matched []string // "repo:tag" of every Match call
	authed  []string // source of every HookFor call
}

func (c *fakeCatalogue) Match(repo, tag string) deployments.MatchResult {
	c.mu.Lock()
	c.matched = append(c.matched, repo+":"+tag)
	c.mu.Unlock()
	if c.MatchFn == nil {
		return deployments.MatchResult{}
	}
	return c.MatchFn(repo, tag)
}

// IsToken: the tokens of the fake are those HookAuthFn takes for the
// dockerhub source.
func (c *fakeCatalogue) IsToken(v string) bool {
	return c.HookAuthFn != nil && c.HookAuthFn("dockerhub", v)
}

// HookFor is HookAuthFn's answer, with a hook that requires nothing more.
func (c *fakeCatalogue) HookFor(source, token string) (deployments.HookCheck, bool) {
	c.mu.Lock()
	c.authed = append(c.authed, source)
	c.mu.Unlock()
	return deployments.HookCheck{}, c.HookAuthFn(source, token)
}

// The API side of the fake: no API tokens unless the test sets APIAuthFn.
func (c *fakeCatalogue) APIAuth(token string) (deployments.Principal, bool) {
	if c.APIAuthFn == nil {
		return deployments.Principal{}, false
	}
	return c.APIAuthFn(token)
}

func (c *fakeCatalogue) APIAuthSum(sum [sha256.Size]byte) (deployments.Principal, bool) {
	return deployments.Principal{}, false
}

func (c *fakeCatalogue) APIEnabled() bool { return c.APIAuthFn != nil }

func (c *fakeCatalogue) PublicHTTPS() bool { return false }

func (c *fakeCatalogue) Deployment(name string) *deployments.Deployment { return nil }

func (c *fakeCatalogue) All() []*deployments.Deployment { return nil }

// fakeDeployer records what is enqueued.
type fakeDeployer struct {
	mu     sync.Mutex
	reqs   []deploy.Request
	closed bool  // Enqueue fails, as when the engine shuts down
	fail   error // Enqueue fails with it, as when the journal cannot write
	// dispose says where Enqueue puts a deployment's requests (default
	// queued).
	dispose map[string]deploy.Disposition
}

func (d *fakeDeployer) Enqueue(ctx context.Context, rs ...deploy.Request) ([]deploy.Disposition, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, deploy.ErrClosed
	}
	if d.fail != nil {
		return nil, d.fail
	}
	d.reqs = append(d.reqs, rs...)
	out := make([]deploy.Disposition, len(rs))
	for i, r := range rs {
		out[i] = deploy.Queued
		if s, ok := d.dispose[r.Deployment]; ok {
			out[i] = s
		}
	}
	return out, nil
}

func (d *fakeDeployer) requests() []deploy.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deploy.Request(nil), d.reqs...)
}

type fakePinger struct {
	PingFn func(ctx context.Context) error
}

func (p fakePinger) Ping(ctx context.Context) error { return p.PingFn(ctx) }

const (
	testToken  = "tok-3f9a1c0d5e7b42a8b6c9d0e1f2a3b4c5"
	staging    = "dblood-staging"
	production = "dblood-production"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// catalogue is the default fake: the dockerhub hook has testToken; a push of
// docker.io/pmpl/dblood:staging deploys dblood-staging and not
// dblood-production; docker.io/library/nginx:1.27-alpine and
// docker.io/svendowideit/testhook:latest deploy one target each.
func catalogue() *fakeCatalogue {
	return &fakeCatalogue{
		HookAuthFn: func(source, token string) bool {
			return source == "dockerhub" && subtle.ConstantTimeCompare([]byte(token), []byte(testToken)) == 1
		},
		MatchFn: func(repo, tag string) deployments.MatchResult {
			switch repo + ":" + tag {
			case "docker.io/pmpl/dblood:staging":
				return deployments.MatchResult{
					Accepted: []*deployments.Deployment{{Name: staging, Image: repo}},
					Ignored:  []deployments.Ignored{{Deployment: production, Reason: `tag "staging" matches none of [semver:^1]`}},
				}
			case "docker.io/library/nginx:1.27-alpine":
				return deployments.MatchResult{Accepted: []*deployments.Deployment{{Name: "proxy", Image: repo}}}
			case "docker.io/svendowideit/testhook:latest":
				return deployments.MatchResult{Accepted: []*deployments.Deployment{{Name: "testhook", Image: repo}}}
			}
			return deployments.MatchResult{}
		},
	}
}

// harness is a Server with fakes around it.
type harness struct {
	srv  *Server
	cat  *fakeCatalogue
	dep  *fakeDeployer
	reg  *prometheus.Registry
	logs *testenv.SyncBuffer
}

// newHarness builds a Server on fakes; edit may change its options.
func newHarness(t testing.TB, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{cat: catalogue(), dep: &fakeDeployer{}, reg: prometheus.NewRegistry(), logs: &testenv.SyncBuffer{}}
	opts := Options{
		Catalogue:  func() Catalogue { return h.cat },
		Deployer:   h.dep,
		Logger:     zerolog.New(h.logs).Level(zerolog.DebugLevel),
		Registerer: h.reg,
		Gatherer:   h.reg,
		Now:        func() time.Time { return testNow },
	}
	if edit != nil {
		edit(&opts)
	}
	h.srv = New(opts)
	return h
}

// do serves one request from client 192.0.2.1, to liftoff named by its
// address, as Prometheus and curl name it (httptest's example.com is a
// name that /metrics and /readyz refuse: see origin.go).
func (h *harness) do(method, target string, body io.Reader) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	r.Host = "192.0.2.10:8080"
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(w, r)
	return w
}

// post delivers body to the dockerhub hook with the right token.
func (h *harness) post(body string) *httptest.ResponseRecorder {
	return h.do(http.MethodPost, "/hooks/dockerhub/"+testToken, strings.NewReader(body))
}

// fixture is a Docker Hub delivery of internal/payload's testdata.
func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "payload", "testdata", "dockerhub", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// webhookCount is liftoff_webhooks_total{source, outcome} on reg.
func webhookCount(t testing.TB, reg prometheus.Gatherer, source, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "liftoff_webhooks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["source"] == source && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
