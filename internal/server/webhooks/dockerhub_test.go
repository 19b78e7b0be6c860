package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// hookAnswer decodes a 202 body, failing on fields it does not know.
func hookAnswer(t *testing.T, body string) apiv1.HookAnswer {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	var a apiv1.HookAnswer
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return a
}

func TestDockerHubAccepted(t *testing.T) {
	tests := []struct {
		fixture  string
		repoTag  string // what Match is asked
		accepted []string
		ignored  []deployments.Ignored
		pusher   string
	}{
		{
			fixture: "push.json", repoTag: "docker.io/pmpl/dblood:staging",
			accepted: []string{staging},
			ignored:  []deployments.Ignored{{Deployment: production, Reason: `tag "staging" matches none of [semver:^1]`}},
			pusher:   "pmpl-ci",
		},
		{ // float pushed_at, images null, dockerfile present
			fixture: "push_legacy.json", repoTag: "docker.io/svendowideit/testhook:latest",
			accepted: []string{"testhook"}, pusher: "trustedbuilder",
		},
		{ // official image as library/nginx
			fixture: "official_library.json", repoTag: "docker.io/library/nginx:1.27-alpine",
			accepted: []string{"proxy"}, pusher: "doijanky",
		},
		{ // official image as plain nginx: the same repository
			fixture: "official_short.json", repoTag: "docker.io/library/nginx:1.27-alpine",
			accepted: []string{"proxy"}, pusher: "doijanky",
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			h := newHarness(t, nil)
			w := h.post(fixture(t, tt.fixture))
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			a := hookAnswer(t, w.Body.String())
			if !isDeliveryID(a.Delivery) {
				t.Errorf("delivery %q: want 24 hex digits", a.Delivery)
			}
			if a.Accepted != len(tt.accepted) || a.Ignored != len(tt.ignored) || a.Pending != 0 || a.Held != 0 {
				t.Errorf("answer %+v, want %d accepted and %d ignored", a, len(tt.accepted), len(tt.ignored))
			}
			// The names and the reasons go to the history (and the log).
			if d := h.last(); d.ID != a.Delivery || !reflect.DeepEqual(d.Accepted, tt.accepted) || !reflect.DeepEqual(d.Ignored, tt.ignored) {
				t.Errorf("recorded %+v, want accepted %v ignored %v", d, tt.accepted, tt.ignored)
			}
			if got := h.cat.matches(); !reflect.DeepEqual(got, []string{tt.repoTag}) {
				t.Errorf("Match calls %v, want [%s]", got, tt.repoTag)
			}
			repo, tag, _ := strings.Cut(tt.repoTag, ":")
			want := []deploy.Request{{
				Deployment: tt.accepted[0], Image: repo, Tag: tag, Trigger: "dockerhub",
				Delivery: a.Delivery, Pusher: tt.pusher, Received: testNow,
			}}
			if got := h.dep.requests(); !reflect.DeepEqual(got, want) {
				t.Errorf("enqueued %+v\nwant     %+v", got, want)
			}
		})
	}
}

func isDeliveryID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// TestHookAnswerGivesCountsOnly: the 202 is the delivery's id and counts,
// numbers even when 0; it names no deployment, tag rule or reason, which
// the holder of a hook token must not learn; the history gets them, and
// the log line says why.
func TestHookAnswerGivesCountsOnly(t *testing.T) {
	h := newHarness(t, nil)
	body := strings.Replace(fixture(t, "push.json"), `"tag": "staging"`, `"tag": "feature-x"`, 1)
	w := h.post(body)
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 5 || string(raw["accepted"]) != "0" || string(raw["pending"]) != "0" || string(raw["held"]) != "0" || string(raw["ignored"]) != "0" {
		t.Errorf("unmatched tag: body %s, want the delivery and four counts, 0", w.Body)
	}
	if n := len(h.dep.requests()); n != 0 {
		t.Errorf("%d deploys queued for an unmatched tag", n)
	}

	w = h.post(fixture(t, "push.json"))
	a := hookAnswer(t, w.Body.String())
	if a.Accepted != 1 || a.Ignored != 1 {
		t.Errorf("body %s, want 1 accepted and 1 ignored", w.Body)
	}
	for _, leak := range []string{staging, production, "matches none", "semver"} {
		if strings.Contains(w.Body.String(), leak) {
			t.Errorf("the answer tells %q: %s", leak, w.Body)
		}
	}
	if d := h.last(); !reflect.DeepEqual(d.Ignored, []deployments.Ignored{{Deployment: production, Reason: `tag "staging" matches none of [semver:^1]`}}) {
		t.Errorf("recorded ignored %+v", d.Ignored)
	}
	if !strings.Contains(h.logs.String(), `"why":["dblood-production: tag \"staging\" matches none of [semver:^1]"]`) {
		t.Errorf("the log does not say why:\n%s", h.logs)
	}
}

