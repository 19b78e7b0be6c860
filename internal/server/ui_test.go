package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// What the page promises, as the README tells it: its session cookie, a
// session's lifetime, and the login attempts a minute one client may make.
const (
	sessionCookie   = "liftoff_session"
	sessionLifetime = 12 * time.Hour
	loginRate       = 10
)

// Tokens of uiConfig.
const (
	uiRead    = "ui-read-token-0123456789abcdef"
	uiLead    = "ui-lead-token-0123456789abcdef"
	uiCI      = "ui-ci-token-0123456789abcdef00"
	uiAdmin   = "ui-admin-token-0123456789abcdef"
	uiUnknown = "ui-nobody-token-0123456789abcd"
)

const uiConfig = `
hooks:
  - source: dockerhub
    token: ` + testToken + `
api_tokens:
  - {name: reader, token: ` + uiRead + `, scopes: [read]}
  - {name: lead, token: ` + uiLead + `, scopes: [read, "approve:production"]}
  - {name: ci, token: ` + uiCI + `, scopes: ["deploy:staging"]}
  - {name: root, token: ` + uiAdmin + `, scopes: [admin]}
environments:
  staging: {}
  production:
    approval: {required: true, timeout: 1h}
deployments:
  - name: web-staging
    image: acme/web
    tags: [staging]
    environment: staging
  - name: web-prod
    image: acme/web
    tags: [latest]
    environment: production
`

// fakeEngine is a control.Engine over maps: what each deployment runs, and
// its pause and pending push.
type fakeEngine struct {
	*fakeDeployer
	mu      sync.Mutex
	status  map[string]deploy.Status
	running map[string]*deploy.Container
	calls   []string // "approve web-prod lead"
	// engineDown, if set, is what Running answers: the engine is gone.
	engineDown error
	// away is what Running answers for some deployments only: their
	// engine is gone, others' answer.
	away map[string]error
}

var _ control.Engine = (*fakeEngine)(nil)

func newFakeEngine() *fakeEngine {
	return &fakeEngine{fakeDeployer: &fakeDeployer{}, status: map[string]deploy.Status{}, running: map[string]*deploy.Container{}}
}

func (e *fakeEngine) Status(d string) deploy.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status[d]
}

func (e *fakeEngine) Running(_ context.Context, d string) (*deploy.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.engineDown != nil {
		return nil, e.engineDown
	}
	if err := e.away[d]; err != nil {
		return nil, err
	}
	return e.running[d], nil
}

func (e *fakeEngine) Down() map[string]error { return nil }

func (e *fakeEngine) call(what string) {
	e.calls = append(e.calls, what)
}

func (e *fakeEngine) Pause(_ context.Context, d, actor string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.status[d]
	if st.Paused != nil {
		return deploy.ErrPaused
	}
	e.call("pause " + d + " " + actor)
	st.Paused = &deploy.Pause{Deployment: d, Paused: true, Actor: actor, Since: testNow}
	e.status[d] = st
	return nil
}

func (e *fakeEngine) Unpause(_ context.Context, d, actor string) (*deploy.Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.status[d]
	if st.Paused == nil {
		return nil, deploy.ErrNotPaused
	}
	e.call("resume " + d + " " + actor)
	st.Paused = nil
	e.status[d] = st
	return nil, nil
}

func (e *fakeEngine) take(action, d, actor string, want deploy.Decision) (deploy.Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.status[d]
	if st.Pending == nil {
		return deploy.Request{}, deploy.ErrNothingPending
	}
	r := *st.Pending
	if r.ID != want.Request || (want.Digest != "" && want.Digest != r.Digest) {
		return r, deploy.ErrNotThePending
	}
	st.Pending = nil
	e.status[d] = st
	e.call(action + " " + d + " " + actor)
	return r, nil
}

func (e *fakeEngine) Approve(_ context.Context, d, actor string, want deploy.Decision) (deploy.Request, error) {
	return e.take("approve", d, actor, want)
}

func (e *fakeEngine) Reject(_ context.Context, d, actor string, want deploy.Decision) (deploy.Request, error) {
	return e.take("reject", d, actor, want)
}

func (e *fakeEngine) called() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// fakeHistory is a control.History over slices, newest last.
type fakeHistory struct {
	deploys    []deploy.Record
	deliveries []deploy.Delivery
}

