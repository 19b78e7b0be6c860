package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// API tokens of apiConfig, one per kind of caller.
const (
	tokRead     = "read-token-5a1c0e7f3b9d2a4c8e6f"
	tokStaging  = "staging-token-7d3f1a9c5e2b8f4a6c0d"
	tokProd     = "prod-token-2b8e4c6a0f1d3e5a7c9b"
	tokApprover = "approve-token-9f7e5d3c1b0a8e6c4a2d"
	tokAdmin    = "admin-token-3c5e7a9b1d0f2e4c6a8b"
	tokUnknown  = "nobody-token-0a2c4e6b8d1f3a5c7e9b"
)

// apiConfig: NAME-staging deploys any v* tag at once; NAME-prod deploys
// latest once someone approves it (within 2m); NAME-canary too, but its
// pushes expire after 2s. %[1]s prefix, %[2]s mirror, %[3]s hook token.
const apiConfig = configHead + `api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
  - {name: ci, token: ` + tokStaging + `, scopes: ["deploy:staging"]}
  - {name: prod, token: ` + tokProd + `, scopes: ["deploy:production"]}
  - {name: lead, token: ` + tokApprover + `, scopes: ["approve:production", "approve:canary"]}
  - {name: root, token: ` + tokAdmin + `, scopes: [admin]}
environments:
  staging: {}
  production:
    approval: {required: true, timeout: 2m}
  canary:
    approval: {required: true, timeout: 2s}
deployments:
  - name: %[1]s-staging
    image: acme/%[1]s
    tags: ["glob:v*"]
    environment: staging
    health: {min_uptime: 200ms}
  - name: %[1]s-prod
    image: acme/%[1]s
    tags: [latest, "glob:release-*"]
    environment: production
    health: {min_uptime: 200ms}
  - name: %[1]s-canary
    image: acme/%[1]s
    tags: [canary]
    environment: canary
    health: {min_uptime: 200ms}
`

// api calls the management API with token ("" for none) and returns the
// status and the answer, decoded.
func (d *daemon) api(token, method, path, body string) (int, map[string]any) {
	d.t.Helper()
	status, raw := d.apiRaw(token, method, path, body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			d.t.Fatalf("%s %s: %d %q: %v", method, path, status, raw, err)
		}
	}
	return status, out
}

