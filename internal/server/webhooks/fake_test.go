package webhooks

import (
	"context"
	"crypto/subtle"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/accesslog"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
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

func (c *fakeCatalogue) matches() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.matched...)
}

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

// harness is a Handler with fakes around it, on a router set up as the
// server's is (access log, panic guard, unknown paths, a probe).
type harness struct {
	hh     *Handler
	router chi.Router
	cat    *fakeCatalogue
	dep    *fakeDeployer
	reg    *prometheus.Registry
	logs   *testenv.SyncBuffer

	mu        sync.Mutex
	delivered []deploy.Delivery // what OnDelivery was told: names and reasons
}

// last is the newest delivery OnDelivery was told of; the zero value if
// none.
func (h *harness) last() deploy.Delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.delivered) == 0 {
		return deploy.Delivery{}
	}
	return h.delivered[len(h.delivered)-1]
}

// newHarness builds a Handler on fakes, with the server's defaults; edit
// may change its options.
func newHarness(t testing.TB, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{cat: catalogue(), dep: &fakeDeployer{}, reg: prometheus.NewRegistry(), logs: &testenv.SyncBuffer{}}
	opts := Options{
		Catalogue:  func() Catalogue { return h.cat },
		Deployer:   h.dep,
		Logger:     zerolog.New(h.logs).Level(zerolog.DebugLevel),
		Registerer: h.reg,
		RateLimit:  deployments.DefaultHookRate,
		Now:        func() time.Time { return testNow },
		OnDelivery: func(d deploy.Delivery) {
			h.mu.Lock()
			h.delivered = append(h.delivered, d)
			h.mu.Unlock()
		},
	}
	if edit != nil {
		edit(&opts)
	}
	h.hh = New(opts)
	h.router = chi.NewRouter()
	h.router.Use(accesslog.Requests(opts.Logger), accesslog.Recoverer(opts.Logger))
	h.router.NotFound(httperr.NotFound)
	h.router.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { httperr.Text(w, http.StatusOK, "ok") })
	h.hh.Routes(h.router)
	return h
}

// do serves one request from client 192.0.2.1.
func (h *harness) do(method, target string, body io.Reader) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.router.ServeHTTP(w, r)
	return w
}

// post delivers body to the dockerhub hook with the right token.
func (h *harness) post(body string) *httptest.ResponseRecorder {
	return h.do(http.MethodPost, "/hooks/dockerhub/"+testToken, strings.NewReader(body))
}

// fixture is a Docker Hub delivery of internal/payload's testdata.
func fixture(t testing.TB, name string) string {
	t.Helper()
	return payloadFixture(t, "dockerhub", name)
}
