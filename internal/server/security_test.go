package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestPauseAnswersWhatItDid: a pause (or a resume) that took effect
// answers 200 with paused true even while the container engine does not
// answer; engine_error says why what runs is unknown. (It answered 503,
// and a client retried a pause that had happened.)
func TestPauseAnswersWhatItDid(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.header.Set("Authorization", "Bearer "+uiAdmin)
	u.eng.mu.Lock()
	u.eng.engineDown = fmt.Errorf("dial unix /nope: %w", deploy.ErrUnavailable)
	u.eng.mu.Unlock()
	w := b.post("/api/v1/deployments/web-staging/pause", nil)
	var got struct { // apiv1.Acted: the deployment's fields, inline
		Paused      bool
		EngineError *string `json:"engine_error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != http.StatusOK || err != nil {
		t.Fatalf("pause with the engine away: %d %v\n%s", w.Code, err, w.Body)
	}
	if !got.Paused || got.EngineError == nil || !strings.Contains(*got.EngineError, "/nope") {
		t.Errorf("pause answered %s", w.Body)
	}
	if w := b.post("/api/v1/deployments/web-staging/resume", nil); w.Code != http.StatusOK {
		t.Errorf("resume with the engine away: %d %s", w.Code, w.Body)
	}
	if c := u.eng.called(); !slices.Equal(c, []string{"pause web-staging root", "resume web-staging root"}) {
		t.Errorf("engine calls: %v", c)
	}
}

// TestBearerAnyCase: the API and the page read Authorization with one
// rule: the scheme's case does not matter.
func TestBearerAnyCase(t *testing.T) {
	u := newUIHarness(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		b := u.browser(t)
		b.header.Set("Authorization", scheme+" "+uiRead)
		for _, path := range []string{"/api/v1/deployments", "/"} {
			if w := b.get(path); w.Code != http.StatusOK {
				t.Errorf("GET %s with %q: %d", path, scheme, w.Code)
			}
		}
		b.header.Set("Authorization", scheme+" "+uiUnknown)
		for _, path := range []string{"/api/v1/deployments", "/"} {
			if w := b.get(path); w.Code != http.StatusUnauthorized {
				t.Errorf("GET %s with %q and an unknown token: %d, want 401", path, scheme, w.Code)
			}
		}
	}
}

// TestApproveNamesThePendingPush: the API's approve and reject take the
// pending push's request id (required) and optionally its digest, shown
// as pending.request and pending.digest; a push that is no longer the
// one pending is a 409 that says which one is, and nothing is decided.
func TestApproveNamesThePendingPush(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.header.Set("Authorization", "Bearer "+uiLead)
	var view struct {
		Pending struct {
			Request int64
			Digest  string
		}
	}
	if w := b.get("/api/v1/deployments/web-prod"); json.Unmarshal(w.Body.Bytes(), &view) != nil ||
		view.Pending.Request != pendingID || view.Pending.Digest != digestV2 {
		t.Fatalf("GET web-prod: %d %s, want pending.request and pending.digest", w.Code, w.Body)
	}
	post := func(action, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/deployments/web-prod/"+action, strings.NewReader(body))
		return b.do(r)
	}
	for _, tt := range []struct {
		body   string
		status int
		says   string
	}{
		{``, http.StatusBadRequest, `give \"request\"`},
		{`{"request": 0}`, http.StatusBadRequest, `give \"request\"`},
		{`{"request": 6}`, http.StatusConflict, "request 6 is no longer the push of web-prod awaiting approval: request 7 is (tag latest, digest " + digestV2},
		{`{"request": 7, "digest": "` + digestV1 + `"}`, http.StatusConflict, "request 7 of web-prod is digest " + digestV2 + " (tag latest), not the digest given"},
		{`{"request": 7, "digest": "sha256:nope"}`, http.StatusBadRequest, "not a sha256 digest"},
	} {
		for _, action := range []string{"approve", "reject"} {
			if w := post(action, tt.body); w.Code != tt.status || !strings.Contains(w.Body.String(), tt.says) {
				t.Errorf("%s %s: %d %s, want %d saying %q", action, tt.body, w.Code, w.Body, tt.status, tt.says)
			}
		}
	}
	if c := u.eng.called(); len(c) != 0 {
		t.Fatalf("decided: %v", c)
	}
	w := post("approve", `{"request": 7, "digest": "`+digestV2+`"}`)
	var got struct {
		Request int64
		Digest  string
	}
	if json.Unmarshal(w.Body.Bytes(), &got) != nil || w.Code != http.StatusAccepted || got.Request != pendingID || got.Digest != digestV2 {
		t.Errorf("approve: %d %s", w.Code, w.Body)
	}
	if c := u.eng.called(); !slices.Equal(c, []string{"approve web-prod lead"}) {
		t.Errorf("engine calls: %v", c)
	}
}

// TestUIApproveStale: the page's button names the push it showed; when
// another replaced it meanwhile, the approval is refused with a flash
// saying which one is pending now.
func TestUIApproveStale(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiLead)
	csrf := b.csrf()
	u.eng.mu.Lock()
	st := u.eng.status["web-prod"]
	swapped := *st.Pending
	swapped.ID, swapped.Digest = pendingID+1, digestV1
	st.Pending = &swapped
	u.eng.status["web-prod"] = st
	u.eng.mu.Unlock()
	b.post("/deployments/web-prod/approve", url.Values{"csrf": {csrf}, "request": {"7"}, "digest": {digestV2}})
	if body := b.get("/").Body.String(); !strings.Contains(body, "flash-error") || !strings.Contains(body, "request 8 is") {
		t.Errorf("approve of a replaced push:\n%s", body)
	}
	if c := u.eng.called(); len(c) != 0 {
		t.Errorf("decided: %v", c)
	}
}

// TestUIApproveOtherDigestNotEchoed: the page's form passes its digest
// on unchecked; when it is not the pending push's, the flash says which
// digest is pending and does not echo what the form sent (a secret
// pasted there, say).
func TestUIApproveOtherDigestNotEchoed(t *testing.T) {
	const pasted = "my-db-pass!word"
	u := newUIHarness(t)
	b := u.browser(t)
	b.login(uiLead)
	b.post("/deployments/web-prod/approve", url.Values{"csrf": {b.csrf()}, "request": {"7"}, "digest": {pasted}})
	body := b.get("/").Body.String()
	if !strings.Contains(body, "flash-error") || !strings.Contains(body, "request 7 of web-prod is digest "+digestV2) {
		t.Errorf("approve with another digest: no flash naming the pending digest:\n%s", body)
	}
	if strings.Contains(body, pasted) {
		t.Errorf("the page echoes what the form sent as the digest:\n%s", body)
	}
	if c := u.eng.called(); len(c) != 0 {
		t.Errorf("decided: %v", c)
	}
}

// TestCrossSiteAndRebindingRefused: a page in a browser can neither make
// liftoff act without a token nor read what needs none. POST /-/reload
// and the API's POSTs refuse what a browser marks as cross-site
// (Sec-Fetch-Site, else an Origin that is not the Host); /-/reload
// answers only a loopback Host; /metrics and /readyz refuse a dotted
// name (DNS rebinding) and answer an IP address, localhost or a
// one-label name; hooks, which registries send without either header,
// are not checked.
func TestCrossSiteAndRebindingRefused(t *testing.T) {
	reloads := 0
	u := newUIHarness(t)
	h := newHarness(t, func(o *Options) { o.Reload = func() error { reloads++; return nil } })
	serve := func(srv http.Handler, method, path, host string, header http.Header) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr, r.Host = "127.0.0.1:40000", host
		for k, v := range header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	hdr := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		host   string
		header http.Header
		want   int
	}{
		{"curl", "127.0.0.1:8080", nil, http.StatusOK},
		{"localhost", "localhost:8080", nil, http.StatusOK},
		{"ipv6 loopback", "[::1]:8080", nil, http.StatusOK},
		{"same origin", "127.0.0.1:8080", hdr("Sec-Fetch-Site", "same-origin", "Origin", "http://127.0.0.1:8080"), http.StatusOK},
		{"cross-site", "127.0.0.1:8080", hdr("Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"), http.StatusForbidden},
		{"same-site", "127.0.0.1:8080", hdr("Sec-Fetch-Site", "same-site"), http.StatusForbidden},
		{"foreign origin, no Sec-Fetch-Site", "127.0.0.1:8080", hdr("Origin", "https://evil.example"), http.StatusForbidden},
		{"rebinding", "evil.example:8080", nil, http.StatusForbidden},
		{"rebinding, same origin", "evil.example:8080", hdr("Sec-Fetch-Site", "same-origin"), http.StatusForbidden},
		{"a LAN address", "192.168.1.5:8080", nil, http.StatusForbidden},
	} {
		before := reloads
		w := serve(h.srv.Handler(), http.MethodPost, "/-/reload", tt.host, tt.header)
		if w.Code != tt.want || (reloads > before) != (tt.want == http.StatusOK) {
			t.Errorf("POST /-/reload, %s: %d %s, %d reloads", tt.name, w.Code, w.Body, reloads-before)
		}
		if strings.Contains(w.Body.String(), "evil") {
			t.Errorf("POST /-/reload, %s: the answer echoes the Host or Origin: %s", tt.name, w.Body)
		}
	}

	auth := hdr("Authorization", "Bearer "+uiAdmin)
	if w := serve(u.srv.Handler(), http.MethodPost, "/api/v1/deployments/web-staging/pause", "127.0.0.1:8080",
		hdr("Authorization", "Bearer "+uiAdmin, "Sec-Fetch-Site", "cross-site")); w.Code != http.StatusForbidden {
		t.Errorf("API pause, cross-site: %d %s", w.Code, w.Body)
	}
	if c := u.eng.called(); len(c) != 0 {
		t.Errorf("a cross-site API request acted: %v", c)
	}
	if w := serve(u.srv.Handler(), http.MethodPost, "/api/v1/deployments/web-staging/pause", "deploy.example.com", auth); w.Code != http.StatusOK {
		t.Errorf("API pause from the CLI behind a named proxy: %d %s", w.Code, w.Body)
	}
	if w := serve(u.srv.Handler(), http.MethodGet, "/api/v1/deployments", "127.0.0.1:8080",
		hdr("Authorization", "Bearer "+uiRead, "Sec-Fetch-Site", "cross-site")); w.Code != http.StatusOK {
		t.Errorf("API GET, cross-site (safe, and the token is required anyway): %d", w.Code)
	}

	for _, path := range []string{"/metrics", "/readyz"} {
		for host, want := range map[string]int{
			"10.0.0.5:8080": http.StatusOK, "[2001:db8::1]:8080": http.StatusOK, "liftoff:8080": http.StatusOK,
			"localhost:8080": http.StatusOK, "evil.example:8080": http.StatusForbidden, "evil.example.:8080": http.StatusForbidden,
		} {
			if w := serve(h.srv.Handler(), http.MethodGet, path, host, nil); w.Code != want {
				t.Errorf("GET %s with Host %s: %d, want %d", path, host, w.Code, want)
			}
		}
	}
	if w := serve(h.srv.Handler(), http.MethodGet, "/healthz", "evil.example", nil); w.Code != http.StatusOK {
		t.Errorf("GET /healthz by any name: %d, want 200 (it tells nothing)", w.Code)
	}
	body := fixture(t, "push.json")
	r := httptest.NewRequest(http.MethodPost, "/hooks/dockerhub/"+testToken, strings.NewReader(body))
	r.Header.Set("Origin", "https://hub.docker.com")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusAccepted {
		t.Errorf("hook with an Origin: %d %s, want 202 (hooks are not a browser's)", w.Code, w.Body)
	}
}

// TestClientValuesNotEchoed: a 400 quotes at most a short excerpt of what
// the client sent, and never a word that looks like a token; a tag or a
// repository that is one of the config's tokens is refused before it is
// deployed, logged, recorded or echoed.
func TestClientValuesNotEchoed(t *testing.T) {
	const secret = "Zq7c1d9e5b3a8f6e4d2c0b9a7f5e3d1c"
	u := newUIHarness(t)
	b := u.browser(t)
	b.header.Set("Authorization", "Bearer "+uiAdmin)
	postDeploy := func(body string) *httptest.ResponseRecorder {
		return b.do(httptest.NewRequest(http.MethodPost, "/api/v1/deployments/web-staging/deploy", strings.NewReader(body)))
	}
	for _, body := range []string{
		`{"tag": "` + uiAdmin + `"}`,             // an API token as the tag
		`{"tag": "` + testToken + `"}`,           // the hook's token as the tag
		`{"tag": "v1/` + secret + `"}`,           // a bad tag
		`{"digest": "sha256:` + secret + `"}`,    // a bad digest
		`{"tag": "v1", "` + secret + `": true}`,  // an unknown field
		`{"tag": "v1", "x": "` + secret + `"} x`, // not one JSON value
	} {
		w := postDeploy(body)
		if w.Code != http.StatusBadRequest {
			t.Errorf("deploy %s: %d, want 400", body, w.Code)
		}
		for _, s := range []string{uiAdmin, testToken, secret, secret[:12]} {
			if strings.Contains(w.Body.String(), s) {
				t.Errorf("deploy %s: the answer echoes %q: %s", body, s, w.Body)
			}
		}
	}
	if got := u.eng.requests(); len(got) != 0 {
		t.Errorf("deployed: %+v", got)
	}

	// Hooks: a token as the tag or the repository is refused (400) and
	// not recorded; a bad tag is not echoed either.
	var recorded []string
	h := newHarness(t, func(o *Options) {
		o.OnDelivery = func(d deploy.Delivery) { recorded = append(recorded, d.Tag) }
	})
	for _, body := range []string{
		testenv.DockerHubPayload("pmpl/dblood", testToken),
		testenv.DockerHubPayload("acme/"+testToken, "latest"),
		testenv.DockerHubPayload("pmpl/dblood", "bad/"+secret),
	} {
		w := h.post(body)
		if w.Code != http.StatusBadRequest {
			t.Errorf("hook: %d %s, want 400", w.Code, w.Body)
		}
		for _, s := range []string{testToken, secret, secret[:12]} {
			if strings.Contains(w.Body.String(), s) {
				t.Errorf("hook: the answer echoes %q: %s", s, w.Body)
			}
		}
	}
	for _, s := range []string{testToken, secret[:12]} {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("the log holds %q:\n%s", s, h.logs)
		}
	}
	if got := h.dep.requests(); len(got) != 0 || len(recorded) != 0 {
		t.Errorf("deployed %+v, recorded %v", got, recorded)
	}
}