func (d *daemon) apiRaw(token, method, path, body string) (int, []byte) {
	d.t.Helper()
	req, err := http.NewRequest(method, d.base+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// apiOK is api, which must answer want.
func (d *daemon) apiOK(want int, token, method, path, body string) map[string]any {
	d.t.Helper()
	status, out := d.api(token, method, path, body)
	if status != want {
		d.t.Fatalf("%s %s %s: %d %v, want %d", method, path, body, status, out, want)
	}
	return out
}

// follow waits for the deploy of delivery to end and returns its record.
func (d *daemon) follow(delivery string) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out := d.apiOK(200, tokRead, "GET", "/api/v1/deploys?delivery="+delivery, "")
		if ds, _ := out["deploys"].([]any); len(ds) > 0 {
			if r := ds[0].(map[string]any); r["outcome"] != nil {
				return r
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("the deploy of delivery %s did not end within 2m", delivery)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAPIDeployRollbackPause(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, apiConfig)
	app := d.prefix + "-staging"
	v1 := d.push("v1", "v1")
	v2 := d.push("v2", "v2")

	// Deploy through the API: the same engine, gate and journal as a push.
	ans := d.apiOK(202, tokStaging, "POST", "/api/v1/deployments/"+app+"/deploy", `{"tag": "v1"}`)
	r := d.follow(ans["delivery"].(string))
	if r["outcome"] != "succeeded" || r["trigger"] != "api" || r["actor"] != "ci" || r["digest"] != v1 || r["tag"] != "v1" {
		t.Fatalf("deploy of v1 through the API: %v", r)
	}
	d.next()
	d.serving(app, "v1")
	// A token without read follows the deploys it asked for, and no more.
	if ds := d.apiOK(200, tokStaging, "GET", "/api/v1/deploys?delivery="+ans["delivery"].(string), "")["deploys"].([]any); len(ds) != 1 ||
		ds[0].(map[string]any)["settled"] != true {
		t.Errorf("deploy:staging following its deploy: %v", ds)
	}
	if status, _ := d.api(tokStaging, "GET", "/api/v1/deploys", ""); status != http.StatusForbidden {
		t.Errorf("deploy:staging listing every deploy: %d, want 403", status)
	}
	ans = d.apiOK(202, tokStaging, "POST", "/api/v1/deployments/"+app+"/deploy", fmt.Sprintf(`{"digest": %q}`, v2))
	if ans["digest"] != v2 || ans["deployment"] != app {
		t.Errorf("deploy answer: %v", ans)
	}
	r = d.follow(ans["delivery"].(string))
	d.next()
	d.serving(app, "v2")
	v2Deploy := int64(r["id"].(float64))

	// Roll back: to the newest earlier success with another digest.
	ans = d.apiOK(202, tokStaging, "POST", "/api/v1/deployments/"+app+"/rollback", `{}`)
	if ans["digest"] != v1 || ans["tag"] != "v1" || ans["rollback_to"] == nil {
		t.Errorf("rollback answer: %v", ans)
	}
	if r := d.follow(ans["delivery"].(string)); r["outcome"] != "succeeded" || r["digest"] != v1 {
		t.Fatalf("rollback: %v", r)
	}
	d.next()
	d.serving(app, "v1")
	// And forward again, to a deploy named by id.
	ans = d.apiOK(202, tokStaging, "POST", "/api/v1/deployments/"+app+"/rollback", fmt.Sprintf(`{"to": %d}`, v2Deploy))
	if r := d.follow(ans["delivery"].(string)); r["outcome"] != "succeeded" || r["digest"] != v2 {
		t.Fatalf("rollback to %d: %v", v2Deploy, r)
	}
	d.next()
	d.serving(app, "v2")

	// What the API shows of it.
	got := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
	run, _ := got["running"].(map[string]any)
	// Deployed by digest: no tag.
	if run == nil || run["digest"] != v2 || run["tag"] != "" || run["state"] != "running" || run["since"] == nil {
		t.Errorf("running: %v", got["running"])
	}
	if last, _ := got["last"].(map[string]any); last == nil || last["outcome"] != "succeeded" || last["digest"] != v2 {
		t.Errorf("last: %v", got["last"])
	}
	if h, _ := got["history"].([]any); len(h) != 4 {
		t.Errorf("history: %d deploys, want 4", len(h))
	}
	if got["paused"] != false || got["pending"] != nil || got["environment"] != "staging" {
		t.Errorf("deployment: %v", got)
	}

	// Pause: a push is recorded and held; resume deploys it.
	d.apiOK(200, tokStaging, "POST", "/api/v1/deployments/"+app+"/pause", "")
	if status, _ := d.api(tokStaging, "POST", "/api/v1/deployments/"+app+"/pause", ""); status != http.StatusConflict {
		t.Errorf("pause twice: %d, want 409", status)
	}
	d.push("v3", "v3")
	status, hook := d.hook("v3")
	if status != 202 || hook.Accepted != 0 || hook.Held != 1 {
		t.Fatalf("push while paused: %d %+v", status, hook)
	}
	d.quiet()
	d.serving(app, "v2")
	got = d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
	if got["paused"] != true || got["paused_by"] != "ci" || got["held"] == nil {
		t.Errorf("while paused: paused %v by %v, held %v", got["paused"], got["paused_by"], got["held"])
	}
	got = d.apiOK(200, tokStaging, "POST", "/api/v1/deployments/"+app+"/resume", "")
	if resumed, _ := got["resumed"].(map[string]any); got["paused"] != false || resumed == nil || resumed["tag"] != "v3" || resumed["state"] != "queued" {
		t.Errorf("after resume: %v", got)
	}
	if res := d.next(); res.Outcome != deploy.Succeeded || res.Request.Tag != "v3" {
		t.Fatalf("deploy on resume: %s %s %v", res.Request.Tag, res.Outcome, res.Err)
	}
	d.serving(app, "v3")
	if status, out := d.api(tokStaging, "POST", "/api/v1/deployments/"+app+"/resume", ""); status != http.StatusConflict {
		t.Errorf("resume when not paused: %d %v", status, out)
	}

	// The deliveries show the API's requests and the held push.
	dl := d.apiOK(200, tokRead, "GET", "/api/v1/deliveries?limit=50", "")
	var api, hooks int
	for _, x := range dl["deliveries"].([]any) {
		switch x.(map[string]any)["source"] {
		case "api":
			api++
		case "dockerhub":
			hooks++
		}
	}
	if api < 6 || hooks != 1 {
		t.Errorf("deliveries: %d from the API, %d hooks; want ≥ 6 and 1", api, hooks)
	}
}

func TestAPIApprovals(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, apiConfig)
	app := d.prefix + "-prod"
	d.push("latest", "v1")

	status, hook := d.hook("latest")
	if status != 202 || hook.Accepted != 0 || hook.Pending != 1 {
		t.Fatalf("push to production: %d %+v", status, hook)
	}
	d.quiet()
	got := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
	first, _ := got["pending"].(map[string]any)
	if first == nil || first["tag"] != "latest" || first["delivery"] != hook.Delivery || first["expires"] == nil {
		t.Fatalf("pending: %v", got["pending"])
	}

	// The same push again (Docker Hub sends several) changes nothing; a
	// new one replaces the pending one.
	d.hook("latest")
	got = d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
	if p, _ := got["pending"].(map[string]any); p == nil || p["delivery"] != hook.Delivery {
		t.Fatalf("pending after the same push again: %v", got["pending"])
	}
	d.push("release-2", "v2")
	_, hook2 := d.hook("release-2")
	got = d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
	if p, _ := got["pending"].(map[string]any); p == nil || p["delivery"] != hook2.Delivery {
		t.Fatalf("pending after a second push: %v", got["pending"])
	}
	if m := d.get("/metrics"); !strings.Contains(m, fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="production",outcome="superseded"} 1`, app)+"\n") {
		t.Errorf("metrics:\n%s", grepLines(m, "liftoff_deploys_total"))
	}

	// Only approve:production approves; then it deploys, as the approver.
	if status, _ := d.api(tokProd, "POST", "/api/v1/deployments/"+app+"/approve", ""); status != http.StatusForbidden {
		t.Errorf("approve with deploy:production: %d, want 403", status)
	}
	p, _ := got["pending"].(map[string]any)
	decide := fmt.Sprintf(`{"request": %v}`, p["request"])
	ans := d.apiOK(202, tokApprover, "POST", "/api/v1/deployments/"+app+"/approve", decide)
	if ans["delivery"] != hook2.Delivery || ans["tag"] != "release-2" {
		t.Errorf("approve answers delivery %v, want the push's %s", ans["delivery"], hook2.Delivery)
	}
	r := d.follow(hook2.Delivery)
	if r["outcome"] != "succeeded" || r["actor"] != "lead" || r["trigger"] != "dockerhub" {
		t.Fatalf("approved deploy: %v", r)
	}
	if status, _ := d.api(tokStaging, "GET", "/api/v1/deploys?delivery="+hook2.Delivery, ""); status != http.StatusForbidden {
		t.Errorf("deploy:staging following a production deploy: %d, want 403", status)
	}
	d.next()
	d.serving(app, "v2")
	if status, _ := d.api(tokApprover, "POST", "/api/v1/deployments/"+app+"/approve", decide); status != http.StatusConflict {
		t.Errorf("approve with nothing pending: %d, want 409", status)
	}

	// Rejected: dropped, recorded.
	d.push("latest", "v3")
	_, hook3 := d.hook("latest")
	got = d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
	p, _ = got["pending"].(map[string]any)
	d.apiOK(200, tokApprover, "POST", "/api/v1/deployments/"+app+"/reject", fmt.Sprintf(`{"request": %v}`, p["request"]))
	if r := d.follow(hook3.Delivery); r["outcome"] != "rejected" || r["actor"] != "lead" {
		t.Errorf("rejected push: %v", r)
	}
	d.quiet()

	// Expired: nobody approves the canary within 2s.
	canary := d.prefix + "-canary"
	d.push("canary", "v4")
	_, hook4 := d.hook("canary")
	if r := d.follow(hook4.Delivery); r["outcome"] != "expired" {
		t.Errorf("unapproved push: %v", r)
	}
	d.quiet()
	d.serving(app, "v2")
	if m := d.get("/metrics"); !strings.Contains(m, fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="canary",outcome="expired"} 1`, canary)+"\n") {
		t.Errorf("metrics:\n%s", grepLines(m, "liftoff_deploys_total"))
	}
	if p := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+canary, "")["pending"]; p != nil {
		t.Errorf("pending after the expiry: %v", p)
	}
}