func TestDockerHubSignatureTagsIgnored(t *testing.T) {
	for _, tag := range []string{
		"sha256-" + strings.Repeat("ab", 32) + ".sig",
		"sha256-" + strings.Repeat("0f", 32) + ".att",
		"sha256-" + strings.Repeat("0f", 32),
	} {
		t.Run(tag[len(tag)-4:], func(t *testing.T) {
			h := newHarness(t, nil)
			h.cat.MatchFn = func(repo, tag string) deployments.MatchResult {
				t.Errorf("Match(%s, %s) called for a signature tag", repo, tag)
				return deployments.MatchResult{}
			}
			body := strings.Replace(fixture(t, "push.json"), `"tag": "staging"`, `"tag": "`+tag+`"`, 1)
			w := h.post(body)
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			a := hookAnswer(t, w.Body.String())
			if a.Accepted != 0 || a.Ignored != 1 {
				t.Errorf("answer %+v", a)
			}
			if ig := h.last().Ignored; len(ig) != 1 || ig[0].Tag != tag || ig[0].Reason == "" {
				t.Errorf("recorded ignored %+v", ig)
			}
			if n := len(h.dep.requests()); n != 0 {
				t.Errorf("%d deploys queued", n)
			}
		})
	}
}

func TestDockerHubTrailingSlash(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RateLimit = 1 })
	if w := h.do(http.MethodPost, "/hooks/dockerhub/"+testToken+"/", strings.NewReader(fixture(t, "push.json"))); w.Code != http.StatusAccepted {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	// Both routes share one rate limit.
	if w := h.post(fixture(t, "push.json")); w.Code != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429", w.Code)
	}
}

func TestDockerHubRepoFallback(t *testing.T) {
	// An empty repo_name falls back to namespace/name.
	h := newHarness(t, nil)
	body := strings.Replace(fixture(t, "push.json"), `"repo_name": "pmpl/dblood"`, `"repo_name": ""`, 1)
	if w := h.post(body); w.Code != http.StatusAccepted {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	if got := h.cat.matches(); !reflect.DeepEqual(got, []string{"docker.io/pmpl/dblood:staging"}) {
		t.Errorf("Match calls %v", got)
	}
}

// readSpy fails the test if the body is read.
type readSpy struct{ t *testing.T }

func (r readSpy) Read([]byte) (int, error) {
	r.t.Error("body read before the token was checked")
	return 0, io.EOF
}

func TestDockerHubUnauthorized(t *testing.T) {
	tests := []struct{ name, target string }{
		{"wrong token", "/hooks/dockerhub/tok-wrong"},
		{"token prefix", "/hooks/dockerhub/" + testToken[:len(testToken)-1]},
		{"unknown source", "/hooks/nosuchsource/" + testToken},
		{"source not served", "/hooks/gitlab/" + testToken},
		{"unknown path", "/hooks/dockerhub/" + testToken + "/extra"},
		{"no token", "/hooks/dockerhub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			// The catalogue would accept this token for any source: only
			// the server knows which sources it serves.
			h.cat.HookAuthFn = func(_, token string) bool {
				return tt.name == "source not served" && token == testToken
			}
			w := h.do(http.MethodPost, tt.target, readSpy{t})
			if w.Code != http.StatusNotFound || w.Body.String() != httperr.NotFoundBody {
				t.Errorf("status %d body %q, want 404 %q", w.Code, w.Body, httperr.NotFoundBody)
			}
			if n := len(h.dep.requests()); n != 0 {
				t.Errorf("%d deploys queued", n)
			}
		})
	}

	// An unknown source asks the catalogue too, so that it costs what a
	// wrong token costs.
	h := newHarness(t, nil)
	h.do(http.MethodPost, "/hooks/nosuchsource/x", readSpy{t})
	if !reflect.DeepEqual(h.cat.authed, []string{"nosuchsource"}) {
		t.Errorf("HookAuth calls %v", h.cat.authed)
	}
}