var _ control.History = (*fakeHistory)(nil)

func (h *fakeHistory) Deploys(_ context.Context, q deploy.DeployQuery) ([]deploy.Record, int64, error) {
	var out []deploy.Record
	for _, r := range slices.Backward(h.deploys) {
		if (q.Deployment == "" || r.Deployment == q.Deployment) && (q.Outcome == "" || string(r.Outcome) == q.Outcome) &&
			(q.Delivery == "" || r.Delivery == q.Delivery) && (q.Environment == "" || r.Environment == q.Environment) {
			out = append(out, r)
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, 0, nil
}

func (h *fakeHistory) Deploy(_ context.Context, id int64) (deploy.Record, bool, error) {
	for _, r := range h.deploys {
		if r.ID == id {
			return r, true, nil
		}
	}
	return deploy.Record{}, false, nil
}

func (h *fakeHistory) LastSucceeded(context.Context, string, string) (deploy.Record, bool, error) {
	return deploy.Record{}, false, nil
}

func (h *fakeHistory) Deliveries(_ context.Context, limit int, _ int64) ([]deploy.Delivery, int64, error) {
	out := slices.Clone(h.deliveries)
	slices.Reverse(out)
	return out[:min(limit, len(out))], 0, nil
}

// pendingID is the request id of web-prod's pending push in uiHarness.
const pendingID = 7

const (
	digestV1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digestV2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// uiHarness is a Server with the status page: uiConfig, a fake engine
// where web-prod runs v1 and has v2 pending, and a history of a few
// deploys and deliveries.
type uiHarness struct {
	*harness
	eng      *fakeEngine
	hist     *fakeHistory
	cfg      atomic.Pointer[deployments.Config]
	later    atomic.Int64 // the clock is testNow plus this many nanoseconds
	polls    fakePolls
	recorded []deploy.Delivery
	recMu    sync.Mutex
}

func parseUIConfig(t testing.TB, text string) *deployments.Config {
	t.Helper()
	cfg, err := deployments.Parse([]byte(text), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newUIHarness(t testing.TB) *uiHarness {
	t.Helper()
	u := &uiHarness{eng: newFakeEngine(), hist: &fakeHistory{}, polls: fakePolls{}}
	u.cfg.Store(parseUIConfig(t, uiConfig))
	started := testNow.Add(-10 * time.Minute)
	u.eng.running["web-prod"] = &deploy.Container{ID: "c1", Name: "web-prod", Status: "running", Running: true, Health: "healthy",
		StartedAt: started.Add(30 * time.Second), Labels: map[string]string{deploy.LabelTag: "latest", deploy.LabelDigest: digestV1}}
	u.eng.status["web-prod"] = deploy.Status{Pending: &deploy.Request{ID: pendingID, Deployment: "web-prod", Image: "docker.io/acme/web", Tag: "latest",
		Digest: digestV2, Delivery: "d2", Pusher: "alice", Received: testNow.Add(-time.Minute), Expires: testNow.Add(59 * time.Minute)}}
	u.hist.deploys = []deploy.Record{
		{ID: 1, Deployment: "web-prod", Environment: "production", Image: "docker.io/acme/web", Tag: "latest", Digest: digestV1,
			Trigger: "dockerhub", Delivery: "d1", Actor: "lead", Outcome: deploy.Succeeded, Started: started, Ended: started.Add(40 * time.Second),
			Phases:        map[string]time.Duration{deploy.StepResolve: time.Second, deploy.StepPull: 20 * time.Second, deploy.StepGate: 19 * time.Second},
			ReleaseOutput: "Applying migrations... OK"},
		{ID: 2, Deployment: "web-staging", Environment: "staging", Image: "docker.io/acme/web", Tag: "staging", Digest: digestV2,
			Trigger: "dockerhub", Delivery: "d3", Outcome: deploy.RolledBack, Error: "health gate: container exited (code 3)",
			Started: started, Ended: started.Add(5 * time.Second), Phases: map[string]time.Duration{deploy.StepPull: time.Second}},
	}
	u.hist.deliveries = []deploy.Delivery{
		{ID: "d1", Source: "dockerhub", Image: "docker.io/acme/web", Tag: "latest", Pusher: "alice", Received: started,
			Accepted: []string{"web-prod"}, Ignored: []deployments.Ignored{{Deployment: "web-staging", Reason: "tag latest matches none of its tags"}}},
	}
	u.harness = newHarness(t, func(o *Options) {
		o.Catalogue = func() Catalogue { return u.cfg.Load() }
		o.DeployEngine, o.History, o.Polls = u.eng, u.hist, u.polls
		o.Now = func() time.Time { return testNow.Add(time.Duration(u.later.Load())) }
		o.OnDelivery = func(d deploy.Delivery) {
			u.recMu.Lock()
			u.recorded = append(u.recorded, d)
			u.recMu.Unlock()
		}
	})
	return u
}

// browser is a client of the page: it keeps the session cookie.
type browser struct {
	t      testing.TB
	u      *uiHarness
	cookie *http.Cookie
	header http.Header // added to every request
}

func (u *uiHarness) browser(t testing.TB) *browser {
	return &browser{t: t, u: u, header: http.Header{}}
}

func (b *browser) do(r *http.Request) *httptest.ResponseRecorder {
	b.t.Helper()
	if b.cookie != nil {
		r.AddCookie(b.cookie)
	}
	for k, v := range b.header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	b.u.srv.Handler().ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			if c.MaxAge < 0 {
				b.cookie = nil
			} else {
				b.cookie = c
			}
		}
	}
	return w
}

func (b *browser) get(path string) *httptest.ResponseRecorder {
	b.t.Helper()
	return b.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (b *browser) post(path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(r)
}

// login logs in with token, which must work.
func (b *browser) login(token string) {
	b.t.Helper()
	w := b.post("/login", url.Values{"token": {token}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" || b.cookie == nil {
		b.t.Fatalf("login: %d %s, location %q, cookie %v", w.Code, w.Body, w.Header().Get("Location"), b.cookie)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the form token off the overview.
func (b *browser) csrf() string {
	b.t.Helper()
	w := b.get("/")
	m := csrfField.FindStringSubmatch(w.Body.String())
	if m == nil {
		b.t.Fatalf("no form token on the page: %d %s", w.Code, w.Body)
	}
	return m[1]
}

func TestUIRedirectsToLogin(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	for path, want := range map[string]string{"/": "/login", "/deployments/web-prod": "/login?next=%2Fdeployments%2Fweb-prod"} {
		if w := b.get(path); w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Errorf("GET %s without a session: %d %q, want 303 to %s", path, w.Code, w.Header().Get("Location"), want)
		}
	}
	// A cookie that is no session's is the same.
	b.cookie = &http.Cookie{Name: sessionCookie, Value: strings.Repeat("ab", 32)}
	if w := b.get("/"); w.Code != http.StatusSeeOther {
		t.Errorf("GET / with an unknown session: %d, want 303", w.Code)
	}
	w := b.get("/login")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<form method="post" action="/login">`) ||
		!strings.Contains(w.Body.String(), `type="password"`) {
		t.Errorf("GET /login: %d %s", w.Code, w.Body)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
	// Static files are embedded and served.
	if w := b.get("/static/style.css"); w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("GET /static/style.css: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if w := b.get("/static/"); w.Code != http.StatusNotFound {
		t.Errorf("GET /static/: %d, want 404 (no listing)", w.Code)
	}
	// A POST without a session is refused, and does nothing.
	if w := b.post("/deployments/web-prod/approve", url.Values{}); w.Code != http.StatusUnauthorized {
		t.Errorf("POST approve without a session: %d, want 401", w.Code)
	}
	if c := u.eng.called(); len(c) != 0 {
		t.Errorf("engine called: %v", c)
	}
}

func TestUILogin(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	w := b.post("/login", url.Values{"token": {uiRead}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("login: %d %q", w.Code, w.Header().Get("Location"))
	}
	c := b.cookie
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" ||
		c.MaxAge != int(sessionLifetime/time.Second) {
		t.Fatalf("session cookie: %+v", c)
	}
	if strings.Contains(c.Value, uiRead) || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.Value) {
		t.Errorf("the cookie holds %q, want a random id", c.Value)
	}
	w = b.get("/")
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "signed in as <strong>reader</strong>") || !strings.Contains(body, "web-prod") {
		t.Fatalf("GET / after login: %d %s", w.Code, body)
	}
	// Two logins are two sessions.
	b2 := u.browser(t)
	b2.login(uiRead)
	if b2.cookie.Value == c.Value {
		t.Error("two logins got the same session id")
	}

	for _, tc := range []struct {
		name, token string
		want        int
		says        string
	}{
		{"unknown", uiUnknown, http.StatusUnauthorized, "not an API token"},
		{"empty", "", http.StatusUnauthorized, "not an API token"},
		{"malformed", "a b\x00c", http.StatusUnauthorized, "not an API token"},
		{"a hook token", testToken, http.StatusUnauthorized, "not an API token"},
		{"without read", uiCI, http.StatusForbidden, "lacks scope read"},
		{"too long", strings.Repeat("x", 8<<10), http.StatusBadRequest, "could not be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := u.browser(t)
			w := b.post("/login", url.Values{"token": {tc.token}})
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.says) || !strings.Contains(w.Body.String(), `action="/login"`) {
				t.Errorf("login: %d %s, want %d saying %q and the form", w.Code, w.Body, tc.want, tc.says)
			}
			if b.cookie != nil {
				t.Errorf("a refused login got a cookie")
			}
			if tc.token != "" && strings.Contains(w.Body.String(), tc.token) {
				t.Errorf("the answer echoes the token")
			}
		})
	}
	if logs := u.logs.String(); strings.Contains(logs, uiUnknown) || strings.Contains(logs, uiRead) || strings.Contains(logs, testToken) {
		t.Errorf("a token is in the log:\n%s", logs)
	}
}

func TestUILoginRateLimit(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	for range loginRate {
		b.post("/login", url.Values{"token": {uiUnknown}})
	}
	if w := b.post("/login", url.Values{"token": {uiRead}}); w.Code != http.StatusTooManyRequests || b.cookie != nil {
		t.Errorf("login after %d attempts in a minute: %d, want 429", loginRate, w.Code)
	}
}

func TestUISecureCookieUnderTLS(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	r := httptest.NewRequest(http.MethodPost, "https://liftoff.example/login", strings.NewReader("token="+uiRead))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.do(r)
	if b.cookie == nil || !b.cookie.Secure {
		t.Errorf("cookie over TLS: %+v, want Secure", b.cookie)
	}
}

// Behind a proxy that terminates TLS, public_url says the page is HTTPS.
func TestUISecureCookieBehindAProxy(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiRead)
	if b.cookie.Secure {
		t.Fatalf("cookie over plain HTTP without public_url: Secure")
	}
	u.cfg.Store(parseUIConfig(t, "public_url: https://liftoff.example.com\n"+uiConfig))
	b.cookie = nil
	b.login(uiRead)
	if !b.cookie.Secure {
		t.Errorf("cookie with an https public_url: %+v, want Secure", b.cookie)
	}
}

func TestUIBearer(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.header.Set("Authorization", "Bearer "+uiRead)
	for _, path := range []string{"/", "/deployments/web-prod"} {
		if w := b.get(path); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "web-prod") {
			t.Errorf("GET %s with Bearer: %d", path, w.Code)
		}
	}
	if w := b.get("/deployments/nope"); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "nope") {
		t.Errorf("GET /deployments/nope: %d %s, want 404 that does not echo the name", w.Code, w.Body)
	}
	for _, h := range []string{"Bearer " + uiUnknown, "bearer " + uiUnknown} {
		b.header.Set("Authorization", h)
		if w := b.get("/"); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `action="/login"`) {
			t.Errorf("GET / with %.12q...: %d, want 401 and the login form", h, w.Code)
		}
	}
	// Another scheme is not liftoff's (a proxy's Basic auth, say): the
	// session decides — none here: the login form; with one: the page.
	for _, h := range []string{"Basic " + uiRead, "Bearer"} {
		b.header.Set("Authorization", h)
		if w := b.get("/"); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
			t.Errorf("GET / with %.12q... and no session: %d %q, want 303 to /login", h, w.Code, w.Header().Get("Location"))
		}
	}
	b.header.Del("Authorization")
	b.login(uiRead)
	b.header.Set("Authorization", "Basic dXNlcjpwYXNz")
	if w := b.get("/"); w.Code != http.StatusOK {
		t.Errorf("GET / with a session and a proxy's Basic auth: %d, want 200", w.Code)
	}
	b.cookie = nil
	// A token without read sees no page.
	b.header.Set("Authorization", "Bearer "+uiCI)
	if w := b.get("/"); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "lacks scope read") {
		t.Errorf("GET / with deploy:staging only: %d %s", w.Code, w.Body)
	}
	// A button with Bearer needs no form token (a browser never sends the
	// header by itself), but the scope.
	b.header.Set("Authorization", "Bearer "+uiRead)
	if w := b.post("/deployments/web-prod/approve", url.Values{"request": {"7"}}); w.Code != http.StatusForbidden {
		t.Errorf("approve with read: %d, want 403", w.Code)
	}
	// Without a session there is no page to come back to: the answer
	// says what happened.
	b.header.Set("Authorization", "Bearer "+uiLead)
	if w := b.post("/deployments/web-prod/approve", url.Values{"request": {"7"}}); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "pprov") {
		t.Errorf("approve with approve:production: %d %s, want 200 saying what it did", w.Code, w.Body)
	}
	if w := b.post("/deployments/web-prod/approve", url.Values{"request": {"7"}}); w.Code != http.StatusConflict {
		t.Errorf("approve again, nothing pending: %d %s, want the API's 409", w.Code, w.Body)
	}
	if c := u.eng.called(); !slices.Equal(c, []string{"approve web-prod lead"}) {
		t.Errorf("engine calls: %v", c)
	}
}

func TestUICSRF(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiAdmin)
	token := b.csrf()
	for _, tc := range []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no form token", url.Values{}, nil},
		{"wrong form token", url.Values{"csrf": {strings.Repeat("0", len(token))}}, nil},
		{"another session's token", url.Values{"csrf": {func() string { o := u.browser(t); o.login(uiAdmin); return o.csrf() }()}}, nil},
		{"cross-site", url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"another origin", url.Values{"csrf": {token}}, map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/deployments/web-prod/approve", "/deployments/web-staging/pause", "/logout"} {
				r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(tc.form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range tc.header {
					r.Header.Set(k, v)
				}
				if w := b.do(r); w.Code != http.StatusForbidden {
					t.Errorf("POST %s: %d, want 403", path, w.Code)
				}
			}
		})
	}
	if c := u.eng.called(); len(c) != 0 {
		t.Errorf("engine called: %v", c)
	}
	if b.cookie == nil {
		t.Fatal("a refused logout ended the session")
	}
	// The same form from the same site goes through.
	r := httptest.NewRequest(http.MethodPost, "/deployments/web-staging/pause", strings.NewReader("csrf="+token))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if w := b.do(r); w.Code != http.StatusSeeOther {
		t.Errorf("same-origin pause: %d %s", w.Code, w.Body)
	}
}

func TestUIReadOnlySeesNoButtons(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiRead)
	token := b.csrf() // the logout form's
	for _, path := range []string{"/", "/deployments/web-prod"} {
		body := b.get(path).Body.String()
		if strings.Contains(body, `action="/deployments/`) || strings.Contains(body, ">Approve<") {
			t.Errorf("GET %s: a read-only token sees buttons:\n%s", path, body)
		}
		if !strings.Contains(body, "awaiting approval") {
			t.Errorf("GET %s: the pending push is not shown", path)
		}
	}
	for _, action := range []string{"approve", "reject", "pause", "resume"} {
		w := b.post("/deployments/web-prod/"+action, url.Values{"csrf": {token}})
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "lacks scope") {
			t.Errorf("%s with read: %d %s, want 403 naming the scope", action, w.Code, w.Body)
		}
	}
	if w := b.post("/deployments/web-prod/destroy", url.Values{"csrf": {token}}); w.Code != http.StatusNotFound {
		t.Errorf("an unknown action: %d, want 404", w.Code)
	}
	if c := u.eng.called(); len(c) != 0 {
		t.Errorf("engine called: %v", c)
	}
}

func TestUIApprove(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiLead)
	body := b.get("/").Body.String()
	// lead may approve in production, and nothing else.
	for _, want := range []string{`action="/deployments/web-prod/approve"`, `action="/deployments/web-prod/reject"`} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s on the page", want)
		}
	}
	for _, unwanted := range []string{`action="/deployments/web-prod/pause"`, `action="/deployments/web-staging/`} {
		if strings.Contains(body, unwanted) {
			t.Errorf("%s on the page of approve:production", unwanted)
		}
	}
	// The buttons name the push shown: its request id and digest.
	if !strings.Contains(body, `name="request" value="7"`) || !strings.Contains(body, `name="digest" value="`+digestV2+`"`) {
		t.Errorf("the approve and reject forms do not name the pending push:\n%s", body)
	}
	w := b.post("/deployments/web-prod/approve", url.Values{"csrf": {b.csrf()}, "from": {"deployment"}, "request": {"7"}, "digest": {digestV2}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/deployments/web-prod" {
		t.Fatalf("approve: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if c := u.eng.called(); !slices.Equal(c, []string{"approve web-prod lead"}) {
		t.Errorf("engine calls: %v", c)
	}
	u.recMu.Lock()
	rec := slices.Clone(u.recorded)
	u.recMu.Unlock()
	if len(rec) != 1 || rec[0].Source != "api" || rec[0].Actor != "lead" || !slices.Equal(rec[0].Accepted, []string{"web-prod"}) {
		t.Errorf("recorded deliveries: %+v", rec)
	}
	// The page says so, once.
	if body := b.get("/deployments/web-prod").Body.String(); !strings.Contains(body, "Approved latest ("+digestV2+") for web-prod") {
		t.Errorf("no flash after approve:\n%s", body)
	}
	if body := b.get("/deployments/web-prod").Body.String(); strings.Contains(body, "Approved latest") || strings.Contains(body, "awaiting approval") {
		t.Errorf("the flash or the pending push is still shown")
	}
	// Nothing is pending any more: the API's conflict, as a flash.
	b.post("/deployments/web-prod/approve", url.Values{"csrf": {b.csrf()}, "request": {"7"}})
	if body := b.get("/").Body.String(); !strings.Contains(body, "flash-error") || !strings.Contains(body, "no push of web-prod awaits approval") {
		t.Errorf("approve twice: %s", body)
	}
}

func TestUIPauseResume(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiAdmin)
	b.post("/deployments/web-staging/pause", url.Values{"csrf": {b.csrf()}})
	body := b.get("/").Body.String()
	if !strings.Contains(body, "Paused web-staging") || !strings.Contains(body, "paused by root") ||
		!strings.Contains(body, `action="/deployments/web-staging/resume"`) {
		t.Errorf("after pause:\n%s", body)
	}
	b.post("/deployments/web-staging/resume", url.Values{"csrf": {b.csrf()}})
	if c := u.eng.called(); !slices.Equal(c, []string{"pause web-staging root", "resume web-staging root"}) {
		t.Errorf("engine calls: %v", c)
	}
}

func TestUILogout(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiRead)
	old := b.cookie
	w := b.post("/logout", url.Values{"csrf": {b.csrf()}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" || b.cookie != nil {
		t.Fatalf("logout: %d %q, cookie %v", w.Code, w.Header().Get("Location"), b.cookie)
	}
	b.cookie = old // the old cookie no longer opens anything
	if w := b.get("/"); w.Code != http.StatusSeeOther {
		t.Errorf("GET / with the cookie of a closed session: %d, want 303", w.Code)
	}
}

func TestUISessionExpires(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiRead)
	u.later.Store(int64(sessionLifetime - time.Minute))
	if w := b.get("/"); w.Code != http.StatusOK {
		t.Errorf("GET / a minute before the session ends: %d", w.Code)
	}
	u.later.Store(int64(sessionLifetime))
	if w := b.get("/"); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Errorf("GET / once the session has ended: %d, want 303 to /login", w.Code)
	}
}

// TestUISessionFollowsTheConfig: a session's token is looked up in the
// config in force, so a reload without it ends the session.
func TestUISessionFollowsTheConfig(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiLead)
	u.cfg.Store(parseUIConfig(t, strings.Replace(uiConfig, uiLead, "ui-lead-token-rotated-0123456789", 1)))
	if w := b.get("/"); w.Code != http.StatusSeeOther {
		t.Errorf("GET / after the token left the config: %d, want 303", w.Code)
	}
}

func TestUIShowsWhatTheAPIShows(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiRead)
	body := b.get("/").Body.String()
	for _, want := range []string{
		"<h2>staging</h2>", "<h2>production</h2>", // grouped by environment
		">latest<", ">111111111111<", "running · healthy", // what runs
		"outcome-succeeded", "took 40.0s", `class="ph ph-pull" x="2.5" y="0" width="50"`, // the last deploy and its bar
		"awaiting approval:", "request 7", "<code>" + digestV2 + "</code>", "pushed by alice", // the pending push, what approving deploys
		"health gate: container exited (code 3)", "outcome-rolled_back", // a failure
		"tag latest matches none of its tags", // a delivery, and why it was ignored
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview lacks %q", want)
		}
	}
	if strings.Index(body, "<h2>staging</h2>") > strings.Index(body, "<h2>production</h2>") {
		t.Error("environments not in the config's order")
	}
	body = b.get("/deployments/web-prod").Body.String()
	if !strings.Contains(body, `id="deploy-1"`) {
		t.Errorf("the deployment's page:\n%s", body)
	}
	// The release's output is for logs:<env> tokens (GET
	// /api/v1/deploys/{id}/logs), not for every reader of the page.
	if strings.Contains(body, "Applying migrations") {
		t.Errorf("the deployment's page shows the release's output:\n%s", body)
	}
}