// TestAPIScopes: every route with every kind of token. A call the token
// may make is sent with a body the handler refuses (400), or is a read
// (200), so that the table changes nothing; the rest must be 401 or 403.
// Afterwards nothing was deployed, paused or approved.
func TestAPIScopes(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, apiConfig)
	staging, prod := d.prefix+"-staging", d.prefix+"-prod"
	d.push("latest", "v1")
	d.hook("latest") // pending in production, for approve and reject

	type route struct{ method, path, body string }
	post := func(name, action string) route {
		return route{"POST", "/api/v1/deployments/" + name + "/" + action, `{"not": "a field"}`}
	}
	read := []route{
		{"GET", "/api/v1/deployments", ""},
		{"GET", "/api/v1/deployments/" + staging, ""},
		{"GET", "/api/v1/deployments/" + prod, ""},
		{"GET", "/api/v1/deploys", ""},
		{"GET", "/api/v1/deliveries", ""},
	}
	deploys := map[string][]route{}
	for _, n := range []string{staging, prod} {
		for _, a := range []string{"deploy", "rollback", "pause", "resume"} {
			deploys[n] = append(deploys[n], post(n, a))
		}
	}
	approves := []route{post(prod, "approve"), post(prod, "reject")}

	tokens := []struct {
		name, token string
		read        bool
		deploy      map[string]bool // by deployment
		approve     bool
	}{
		{"none", "", false, nil, false},
		{"unknown", tokUnknown, false, nil, false},
		{"read", tokRead, true, nil, false},
		{"deploy:staging", tokStaging, false, map[string]bool{staging: true}, false},
		{"deploy:production", tokProd, false, map[string]bool{prod: true}, false},
		{"approve:production", tokApprover, false, nil, true},
		{"admin", tokAdmin, true, map[string]bool{staging: true, prod: true}, true},
	}
	for _, tk := range tokens {
		want := func(allowed bool, ok int) int {
			switch {
			case tk.token == "" || tk.token == tokUnknown:
				return http.StatusUnauthorized
			case !allowed:
				return http.StatusForbidden
			}
			return ok
		}
		check := func(rt route, want int) {
			t.Helper()
			status, raw := d.apiRaw(tk.token, rt.method, rt.path, rt.body)
			if status != want {
				t.Errorf("%s: %s %s: %d %s, want %d", tk.name, rt.method, rt.path, status, raw, want)
			}
			if status == http.StatusForbidden && !strings.Contains(string(raw), "lacks scope") {
				t.Errorf("%s: 403 %s does not name the scope needed", tk.name, raw)
			}
		}
		for _, rt := range read {
			check(rt, want(tk.read, http.StatusOK))
		}
		for n, rs := range deploys {
			for _, rt := range rs {
				check(rt, want(tk.deploy[n], http.StatusBadRequest))
			}
		}
		for _, rt := range approves {
			check(rt, want(tk.approve, http.StatusBadRequest))
		}
	}
	// 401 is the same body whether a token was sent or not.
	_, none := d.apiRaw("", "GET", "/api/v1/deployments", "")
	_, unknown := d.apiRaw(tokUnknown, "GET", "/api/v1/deployments", "")
	if string(none) != string(unknown) {
		t.Errorf("401 bodies differ: %s / %s", none, unknown)
	}
	// Nothing happened.
	d.quiet()
	got := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+prod, "")
	if got["pending"] == nil || got["paused"] != false || got["running"] != nil {
		t.Errorf("production after the table: %v", got)
	}
	if got := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+staging, ""); got["paused"] != false || got["running"] != nil {
		t.Errorf("staging after the table: %v", got)
	}
	if ds := d.apiOK(200, tokRead, "GET", "/api/v1/deploys", "")["deploys"].([]any); len(ds) != 0 {
		t.Errorf("deploys after the table: %v", ds)
	}
}