func TestDockerHubInvalid(t *testing.T) {
	valid := fixture(t, "push.json")
	withTag := func(tag string) string {
		return strings.Replace(valid, `"tag": "staging"`, `"tag": `+tag, 1)
	}
	withRepo := func(repo string) string {
		return strings.Replace(valid, `"repo_name": "pmpl/dblood"`, `"repo_name": `+repo, 1)
	}
	tests := []struct {
		name, body string
		reason     string // a part of the reason
	}{
		{"empty body", "", "JSON object"},
		{"malformed", `{"push_data": {"tag": "staging"`, "malformed JSON"},
		{"not JSON", "tag=staging", "JSON object"},
		{"array", `[{"push_data": {"tag": "staging"}}]`, "JSON object"},
		{"string", `"staging"`, "JSON object"},
		{"null", `null`, "JSON object"},
		{"trailing garbage", valid + "garbage", "malformed JSON"},
		{"two objects", valid + valid, "malformed JSON"},
		{"tag is a number", withTag("1"), "push_data.tag: want string, got number"},
		{"tag is an object", withTag(`{"name": "staging"}`), "push_data.tag"},
		{"push_data is a string", strings.Replace(valid, `"push_data": {`, `"push_data": "x", "p": {`, 1), "push_data: want object, got string"},
		{"pushed_at is a string", strings.Replace(valid, `"pushed_at": 1717171717`, `"pushed_at": "1717171717"`, 1), "push_data.pushed_at"},
		{"repo_name is a number", withRepo("7"), "repository.repo_name"},
		{"missing tag", withTag(`""`), "push_data.tag: missing"},
		{"null tag", withTag(`null`), "push_data.tag: missing"},
		{"missing push_data", `{"repository": {"repo_name": "pmpl/dblood"}}`, "push_data.tag: missing"},
		{"missing repository", `{"push_data": {"tag": "staging"}}`, "repository.repo_name: missing"},
		{"tag starts with -", withTag(`"-bad"`), "push_data.tag"},
		{"tag with /", withTag(`"a/b"`), "push_data.tag"},
		{"tag ..", withTag(`".."`), "push_data.tag"},
		{"tag of 129", withTag(`"` + strings.Repeat("a", 129) + `"`), "push_data.tag"},
		{"tag with space", withTag(`"v 1"`), "push_data.tag"},
		{"uppercase repo", withRepo(`"Pmpl/Dblood"`), "repository.repo_name"},
		{"dot-dot repo", withRepo(`"../x"`), "repository.repo_name"},
		{"repo with a tag", withRepo(`"pmpl/dblood:staging"`), "repository.repo_name"},
		{"repo with a digest", withRepo(`"pmpl/dblood@sha256:` + strings.Repeat("a", 64) + `"`), "repository.repo_name"},
		{"repo on another registry", withRepo(`"ghcr.io/pmpl/dblood"`), "not on Docker Hub"},
		{"repo too long", withRepo(`"pmpl/` + strings.Repeat("a", 300) + `"`), "repository.repo_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := h.post(tt.body)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d body %s, want 400", w.Code, w.Body)
			}
			var e apiv1.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if !strings.Contains(e.Error, tt.reason) || !isDeliveryID(e.Delivery) {
				t.Errorf("body %s: want a reason with %q and a delivery id", w.Body, tt.reason)
			}
			if len(e.Error) > httperr.MaxReason+3 {
				t.Errorf("reason of %d bytes", len(e.Error))
			}
			if n := len(h.dep.requests()); n != 0 {
				t.Errorf("%d deploys queued", n)
			}
		})
	}
}

func TestDockerHubTooLarge(t *testing.T) {
	padded := func(n int) string {
		valid := fixture(t, "push.json")
		return strings.Replace(valid, `"description": "`, `"description": "`+strings.Repeat("x", n-len(valid)), 1)
	}
	tests := []struct {
		name    string
		maxBody int64
		body    string
		chunked bool // no Content-Length: the limit bites while reading
		want    int
	}{
		{"1 MiB is fine", 0, padded(1 << 20), false, http.StatusAccepted},
		{"1 MiB + 1", 0, padded(1<<20 + 1), false, http.StatusRequestEntityTooLarge},
		{"1 MiB + 1 chunked", 0, padded(1<<20 + 1), true, http.StatusRequestEntityTooLarge},
		{"over a set limit", 4096, padded(4097), true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.MaxBody = tt.maxBody })
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length from httptest
			}
			w := h.do(http.MethodPost, "/hooks/dockerhub/"+testToken, body)
			if w.Code != tt.want {
				t.Fatalf("status %d body %.200s, want %d", w.Code, w.Body, tt.want)
			}
			if tt.want == http.StatusRequestEntityTooLarge {
				if !strings.Contains(w.Body.String(), `"error":"body too large`) {
					t.Errorf("body %s", w.Body)
				}
				if n := len(h.dep.requests()); n != 0 {
					t.Errorf("%d deploys queued", n)
				}
			}
		})
	}
}

func BenchmarkDockerHubHook(b *testing.B) {
	// No rate limit: every delivery comes from one address.
	h := newHarness(b, func(o *Options) { o.RateLimit = 0 })
	h.hh.log = zerolog.Nop()
	h.dep = nil
	h.hh.deployer = discard{}
	body := fixture(b, "push.json")
	target := "/hooks/dockerhub/" + testToken
	handler := h.router
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.1:1234"
		w := &nopWriter{h: http.Header{}}
		handler.ServeHTTP(w, r)
		if w.code != http.StatusAccepted {
			b.Fatalf("status %d", w.code)
		}
	}
}

type discard struct{}

func (discard) Enqueue(_ context.Context, rs ...deploy.Request) ([]deploy.Disposition, error) {
	return make([]deploy.Disposition, len(rs)), nil
}

// nopWriter is a ResponseWriter that keeps only the status.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }
