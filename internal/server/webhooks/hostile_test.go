package webhooks

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// hostileConfig deploys every valid tag of pmpl/dblood and of the official
// nginx: whatever a hostile delivery gets past the parser would be queued,
// so "nothing was queued" means the parser stopped it.
const hostileConfig = `
hooks:
  - source: dockerhub
    token: ${HOOK_TOKEN}
environments:
  staging: {}
deployments:
  - name: dblood-any
    image: pmpl/dblood
    tags: ["regexp:.*"]
    environment: staging
  - name: nginx-any
    image: nginx
    tags: ["glob:*"]
    environment: staging
`

// tokenCore is a part of testToken that every near-miss variant of it in
// these tests contains (prefix, suffix, other case, percent-encoded).
var tokenCore = strings.ToLower(testToken[8:28])

// hostileHarness is a Handler on the real catalogue of hostileConfig with a
// recording Deployer, no rate limit, logging at debug level.
func hostileHarness(t *testing.T, edit func(*Options)) *harness {
	t.Helper()
	cfg, err := deployments.Parse([]byte(hostileConfig), t.TempDir(), func(k string) (string, bool) {
		return testToken, k == "HOOK_TOKEN"
	})
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, func(o *Options) {
		o.Catalogue = func() Catalogue { return cfg }
		if edit != nil {
			edit(o)
		}
	})
}

// hubBody is a DockerHub delivery with the raw JSON values pushData and
// repository.
func hubBody(pushData, repository string) string {
	return `{"callback_url": "https://registry.hub.docker.com/u/pmpl/dblood/hook/2141b5bi5i5b02bec/",` +
		`"push_data": ` + pushData + `, "repository": ` + repository + `}`
}

// pushData is a push_data object with tag as raw JSON.
func pushData(tag string) string {
	return `{"pushed_at": 1717171717, "pusher": "pmpl-ci", "tag": ` + tag + `, "images": []}`
}

// repository is a repository object with repo_name as raw JSON (and no
// namespace and name to fall back on).
func repository(repoName string) string {
	return `{"repo_name": ` + repoName + `, "owner": "pmpl", "is_private": true, "star_count": 3}`
}

func withTag(tag string) string   { return hubBody(pushData(tag), repository(`"pmpl/dblood"`)) }
func withRepo(repo string) string { return hubBody(pushData(`"staging"`), repository(repo)) }

// goodBody is a delivery that deploys dblood-any.
var goodBody = withTag(`"staging"`)

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

const hookPath = "/hooks/dockerhub/" + testToken

type hostileCase struct {
	name    string
	method  string // default POST
	target  string // default hookPath
	body    string
	header  map[string]string
	chunked bool   // no Content-Length: limits bite while reading
	status  int    // 400, 404, 405, 413, or 202 for a delivery ignored as a whole
	reason  string // for 400: a part of the reason; for 202: of the ignored reason
}