// TestAPIBadInput: what the API refuses, and that it changes nothing.
func TestAPIBadInput(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, apiConfig)
	app := d.prefix + "-staging"
	deployPath := "/api/v1/deployments/" + app + "/deploy"
	for _, tc := range []struct {
		method, path, body string
		want               int
		says               string
	}{
		{"POST", "/api/v1/deployments/nope/deploy", `{"tag": "v1"}`, 404, "no such deployment"},
		{"GET", "/api/v1/deployments/nope", "", 404, "no such deployment"},
		{"POST", deployPath, `{"tag": "v1"`, 400, "unexpected EOF"},
		{"POST", deployPath, `{"tag": "v1", "force": true}`, 400, "unknown field"},
		{"POST", deployPath, `{"tag": "v1", "digest": "sha256:` + strings.Repeat("a", 64) + `"}`, 400, "either"},
		{"POST", deployPath, `{}`, 400, "either"},
		{"POST", deployPath, `{"tag": "-v1"}`, 400, "not a valid tag"},
		{"POST", deployPath, `{"tag": "v1/../x"}`, 400, "not a valid tag"},
		{"POST", deployPath, `{"digest": "sha256:abc"}`, 400, "not a sha256 digest"},
		{"POST", deployPath, `{"tag": "v1"} {"tag": "v2"}`, 400, "more than one"},
		{"POST", deployPath, `{"tag": "` + strings.Repeat("a", 70<<10) + `"}`, 413, "over"},
		{"POST", "/api/v1/deployments/" + app + "/rollback", `{}`, 409, "no earlier successful deploy"},
		{"POST", "/api/v1/deployments/" + app + "/rollback", `{"to": 12345}`, 409, "not a deploy of"},
		{"POST", "/api/v1/deployments/" + app + "/approve", ``, 400, `give \"request\"`},
		{"POST", "/api/v1/deployments/" + app + "/approve", `{"request": 1}`, 409, "no push"},
		{"GET", "/api/v1/deploys?limit=x", "", 400, "limit"},
		{"GET", "/api/v1/deploys?before=-1", "", 400, "before"},
		{"DELETE", "/api/v1/deployments/" + app, "", 405, "method not allowed"},
		{"GET", deployPath, "", 405, "method not allowed"},
		{"GET", "/api/v1/nothing", "", 404, "not found"},
	} {
		status, raw := d.apiRaw(tokAdmin, tc.method, tc.path, tc.body)
		if status != tc.want || !strings.Contains(string(raw), tc.says) || !strings.HasPrefix(string(raw), `{"error":`) {
			t.Errorf("%s %s %.60s: %d %.200s, want %d saying %q", tc.method, tc.path, tc.body, status, raw, tc.want, tc.says)
		}
	}
	d.quiet()
}