// TestUIEscapes: what comes from a push, an error or a release is text,
// never markup; and no token reaches a page.
func TestUIEscapes(t *testing.T) {
	u := newUIHarness(t)
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
	u.hist.deploys = append(u.hist.deploys, deploy.Record{ID: 3, Deployment: "web-prod", Environment: "production",
		Tag: evil, Digest: evil, Trigger: evil, Actor: evil, Pusher: evil, Outcome: deploy.Failed, Error: "pull: " + evil + " " + uiAdmin[:3],
		Started: testNow, Ended: testNow, Phases: map[string]time.Duration{evil: time.Second}, ReleaseOutput: evil})
	u.hist.deliveries = append(u.hist.deliveries, deploy.Delivery{ID: evil, Source: evil, Image: evil, Tag: evil, Pusher: evil,
		Accepted: []string{evil}, Ignored: []deployments.Ignored{{Tag: evil, Reason: evil}}})
	u.eng.status["web-prod"] = deploy.Status{Pending: &deploy.Request{Tag: evil, Digest: evil, Pusher: evil, Delivery: evil},
		Paused: &deploy.Pause{Actor: evil, Since: testNow}}
	b := u.browser(t)
	b.login(uiAdmin)
	for _, path := range []string{"/", "/deployments/web-prod"} {
		w := b.get(path)
		body := w.Body.String()
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, w.Code, body)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") || strings.Contains(body, "onerror=alert(2)>") {
			t.Errorf("GET %s: markup from the history is not escaped", path)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s: the hostile text is not shown, escaped", path)
		}
		for _, secret := range []string{uiRead, uiLead, uiCI, uiAdmin, testToken, b.cookie.Value} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s: a token or the session id is in the page", path)
			}
		}
	}
}

// TestUIOffWithoutTokens: without api_tokens there is no API, and no page.
func TestUIOffWithoutTokens(t *testing.T) {
	u := newUIHarness(t)
	noTokens := uiConfig[:strings.Index(uiConfig, "api_tokens:")] + uiConfig[strings.Index(uiConfig, "environments:"):]
	u.cfg.Store(parseUIConfig(t, strings.Replace(noTokens, "{required: true, timeout: 1h}", "{required: false}", 1)))
	b := u.browser(t)
	for _, path := range []string{"/", "/login", "/deployments/web-prod", "/static/style.css"} {
		if w := b.get(path); w.Code != http.StatusNotFound || w.Body.String() != httperr.NotFoundBody {
			t.Errorf("GET %s without api_tokens: %d %s, want the 404 of an unknown path", path, w.Code, w.Body)
		}
	}
	if w := b.post("/login", url.Values{"token": {uiRead}}); w.Code != http.StatusNotFound {
		t.Errorf("POST /login without api_tokens: %d", w.Code)
	}
}

// TestUIElsewhere: with APIElsewhere the page is not on Handler either.
func TestUIElsewhere(t *testing.T) {
	u := newUIHarness(t)
	h := newHarness(t, func(o *Options) {
		o.Catalogue = func() Catalogue { return u.cfg.Load() }
		o.DeployEngine, o.History, o.APIElsewhere = u.eng, u.hist, true
	})
	for _, path := range []string{"/", "/login"} {
		if w := h.do(http.MethodGet, path, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s on listen with the API elsewhere: %d, want 404", path, w.Code)
		}
	}
}

// TestUIEngineDown: when the container engine does not answer, the page
// still shows everything else, says what runs is unknown, and keeps
// refreshing.
func TestUIEngineDown(t *testing.T) {
	u := newUIHarness(t)
	u.eng.engineDown = fmt.Errorf("dial unix /nope: connect: no such file: %w", deploy.ErrUnavailable)
	b := u.browser(t)
	b.login(uiRead)
	for _, path := range []string{"/", "/deployments/web-prod"} {
		w := b.get(path)
		body := w.Body.String()
		if w.Code != http.StatusOK || !strings.Contains(body, "web-prod") || !strings.Contains(body, "the container engine does not answer") {
			t.Errorf("GET %s with the engine down: %d, want 200 with the deployments and the engine's state:\n%s", path, w.Code, body)
		}
	}
}

// A link into the page (from a notification, say) survives the login; a
// next that leads elsewhere is ignored.
func TestUILoginGoesBackToThePageAskedFor(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	w := b.get("/deployments/web-prod")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next=%2Fdeployments%2Fweb-prod" {
		t.Fatalf("GET a page without a session: %d %q", w.Code, w.Header().Get("Location"))
	}
	if body := b.get("/login?next=%2Fdeployments%2Fweb-prod").Body.String(); !strings.Contains(body, `name="next" value="/deployments/web-prod"`) {
		t.Errorf("the login form does not carry next:\n%s", body)
	}
	for next, want := range map[string]string{
		"/deployments/web-prod": "/deployments/web-prod",
		"//evil.example/":       "/",
		"/\\evil.example/":      "/",
		"https://evil.example/": "/",
		"/x\r\nSet-Cookie: a=b": "/",
		"":                      "/",
	} {
		w := b.post("/login", url.Values{"token": {uiRead}, "next": {next}})
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Errorf("login with next %q: %d %q, want 303 to %s", next, w.Code, w.Header().Get("Location"), want)
		}
	}
	if body := b.post("/login", url.Values{"token": {uiUnknown}, "next": {"//evil.example/"}}).Body.String(); strings.Contains(body, "evil") {
		t.Errorf("a wrong token's form carries a foreign next:\n%s", body)
	}
}

// With several engines, one away does not hide the deployments of the
// others: the list names the one whose engine does not answer, and only
// when none answers is it a 503.
func TestAPIListWithAnEngineAway(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.header.Set("Authorization", "Bearer "+uiRead)
	u.eng.mu.Lock()
	u.eng.away = map[string]error{"web-staging": fmt.Errorf("inspect web-staging on engine \"far\": %w", deploy.ErrUnavailable)}
	u.eng.mu.Unlock()
	w := b.get("/api/v1/deployments")
	var list struct {
		Deployments []struct {
			Name        string
			Running     *struct{ ID string }
			EngineError *string `json:"engine_error"`
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); w.Code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/v1/deployments with one engine away: %d %v\n%s", w.Code, err, w.Body)
	}
	seen := 0
	for _, d := range list.Deployments {
		switch d.Name {
		case "web-staging":
			seen++
			if d.EngineError == nil || !strings.Contains(*d.EngineError, `engine "far"`) || d.Running != nil {
				t.Errorf("web-staging: engine_error %v, running %v", d.EngineError, d.Running)
			}
		case "web-prod":
			seen++
			if d.EngineError != nil || d.Running == nil || d.Running.ID != "c1" {
				t.Errorf("web-prod: engine_error %v, running %v", d.EngineError, d.Running)
			}
		}
	}
	if seen != 2 {
		t.Errorf("listed %+v", list.Deployments)
	}
	if w := b.get("/api/v1/deployments/web-staging"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("GET of the deployment whose engine is away: %d, want 503", w.Code)
	}
	u.eng.mu.Lock()
	u.eng.engineDown = fmt.Errorf("dial unix /nope: %w", deploy.ErrUnavailable)
	u.eng.mu.Unlock()
	if w := b.get("/api/v1/deployments"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /api/v1/deployments with no engine answering: %d, want 503", w.Code)
	}
}