func hostileCases() []hostileCase {
	hex64 := strings.Repeat("0f", 32)
	deep := func(open string, n int) string { return strings.Repeat(open, n) }
	var cases []hostileCase
	bad := func(name, body, reason string) {
		cases = append(cases, hostileCase{name: name, body: body, status: http.StatusBadRequest, reason: reason})
	}
	ignored := func(name, body, reason string) {
		cases = append(cases, hostileCase{name: name, body: body, status: http.StatusAccepted, reason: reason})
	}
	notFound := func(name, target string) {
		cases = append(cases, hostileCase{name: name, target: target, body: goodBody, status: http.StatusNotFound})
	}

	// Bodies that are not a JSON object, or not JSON at all.
	bad("empty body", "", "want a JSON object")
	bad("whitespace only", " \r\n\t ", "want a JSON object")
	bad("array", `[`+goodBody+`]`, "want a JSON object")
	bad("empty array", `[]`, "want a JSON object")
	bad("string", `"staging"`, "want a JSON object")
	bad("number", `42`, "want a JSON object")
	bad("true", `true`, "want a JSON object")
	bad("null", `null`, "want a JSON object")
	bad("form encoded", `push_data[tag]=staging&repository[repo_name]=pmpl/dblood`, "want a JSON object")
	bad("UTF-8 BOM", "\xEF\xBB\xBF"+goodBody, "want a JSON object")
	cases = append(cases, hostileCase{name: "gzip body", body: gzipped(goodBody),
		header: map[string]string{"Content-Encoding": "gzip"}, status: http.StatusBadRequest, reason: "want a JSON object"})
	bad("empty object", `{}`, "repository.repo_name: missing")

	// Truncated and malformed JSON.
	bad("truncated at the end", goodBody[:len(goodBody)-1], "malformed JSON")
	bad("truncated in a string", goodBody[:strings.Index(goodBody, `"staging"`)+4], "malformed JSON")
	bad("truncated after a key", goodBody[:strings.Index(goodBody, `"tag":`)+6], "malformed JSON")
	bad("truncated after {", `{`, "malformed JSON")
	bad("trailing garbage", goodBody+"garbage", "malformed JSON")
	bad("two objects", goodBody+goodBody, "malformed JSON")
	bad("trailing comma", strings.Replace(goodBody, `"images": []`, `"images": [],`, 1), "malformed JSON")
	bad("single quotes", `{'push_data': {'tag': 'staging'}}`, "malformed JSON")
	bad("control character in a string", withTag("\"stag\x01ing\""), "malformed JSON")
	bad("bad escape", withTag(`"stag\qing"`), "malformed JSON")

	// Bytes that are not UTF-8: encoding/json makes them U+FFFD.
	bad("non-UTF-8 tag", withTag("\"stag\xffing\""), "push_data.tag")
	bad("non-UTF-8 repo_name", withRepo("\"pmpl/db\xfelood\""), "repository.repo_name")
	bad("non-UTF-8 in the tag key", hubBody(`{"t`+"\xff"+`ag": "staging"}`, repository(`"pmpl/dblood"`)), "push_data.tag: missing")
	bad("non-UTF-8 in the push_data key", `{"push_data`+"\xc3\x28"+`": `+pushData(`"staging"`)+`, "repository": `+repository(`"pmpl/dblood"`)+`}`, "push_data.tag: missing")

	// Wrong types.
	bad("tag is a number", withTag(`1`), "push_data.tag: want string, got number")
	bad("tag is a float", withTag(`1.5`), "push_data.tag: want string")
	bad("tag is a boolean", withTag(`true`), "push_data.tag: want string")
	bad("tag is an object", withTag(`{"name": "staging"}`), "push_data.tag: want string, got object")
	bad("tag is an array", withTag(`["staging"]`), "push_data.tag: want string, got array")
	bad("repo_name is a number", withRepo(`7`), "repository.repo_name: want string, got number")
	bad("repo_name is an array", withRepo(`["pmpl/dblood"]`), "repository.repo_name: want string")
	bad("repo_name is an object", withRepo(`{"ns": "pmpl"}`), "repository.repo_name: want string")
	bad("push_data is a string", hubBody(`"staging"`, repository(`"pmpl/dblood"`)), "push_data: want object, got string")
	bad("push_data is an array", hubBody(`[`+pushData(`"staging"`)+`]`, repository(`"pmpl/dblood"`)), "push_data: want object, got array")
	bad("push_data is a number", hubBody(`1`, repository(`"pmpl/dblood"`)), "push_data: want object")
	bad("repository is a string", hubBody(pushData(`"staging"`), `"pmpl/dblood"`), "repository: want object, got string")
	bad("repository is an array", hubBody(pushData(`"staging"`), `["pmpl/dblood"]`), "repository: want object, got array")
	bad("pushed_at is a string", hubBody(`{"tag": "staging", "pushed_at": "1717171717"}`, repository(`"pmpl/dblood"`)), "push_data.pushed_at: want number, got string")
	bad("pushed_at is an object", hubBody(`{"tag": "staging", "pushed_at": {"s": 1}}`, repository(`"pmpl/dblood"`)), "push_data.pushed_at: want number")
	bad("pushed_at overflows", hubBody(`{"tag": "staging", "pushed_at": 1e400}`, repository(`"pmpl/dblood"`)), "push_data.pushed_at")
	bad("pusher is a number", hubBody(`{"tag": "staging", "pusher": 5}`, repository(`"pmpl/dblood"`)), "push_data.pusher: want string")

	// Nulls.
	bad("push_data null", hubBody(`null`, repository(`"pmpl/dblood"`)), "push_data.tag: missing")
	bad("repository null", hubBody(pushData(`"staging"`), `null`), "repository.repo_name: missing")
	bad("tag null", withTag(`null`), "push_data.tag: missing")
	bad("repo_name null", withRepo(`null`), "repository.repo_name: missing")
	bad("nulls everywhere", hubBody(`{"tag": null, "pusher": null, "pushed_at": null, "images": null}`,
		`{"repo_name": null, "namespace": null, "name": null}`), "repository.repo_name: missing")

	// Deep nesting: encoding/json stops at 10000 levels.
	bad("10k [ at the top", deep("[", 10000), "want a JSON object")
	bad("10k [ as the tag", withTag(deep("[", 10000)), "malformed JSON")
	bad("10k { in push_data", hubBody(deep(`{"a":`, 10000), repository(`"pmpl/dblood"`)), "malformed JSON")
	bad("10k balanced [ ] in an extra field", `{"x": `+deep("[", 10001)+deep("]", 10001)+`, "push_data": `+pushData(`"staging"`)+`}`, "exceeded max depth")

	// Huge strings, under the size limit.
	bad("900 KB tag", withTag(`"`+strings.Repeat("a", 900<<10)+`"`), "tag is 921600 characters long")
	bad("900 KB repo_name", withRepo(`"pmpl/`+strings.Repeat("a", 900<<10)+`"`), "repository.repo_name: not a valid repository name")

	// Duplicate keys: encoding/json keeps the last, a proxy may read the
	// first; and it matches keys without regard to case. A key twice in any
	// object is refused, and so are two keys for one field.
	bad("tag twice", hubBody(`{"tag": "staging", "tag": "evil"}`, repository(`"pmpl/dblood"`)), `push_data: duplicate key "tag"`)
	bad("tag and TAG", hubBody(`{"tag": "staging", "TAG": "evil"}`, repository(`"pmpl/dblood"`)), `push_data: duplicate key "TAG"`)
	bad("TAG and tag", hubBody(`{"TAG": "evil", "tag": "staging"}`, repository(`"pmpl/dblood"`)), `push_data: duplicate key "tag"`)
	bad("tag and an escaped tag", hubBody(`{"tag": "staging", "\u0074ag": "evil"}`, repository(`"pmpl/dblood"`)), `push_data: duplicate key "tag"`)
	bad("push_data twice", `{"push_data": `+pushData(`"staging"`)+`, "repository": `+repository(`"pmpl/dblood"`)+`, "push_data": `+pushData(`"evil"`)+`}`,
		`body: duplicate key "push_data"`)
	bad("push_data and push_data with a long s", `{"push_data": `+pushData(`"staging"`)+`, "repository": `+repository(`"pmpl/dblood"`)+`, "pu\u017fh_data": `+pushData(`"evil"`)+`}`,
		`body: duplicate key "pu`)
	bad("repository twice", `{"push_data": `+pushData(`"staging"`)+`, "repository": `+repository(`"pmpl/dblood"`)+`, "repository": `+repository(`"acme/evil"`)+`}`,
		`body: duplicate key "repository"`)
	bad("repo_name twice", hubBody(pushData(`"staging"`), `{"repo_name": "pmpl/dblood", "repo_name": "acme/evil"}`), `repository: duplicate key "repo_name"`)
	bad("repo_name and Repo_Name", hubBody(pushData(`"staging"`), `{"repo_name": "pmpl/dblood", "Repo_Name": "acme/evil"}`), `repository: duplicate key "Repo_Name"`)
	bad("a key twice under a name with a newline", hubBody(pushData(`"staging"`), `{"repo_name": "pmpl/dblood", "x\nlevel=error": {"k": 1, "k": 2}}`),
		`repository."x\nlevel=error": duplicate key "k"`)
	bad("pushed_at out of range", hubBody(`{"tag": "staging", "pushed_at": 1e400}`, repository(`"pmpl/dblood"`)), "push_data.pushed_at: ")
	bad("a key liftoff does not read, twice", hubBody(pushData(`"staging"`), `{"repo_name": "pmpl/dblood", "owner": "a", "owner": "b"}`),
		`repository: duplicate key "owner"`)
	bad("a key twice, 5000 objects deep", hubBody(pushData(`"staging"`), `{"repo_name": "pmpl/dblood", "x": `+deep(`{"a": `, 5000)+`{"k": 1, "k": 2}`+deep("}", 5000)+`}`),
		`repository.x.a.a.a.a`)
	// Spellings that encoding/json does not take for a field are other keys.
	bad("pushdata for push_data", `{"pushdata": `+pushData(`"staging"`)+`, "repository": `+repository(`"pmpl/dblood"`)+`}`, "push_data.tag: missing")
	bad("repo-name for repo_name", hubBody(pushData(`"staging"`), `{"repo-name": "acme/evil"}`), "repository.repo_name: missing")

	// Tags outside [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
	for _, tag := range []string{"-x", ".x", strings.Repeat("a", 129), "a/b", "a:b", "..", "../x", " staging", "staging\n",
		"stag ing", "stag\u0000ing", "ünïcode", "a@b", "$(reboot)", ";rm -rf /", "*", "v1%2F"} {
		bad("tag "+strconv.QuoteToASCII(tag[:min(len(tag), 20)]), withTag(jsonString(tag)), "push_data.tag")
	}
	bad("empty tag", withTag(`""`), "push_data.tag: missing")

	// Repository names outside the grammar, or not on Docker Hub.
	for _, repo := range []string{"Pmpl/Dblood", "pmpl/Dblood", "../x", "x/../y", "//x", "pmpl//dblood", "/pmpl/dblood", "pmpl/dblood/",
		"pmpl/" + strings.Repeat("a", 251), "pmpl/dblood:latest", "pmpl/dblood@sha256:" + strings.Repeat("a", 64),
		"pmpl/dblood:latest@sha256:" + strings.Repeat("a", 64), "pmpl/db lood", `pmpl\dblood`, "https://evil.example/x", "pmpl/dblood?x=1", ".", "-"} {
		bad("repo "+strconv.QuoteToASCII(repo[:min(len(repo), 30)]), withRepo(jsonString(repo)), "repository.repo_name")
	}
	for _, repo := range []string{"ghcr.io/pmpl/dblood", "localhost/pmpl/dblood", "127.0.0.1:5000/pmpl/dblood", "evil.example:443/pmpl/dblood"} {
		bad("repo on "+repo[:strings.IndexByte(repo, '/')], withRepo(jsonString(repo)), "is not on Docker Hub")
	}

	// Signature and attestation tags: valid, never deployed, even by a
	// rule that takes every tag.
	for _, tag := range []string{"sha256-" + hex64, "sha256-" + hex64 + ".sig", "sha256-" + hex64 + ".att", "sha256-" + hex64 + ".sbom", "x.sig", "x.att", "latest.sig"} {
		ignored("signature tag "+tag[:min(len(tag), 12)]+"…"+tag[max(0, len(tag)-4):], withTag(jsonString(tag)), "signature or attestation tag")
	}
	ignored("repository nobody deploys", withRepo(`"acme/other"`), "no deployment for docker.io/acme/other")

	// Paths and tokens: all answered like an unknown path.
	notFound("dot-dot in the path", "/hooks/dockerhub/../dockerhub/"+testToken)
	notFound("encoded dot-dot", "/hooks/dockerhub/%2e%2e/"+testToken)
	notFound("encoded dot-dot as source", "/hooks/%2e%2e/dockerhub/"+testToken)
	notFound("extra segment", hookPath+"/extra")
	notFound("two trailing slashes", hookPath+"//")
	notFound("encoded slash before the token", "/hooks/dockerhub%2F"+testToken)
	notFound("encoded slash after the token", hookPath+"%2F")
	notFound("percent-encoded token", "/hooks/dockerhub/"+strings.Replace(testToken, "t", "%74", 1))
	notFound("percent-encoded source", "/hooks/%64ockerhub/"+testToken)
	notFound("double slash in front", "//hooks/dockerhub/"+testToken)
	notFound("empty source", "/hooks//dockerhub/"+testToken)
	notFound("empty token segment", "/hooks/dockerhub//"+testToken)
	notFound("NUL after the token", hookPath+"%00")
	notFound("matrix parameter", hookPath+";x=1")
	notFound("wrong token", "/hooks/dockerhub/tok-00000000000000000000000000000000")
	notFound("token prefix", "/hooks/dockerhub/"+testToken[:len(testToken)-1])
	notFound("token and one more character", hookPath+"0")
	notFound("token in upper case", "/hooks/dockerhub/"+strings.ToUpper(testToken))
	notFound("missing token", "/hooks/dockerhub/")
	notFound("no token segment", "/hooks/dockerhub")
	notFound("token without source", "/hooks/"+testToken)
	notFound("source and token swapped", "/hooks/"+testToken+"/dockerhub")
	notFound("unknown source", "/hooks/quay/"+testToken)
	notFound("source not served", "/hooks/distribution/"+testToken)
	notFound("source in upper case", "/hooks/DOCKERHUB/"+testToken)
	notFound("prefix in upper case", "/HOOKS/dockerhub/"+testToken)

	// Wrong methods: 405 whatever the token, so it tells nothing about it.
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions} {
		cases = append(cases, hostileCase{name: m + " with the token", method: m, body: goodBody, status: http.StatusMethodNotAllowed})
	}
	cases = append(cases, hostileCase{name: "GET with a wrong token", method: http.MethodGet,
		target: "/hooks/dockerhub/tok-00000000000000000000000000000000", status: http.StatusMethodNotAllowed})

	// A token pasted where a tag or a repository goes: refused, and
	// neither echoed nor logged (the loop checks the answer, the log and
	// /metrics for the token); a long value in a 400 is an excerpt.
	tokenTag := strings.ToLower(testToken)
	bad("the hook token as the tag", withTag(jsonString(tokenTag)), "one of liftoff's tokens")
	bad("the hook token as the repository", withRepo(jsonString("pmpl/"+tokenTag)), "one of liftoff's tokens")
	bad("a token-like word in a bad tag", withTag(jsonString("v1/"+tokenCore+"x")), "tag")
	// A browser's headers change nothing for hooks: registries send none.
	cases = append(cases, hostileCase{name: "cross-site browser headers", body: withTag(`"x/y"`),
		header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, status: http.StatusBadRequest, reason: "tag"})

	// Over the 1 MiB limit.
	huge := `{"x": "` + strings.Repeat("a", 10<<20) + `"}`
	cases = append(cases,
		hostileCase{name: "10 MB body", body: huge, status: http.StatusRequestEntityTooLarge},
		hostileCase{name: "10 MB body, chunked", body: huge, chunked: true, status: http.StatusRequestEntityTooLarge},
		hostileCase{name: "1 MiB + 1 of valid JSON, chunked", body: goodBody[:len(goodBody)-1] + `, "pad": "` + strings.Repeat(" ", 1<<20-len(goodBody)-8) + `"}`,
			chunked: true, status: http.StatusRequestEntityTooLarge},
	)
	return cases
}