// TestAPIOff: without api_tokens the API does not exist.
func TestAPIOff(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, e2eConfig)
	if status, _ := d.apiRaw(tokAdmin, "GET", "/api/v1/deployments", ""); status != http.StatusNotFound {
		t.Errorf("GET /api/v1/deployments without api_tokens: %d, want 404", status)
	}
}

// TestAPIListenKeepsTheAPIPrivate: with api_listen, /api is served there
// and not on listen (where the internet-facing proxy sends /hooks).
func TestAPIListenKeepsTheAPIPrivate(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, strings.Replace(apiConfig, "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:0\napi_listen: 127.0.0.1:0\n", 1))
	if status, _ := d.apiRaw(tokAdmin, "GET", "/api/v1/deployments", ""); status != http.StatusNotFound {
		t.Errorf("/api on listen with api_listen set: %d, want 404", status)
	}
	base := "http://" + d.app.APIAddr()
	req, _ := http.NewRequest("GET", base+"/api/v1/deployments", nil)
	req.Header.Set("Authorization", "Bearer "+tokAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/api on api_listen: %d", resp.StatusCode)
	}
	if resp, err := http.Post(base+"/hooks/dockerhub/"+hookToken, "application/json", strings.NewReader(testenv.DockerHubPayload(d.repo, "v1"))); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("hooks on api_listen: %d, want 404", resp.StatusCode)
		}
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