// TestHookHostileInput sends the hook every kind of bad request: each gets
// its exact status, a JSON reason when it is a 400, never a 5xx, never a
// deploy, and the hook token shows up in no answer and no log line.
func TestHookHostileInput(t *testing.T) {
	cases := hostileCases()
	if len(cases) < 40 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	// The same harness takes a good delivery: what follows is refused for
	// its own fault, not the harness's.
	h := hostileHarness(t, nil)
	if w := h.post(goodBody); w.Code != http.StatusAccepted || len(h.dep.requests()) != 1 {
		t.Fatalf("good delivery: %d %s, %d deploys", w.Code, w.Body, len(h.dep.requests()))
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := hostileHarness(t, nil)
			method, target := tc.method, tc.target
			if method == "" {
				method = http.MethodPost
			}
			if target == "" {
				target = hookPath
			}
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length
			}
			r := httptest.NewRequest(method, target, body)
			r.Header.Set("Content-Type", "application/json")
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.router.ServeHTTP(w, r)

			if w.Code >= 500 {
				t.Fatalf("status %d: %.300s", w.Code, w.Body)
			}
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %.300s", w.Code, tc.status, w.Body)
			}
			if n := len(h.dep.requests()); n != 0 {
				t.Errorf("%d deploys queued: %+v", n, h.dep.requests())
			}
			switch tc.status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
				var e apiv1.Error
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
					t.Fatalf("body %.300q: %v", w.Body, err)
				}
				want := tc.reason
				if tc.status == http.StatusRequestEntityTooLarge {
					want = "body too large"
				}
				if e.Error == "" || !strings.Contains(e.Error, want) || !isDeliveryID(e.Delivery) {
					t.Errorf("answer %.400s: want a reason with %q and a delivery id", w.Body, want)
				}
				if len(e.Error) > httperr.MaxReason+len("...") {
					t.Errorf("reason of %d bytes", len(e.Error))
				}
			case http.StatusNotFound:
				if w.Body.String() != httperr.NotFoundBody {
					t.Errorf("body %q, want %q", w.Body, httperr.NotFoundBody)
				}
			case http.StatusMethodNotAllowed:
				if allow := w.Header().Get("Allow"); allow != http.MethodPost {
					t.Errorf("Allow %q, want POST", allow)
				}
			case http.StatusAccepted:
				a := hookAnswer(t, w.Body.String())
				ig := h.last().Ignored
				if a.Accepted != 0 || a.Ignored != 1 || len(ig) != 1 || !strings.Contains(ig[0].Reason, tc.reason) {
					t.Errorf("answer %s, recorded %+v: want nothing accepted and one ignored, %q", w.Body, ig, tc.reason)
				}
			}

			answer := w.Body.String()
			for k, vs := range w.Header() {
				answer += "\n" + k + ": " + strings.Join(vs, ", ")
			}
			logs := h.logs.String()
			if strings.Contains(strings.ToLower(answer), tokenCore) {
				t.Errorf("the hook token is in the answer:\n%.500s", answer)
			}
			if strings.Contains(strings.ToLower(logs), tokenCore) {
				t.Errorf("the hook token is in the logs:\n%s", logs)
			}
			if strings.Contains(logs, `"panic"`) || strings.Contains(logs, `"level":"error"`) {
				t.Errorf("error or panic logged:\n%.2000s", logs)
			}
			if m := h.do(http.MethodGet, "/metrics", nil).Body.String(); strings.Contains(strings.ToLower(m), tokenCore) {
				t.Error("the hook token is in /metrics")
			}
		})
	}
}

// TestHookLenientInput: what DockerHub's deliveries do not do but is
// harmless is accepted, because the body is what counts: a missing or
// wrong Content-Type, a Content-Encoding header on a plain body (liftoff
// never decompresses, so a compressed body is not JSON: see
// TestHookHostileInput), a trailing slash, a query string, a pusher that is
// not UTF-8 or is huge.
func TestHookLenientInput(t *testing.T) {
	tests := []struct {
		name, target, body string
		header             map[string]string
		pusher             string
	}{
		{name: "no Content-Type", header: map[string]string{"Content-Type": ""}},
		{name: "text/plain", header: map[string]string{"Content-Type": "text/plain"}},
		{name: "form Content-Type", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{name: "Content-Encoding on a plain body", header: map[string]string{"Content-Encoding": "gzip"}},
		{name: "trailing slash", target: hookPath + "/"},
		{name: "query string", target: hookPath + "?token=" + testToken},
		{name: "pusher not UTF-8", body: hubBody(`{"tag": "staging", "pusher": "ci`+"\xff"+`bot"}`, repository(`"pmpl/dblood"`)), pusher: "ci\uFFFDbot"},
		{name: "huge pusher", body: hubBody(`{"tag": "staging", "pusher": "`+strings.Repeat("p", 500<<10)+`"}`, repository(`"pmpl/dblood"`)),
			pusher: strings.Repeat("p", 255)}, // payload.Push.Pusher is cut to 255 bytes
		{name: "unknown fields and types", body: hubBody(`{"tag": "staging", "images": {"x": [1, null]}, "media_type": 7}`,
			`{"repo_name": "pmpl/dblood", "full_description": {"a": 1}, "dockerfile": null}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hostileHarness(t, nil)
			target, body := tc.target, tc.body
			if target == "" {
				target = hookPath
			}
			if body == "" {
				body = goodBody
			}
			r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			for k, v := range tc.header {
				if v == "" {
					r.Header.Del(k)
				} else {
					r.Header.Set(k, v)
				}
			}
			w := httptest.NewRecorder()
			h.router.ServeHTTP(w, r)
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d %.300s, want 202", w.Code, w.Body)
			}
			reqs := h.dep.requests()
			if len(reqs) != 1 || reqs[0].Deployment != "dblood-any" || reqs[0].Tag != "staging" || reqs[0].Image != "docker.io/pmpl/dblood" {
				t.Fatalf("queued %+v, want one deploy of dblood-any", reqs)
			}
			if want := tc.pusher; want == "" && reqs[0].Pusher != "pmpl-ci" && tc.body == "" || want != "" && reqs[0].Pusher != want {
				t.Errorf("pusher %.40q…", reqs[0].Pusher)
			}
			if logs := h.logs.String(); strings.Contains(strings.ToLower(logs), tokenCore) {
				t.Errorf("the hook token is in the logs:\n%s", logs)
			}
			// Every log line is still valid JSON.
			for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("log line is not JSON: %.200q", line)
				}
			}
		})
	}
}

// TestHookConcurrencyCap: with the default cap, 64 deliveries are served at
// once; the 65th is answered 503 with Retry-After, whatever its token, and
// queues nothing.
func TestHookConcurrencyCap(t *testing.T) {
	if DefaultConcurrency != 64 {
		t.Fatalf("DefaultConcurrency = %d, want 64", DefaultConcurrency)
	}
	dep := &blockingDeployer{inside: make(chan struct{}, 128), release: make(chan struct{})}
	h := hostileHarness(t, func(o *Options) { o.Deployer = dep })
	var wg sync.WaitGroup
	for range DefaultConcurrency {
		wg.Go(func() {
			if w := h.post(goodBody); w.Code != http.StatusAccepted {
				t.Errorf("delivery within the cap: %d %s", w.Code, w.Body)
			}
		})
	}
	for range DefaultConcurrency {
		select {
		case <-dep.inside:
		case <-time.After(10 * time.Second):
			close(dep.release)
			t.Fatal("64 deliveries are not served at once")
		}
	}
	for _, target := range []string{hookPath, "/hooks/dockerhub/tok-00000000000000000000000000000000"} {
		w := h.do(http.MethodPost, target, strings.NewReader(goodBody))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "too many deliveries") {
			t.Errorf("65th delivery to %s…: %d %s (Retry-After %q), want 503 with Retry-After", target[:16], w.Code, w.Body, w.Header().Get("Retry-After"))
		}
	}
	close(dep.release)
	wg.Wait()
	if n := dep.count(); n != DefaultConcurrency {
		t.Errorf("%d deploys queued, want %d", n, DefaultConcurrency)
	}
	if w := h.post(goodBody); w.Code != http.StatusAccepted {
		t.Errorf("after the burst: %d %s", w.Code, w.Body)
	}
}

// blockingDeployer holds every Enqueue until release is closed, so that
// deliveries stay in flight.
type blockingDeployer struct {
	inside  chan struct{}
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (d *blockingDeployer) Enqueue(_ context.Context, rs ...deploy.Request) ([]deploy.Disposition, error) {
	d.inside <- struct{}{}
	<-d.release
	d.mu.Lock()
	d.n++
	d.mu.Unlock()
	return make([]deploy.Disposition, len(rs)), nil
}

func (d *blockingDeployer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// TestHookRateLimitDefault: at the default limit (HookRateLimit 0, as
// hook_rate_limit 0 in the config) one client may guess tokens
// deployments.DefaultHookRate times a minute; then even the right token is
// answered 429 with Retry-After, and nothing is queued.
func TestHookRateLimitDefault(t *testing.T) {
	h := hostileHarness(t, func(o *Options) { o.RateLimit = deployments.DefaultHookRate })
	for i := range deployments.DefaultHookRate {
		guess := "/hooks/dockerhub/tok-" + strconv.Itoa(100000+i) + "0000000000000000000000000"
		if w := h.do(http.MethodPost, guess, strings.NewReader(goodBody)); w.Code != http.StatusNotFound {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	w := h.post(goodBody)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after %d guesses: %d %s (Retry-After %q), want 429", deployments.DefaultHookRate, w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if n := len(h.dep.requests()); n != 0 {
		t.Errorf("%d deploys queued", n)
	}
	if strings.Contains(strings.ToLower(w.Body.String()+h.logs.String()), tokenCore) {
		t.Error("the hook token is in the answer or the logs")
	}
	if got := testutil.ToFloat64(h.hh.metrics.webhooks.WithLabelValues("dockerhub", outcomeRateLimited)); got != 1 {
		t.Errorf("rate_limited count %v", got)
	}
}
