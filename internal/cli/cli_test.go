package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// testToken is the API token of the fake daemon; no output may hold it.
const testToken = "cli-test-api-token-0123456789abcdef"

// fakeDaemon serves canned answers of the management API, as
// internal/server/api writes them, and remembers what it was asked.
type fakeDaemon struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux

	mu       sync.Mutex
	requests []string // "POST /api/v1/deployments/web/deploy?"
	bodies   []string // bodies of the POSTs
	auth     []string // Authorization headers
}

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{t: t, mux: http.NewServeMux()}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if r.Method == http.MethodPost {
		f.bodies = append(f.bodies, string(body))
	}
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		w.Header().Set("WWW-Authenticate", `Bearer realm="liftoff"`)
		answerJSON(w, http.StatusUnauthorized, `{"error":"unauthorized: send Authorization: Bearer <an API token of the config>"}`)
		return
	}
	f.mux.ServeHTTP(w, r)
}

// on answers pattern ("GET /api/v1/deployments") with status and body.
func (f *fakeDaemon) on(pattern string, status int, body string) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { answerJSON(w, status, body) })
}

func (f *fakeDaemon) posted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bodies)
}

func (f *fakeDaemon) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func answerJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body+"\n")
}

// cliResult is what a client command did.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runClientTest runs a client command against url with env as the
// environment, polling fast, and checks that no output holds the token.
func runClientTest(t *testing.T, url string, env map[string]string, args ...string) cliResult {
	t.Helper()
	if env == nil {
		env = map[string]string{"LIFTOFF_TOKEN": testToken}
	}
	if url != "" {
		env["LIFTOFF_SERVER"] = url
	}
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errOut, Lookup: lookup, Poll: 2 * time.Millisecond})
	r := cliResult{code, out.String(), errOut.String()}
	if strings.Contains(r.stdout+r.stderr, testToken) || strings.Contains(r.stdout+r.stderr, testToken[:16]) {
		t.Errorf("liftoff %v printed the token:\n%s", args, r)
	}
	return r
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

const (
	digestA = "sha256:3f9a0c1d2e4b5a697887766554433221100998877665a6978877665544332211"
	digestB = "sha256:aa11bb22cc33dd44ee55ff6677889900dd44ee55ff6677889900dd44ee55ff66"
)

// deploymentsAnswer is a GET /api/v1/deployments answer: web-production
// runs v1.4.1 since 3h, paused, with a push pending; web-staging's last
// deploy rolled back and it is down; worker runs nothing.
func deploymentsAnswer(now time.Time) string {
	return `{"deployments":[
 {"name":"web-production","environment":"production","image":"docker.io/acme/web","tags":["semver:^1"],"strategy":"start-first",
  "paused":true,"paused_by":"lead","paused_since":"` + ts(now.Add(-2*time.Hour)) + `",
  "running":{"container":"web-production","id":"c0ffee","tag":"v1.4.1","digest":"` + digestA + `","since":"` + ts(now.Add(-3*time.Hour-time.Minute)) + `","state":"running","health":"healthy"},
  "down":null,
  "last":{"id":41,"outcome":"succeeded","tag":"v1.4.1","digest":"` + digestA + `","started":"` + ts(now.Add(-3*time.Hour)) + `","ended":"` + ts(now.Add(-3*time.Hour)) + `","error":""},
  "pending":{"delivery":"d-pending","tag":"v1.4.2","pusher":"alice","received":"` + ts(now.Add(-10*time.Minute)) + `","expires":"` + ts(now.Add(23*time.Hour+30*time.Minute)) + `"},
  "held":null},
 {"name":"web-staging","environment":"staging","image":"docker.io/acme/web","tags":["latest"],"strategy":"stop-first","paused":false,
  "running":{"container":"web-staging","id":"beef","tag":"v1.4.2","digest":"` + digestB + `","since":"` + ts(now.Add(-5*time.Minute)) + `","state":"running","health":""},
  "down":"container exited (code 1)",
  "last":{"id":44,"outcome":"rolled_back","tag":"v1.4.3","digest":"` + digestA + `","started":"` + ts(now.Add(-time.Minute)) + `","ended":"` + ts(now.Add(-30*time.Second)) + `","error":"health gate: GET /healthz answered 500"},
  "pending":null,"held":null},
 {"name":"worker","environment":"staging","image":"docker.io/acme/worker","tags":["latest"],"strategy":"stop-first","paused":false,
  "running":null,"down":null,"last":null,"pending":null,"held":null}
]}`
}

func TestCLIStatusTable(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("GET /api/v1/deployments", 200, deploymentsAnswer(now))
	r := runClientTest(t, f.srv.URL, nil, "status")
	if r.code != ExitOK {
		t.Fatalf("status: %s", r)
	}
	lines := strings.Split(r.stdout, "\n")
	want := [][]string{
		{"ENVIRONMENT", "DEPLOYMENT", "TAG", "DIGEST", "SINCE", "STATE", "LAST"},
		{"production", "web-production", "v1.4.1", "3f9a0c1d2e4b", "3h01m ago", "running/healthy", "succeeded #41", "PAUSED PENDING"},
		{"staging", "web-staging", "v1.4.2", "aa11bb22cc33", "5m ago", "running", "rolled_back #44", "DOWN"},
		{"staging", "worker", "-", "-", "-", "not running", "-"},
	}
	for i, cells := range want {
		if i >= len(lines) || !containsInOrder(lines[i], cells) {
			t.Errorf("line %d: want %q in order:\n%s", i, cells, r.stdout)
		}
	}
	for _, note := range []string{
		"web-production: PAUSED by lead 2h00m ago",
		"liftoff resume web-production",
		"web-production: PENDING v1.4.2 pushed by alice 10m ago awaits approval, expires in 23h29m",
		"liftoff approve|reject web-production",
		"web-staging: last deploy #44 (v1.4.3) rolled_back: health gate: GET /healthz answered 500",
		"web-staging: DOWN: container exited (code 1)",
	} {
		if !strings.Contains(r.stdout, note) {
			t.Errorf("status lacks %q:\n%s", note, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "sha256:") || strings.Contains(r.stdout, digestA[7:20]) {
		t.Errorf("status shows more than 12 hex digits of a digest:\n%s", r.stdout)
	}
	if got := f.auth[0]; got != "Bearer "+testToken {
		t.Errorf("Authorization %q", got)
	}
}

// containsInOrder tells whether line holds cells in this order.
func containsInOrder(line string, cells []string) bool {
	for _, c := range cells {
		i := strings.Index(line, c)
		if i < 0 {
			return false
		}
		line = line[i+len(c):]
	}
	return true
}

func TestCLIStatusJSON(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("GET /api/v1/deployments", 200, deploymentsAnswer(now))
	r := runClientTest(t, f.srv.URL, nil, "status", "--json")
	if r.code != ExitOK {
		t.Fatalf("status --json: %s", r)
	}
	var got, want any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("status --json prints no JSON: %v\n%s", err, r.stdout)
	}
	json.Unmarshal([]byte(deploymentsAnswer(now)), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status --json is not the API's answer:\n%s", r.stdout)
	}
}

func TestCLIStatusOneDeployment(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("GET /api/v1/deployments/web-staging", 200, `{"name":"web-staging","environment":"staging","paused":false,
 "running":{"tag":"v1.4.2","digest":"`+digestB+`","since":"`+ts(now.Add(-5*time.Minute))+`","state":"running","health":"healthy"},
 "down":null,"last":null,"pending":null,"held":{"delivery":"d-held","tag":"v1.5.0","pusher":"bob","received":"`+ts(now.Add(-time.Minute))+`"},
 "poll":{"interval_seconds":300,"polled":"`+ts(now.Add(-42*time.Second))+`","result":"ok","next":"`+ts(now.Add(4*time.Minute+30*time.Second))+`"},
 "history":[`+deployJSONText(7, "web-staging", "v1.4.2", digestB, "api", "ci", "", "succeeded", "", now.Add(-5*time.Minute), 8300*time.Millisecond, "")+`]}`)
	f.on("GET /api/v1/deployments/{name}", 404, `{"error":"no such deployment"}`)
	r := runClientTest(t, f.srv.URL, nil, "status", "web-staging")
	if r.code != ExitOK || !strings.Contains(r.stdout, "web-staging: HELD v1.5.0, pushed 1m ago, deploys on resume") ||
		!containsInOrder(r.stdout, []string{"ID", "WHEN", "7", "5m ago", "web-staging", "v1.4.2", "aa11bb22cc33", "api", "ci", "succeeded", "8.30s"}) {
		t.Errorf("status web-staging: %s", r)
	}
	if !strings.Contains(r.stdout, "web-staging: polled every 5m00s: last 42s ago, ok; next in 4m") {
		t.Errorf("status web-staging does not say how it is polled: %s", r)
	}
	r = runClientTest(t, f.srv.URL, nil, "status", "nope")
	if r.code != ExitFailed || !strings.Contains(r.stderr, `no such deployment "nope"`) {
		t.Errorf("status nope: %s", r)
	}
}

// deployJSONText is one deploy of GET /api/v1/deploys; outcome "" is a
// deploy under way at step.
func deployJSONText(id int64, deployment, tag, digest, trigger, actor, pusher, outcome, step string, started time.Time, took time.Duration, errText string) string {
	d := map[string]any{"id": id, "deployment": deployment, "environment": "staging", "image": "docker.io/acme/web",
		"tag": tag, "digest": digest, "previous_digest": "", "trigger": trigger, "actor": actor, "pusher": pusher,
		"delivery": fmt.Sprintf("d-%d", id), "outcome": nil, "error": errText, "started": ts(started), "ended": nil,
		"phases": map[string]float64{}}
	if outcome != "" {
		d["outcome"], d["settled"] = outcome, true
		d["ended"] = ts(started.Add(took))
	} else {
		d["step"] = step
	}
	b, _ := json.Marshal(d)
	return string(b)
}

func TestCLIHistory(t *testing.T) {
	t.Parallel()
	now := time.Now()
	long := "health gate: GET http://10.0.0.7:8080/healthz answered 500 Internal Server Error after 30 attempts over 30s\nsecond line"
	f := newFakeDaemon(t)
	answer := `{"deploys":[` +
		deployJSONText(45, "web-staging", "v1.4.4", "", "api", "ci", "", "", "pull", now.Add(-2*time.Second), 0, "") + "," +
		deployJSONText(44, "web-staging", "v1.4.3", digestA, "dockerhub", "lead", "alice", "rolled_back", "", now.Add(-time.Hour), 125*time.Second, long) + "," +
		deployJSONText(43, "web-staging", "v1.4.2", digestB, "dockerhub", "", "alice", "succeeded", "", now.Add(-26*time.Hour), 8300*time.Millisecond, "") +
		`],"next":"43"}`
	f.on("GET /api/v1/deploys", 200, answer)
	r := runClientTest(t, f.srv.URL, nil, "history", "web-staging", "--limit", "3")
	if r.code != ExitOK {
		t.Fatalf("history: %s", r)
	}
	lines := strings.Split(r.stdout, "\n")
	for i, cells := range [][]string{
		{"ID", "WHEN", "DEPLOYMENT", "TAG", "DIGEST", "TRIGGER", "BY", "OUTCOME", "DURATION", "ERROR"},
		{"45", "2s ago", "web-staging", "v1.4.4", "-", "api", "ci", "running (pull)", "-"},
		{"44", "1h00m ago", "web-staging", "v1.4.3", "3f9a0c1d2e4b", "dockerhub", "alice, approved by lead", "rolled_back", "2m05s", "health gate: GET http://10.0.0.7:8080/healthz answered 500 …"},
		{"43", "26h00m ago", "web-staging", "v1.4.2", "aa11bb22cc33", "dockerhub", "alice", "succeeded", "8.30s"},
	} {
		if i >= len(lines) || !containsInOrder(lines[i], cells) {
			t.Errorf("line %d: want %q in order:\n%s", i, cells, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "second line") || !strings.Contains(r.stdout, "Older: liftoff history web-staging --before 43") {
		t.Errorf("history: the error is not trimmed, or the next page is not said:\n%s", r.stdout)
	}
	if q := f.asked()[0]; q != "GET /api/v1/deploys?deployment=web-staging&limit=3" {
		t.Errorf("history asked %q", q)
	}

	r = runClientTest(t, f.srv.URL, nil, "history", "--json", "--outcome", "rolled_back", "--environment", "staging", "--before", "50", "--delivery", "d-44")
	var got, want any
	json.Unmarshal([]byte(answer), &want)
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != ExitOK || err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("history --json is not the API's answer: %s", r)
	}
	if q := f.asked()[1]; q != "GET /api/v1/deploys?before=50&delivery=d-44&environment=staging&limit=20&outcome=rolled_back" {
		t.Errorf("history asked %q", q)
	}
}

func TestCLIHistoryUnknownDeployment(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	f.on("GET /api/v1/deploys", 200, `{"deploys":[],"next":null}`)
	f.on("GET /api/v1/deployments/fresh", 200, `{"name":"fresh","history":[]}`)
	f.on("GET /api/v1/deployments/{name}", 404, `{"error":"no such deployment"}`)
	if r := runClientTest(t, f.srv.URL, nil, "history", "fresh"); r.code != ExitOK || !strings.Contains(r.stdout, "No deploys.") {
		t.Errorf("history of a deployment never deployed: %s", r)
	}
	if r := runClientTest(t, f.srv.URL, nil, "history", "nope"); r.code != ExitFailed || !strings.Contains(r.stderr, `no such deployment "nope" (404)`) {
		t.Errorf("history of an unknown deployment: %s", r)
	}
}

// TestCLIErrors: each refusal of the daemon is said plainly, exits 1, and
// never shows the token.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"forbidden", 403, `{"error":"forbidden: this token lacks scope deploy:production"}`, "refused (403): forbidden: this token lacks scope deploy:production"},
		{"unknown deployment", 404, `{"error":"no such deployment"}`, `no such deployment "web-prod" (404): liftoff status lists them`},
		{"no API", 404, `{"error":"not found"}`, "has no management API (404)"},
		{"conflict", 409, `{"error":"conflict: no earlier successful deploy of web-prod with another digest than the one running"}`,
			"conflict: no earlier successful deploy of web-prod with another digest than the one running (409)"},
		{"bad request", 400, `{"error":"bad request: \"v1..\" is not a valid tag"}`, `the daemon refused the request (400): bad request: "v1.." is not a valid tag`},
		{"draining", 503, `{"error":"shutting down"}`, "the daemon cannot do it now (503): shutting down; try again later"},
		{"internal", 500, `{"error":"internal error"}`, "the daemon answered 500 Internal Server Error: internal error"},
		{"not JSON", 502, `<html>Bad Gateway</html>`, "the daemon answered 502 Bad Gateway: <html>Bad Gateway</html>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDaemon(t)
			f.on("POST /api/v1/deployments/{name}/{action}", tc.status, tc.body)
			for _, args := range [][]string{{"rollback", "web-prod"}, {"deploy", "web-prod", "v1", "--wait"}, {"pause", "web-prod", "--json"}} {
				r := runClientTest(t, f.srv.URL, nil, args...)
				if r.code != ExitFailed || !strings.HasPrefix(r.stderr, "liftoff "+args[0]+": ") || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
					t.Errorf("liftoff %v: want exit 1 and %q: %s", args, tc.want, r)
				}
			}
		})
	}
}

func TestCLIUnauthorized(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	r := runClientTest(t, f.srv.URL, map[string]string{"LIFTOFF_TOKEN": "a-wrong-token-0123456789abcdef"}, "status")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "the daemon does not know this token (401): the token in $LIFTOFF_TOKEN is none of its api_tokens") ||
		strings.Contains(r.stderr, "a-wrong-token") {
		t.Errorf("status with an unknown token: %s", r)
	}
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("another-wrong-token-0123456789\n"), 0o600)
	r = runClientTest(t, f.srv.URL, map[string]string{}, "status", "--token-file", file)
	if r.code != ExitFailed || !strings.Contains(r.stderr, "(401): the token in "+file+" is none") || strings.Contains(r.stderr, "another-wrong") {
		t.Errorf("status with an unknown token from a file: %s", r)
	}
}

func TestCLIUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	for _, args := range [][]string{{"status"}, {"deploy", "web", "v1", "--wait"}} {
		r := runClientTest(t, url, nil, args...)
		if r.code != ExitFailed || !strings.Contains(r.stderr, "cannot reach the liftoff daemon at "+url) || !strings.Contains(r.stderr, "refused") {
			t.Errorf("liftoff %v with no daemon: %s", args, r)
		}
	}
}

// TestCLIToken: the token comes from $LIFTOFF_TOKEN or --token-file (the
// file wins, its trailing newline dropped); without one it is a usage
// error; it is never printed.
func TestCLIToken(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	f.on("GET /api/v1/deployments", 200, `{"deployments":[]}`)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte(testToken+"\r\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	ctrl := filepath.Join(dir, "ctrl")
	os.WriteFile(ctrl, []byte(testToken+"\x00x\n"), 0o600)

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"env", map[string]string{"LIFTOFF_TOKEN": testToken}, nil, ExitOK, "No deployments configured."},
		{"env with a newline", map[string]string{"LIFTOFF_TOKEN": testToken + "\n"}, nil, ExitOK, "No deployments configured."},
		{"file", map[string]string{}, []string{"--token-file", good}, ExitOK, "No deployments configured."},
		{"the file wins", map[string]string{"LIFTOFF_TOKEN": "wrong-token-0123456789abcdefgh"}, []string{"--token-file", good}, ExitOK, "No deployments configured."},
		{"none", map[string]string{}, nil, ExitUsage, "no API token: set LIFTOFF_TOKEN or give --token-file FILE"},
		{"empty env", map[string]string{"LIFTOFF_TOKEN": ""}, nil, ExitUsage, "no API token"},
		{"empty file", map[string]string{"LIFTOFF_TOKEN": testToken}, []string{"--token-file", empty}, ExitUsage, "--token-file " + empty + " is empty"},
		{"missing file", map[string]string{}, []string{"--token-file", filepath.Join(dir, "none")}, ExitUsage, "--token-file " + filepath.Join(dir, "none") + ": no such file"},
		{"control character", map[string]string{}, []string{"--token-file", ctrl}, ExitUsage, "has a control character"},
	} {
		r := runClientTest(t, f.srv.URL, tc.env, append([]string{"status"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("%s: want exit %d with %q: %s", tc.name, tc.code, tc.want, r)
		}
	}
	for _, a := range f.auth {
		if a != "Bearer "+testToken {
			t.Errorf("sent Authorization %q", a)
		}
	}
	// --help never shows the token either, even with one set.
	for _, cmd := range []string{"status", "deploy", "history"} {
		r := runClientTest(t, f.srv.URL, nil, cmd, "--help")
		if r.code != ExitOK || !strings.Contains(r.stdout, "$LIFTOFF_TOKEN") {
			t.Errorf("%s --help: %s", cmd, r)
		}
	}
}

func TestCLIServer(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	f.on("GET /prefix/api/v1/deployments", 200, `{"deployments":[]}`)
	// --server beats $LIFTOFF_SERVER; a path prefix (a proxy) is kept.
	r := runClientTest(t, "http://127.0.0.1:1", nil, "status", "--server", f.srv.URL+"/prefix/")
	if r.code != ExitOK {
		t.Errorf("--server with a prefix: %s", r)
	}
	for _, bad := range []string{"127.0.0.1:8080", "ftp://x", "http://", "http://user:pw@host", "http://h/?q=1"} {
		if r := runClientTest(t, "", nil, "status", "--server", bad); r.code != ExitUsage || !strings.Contains(r.stderr, "--server") {
			t.Errorf("--server %q: %s", bad, r)
		}
	}
	// The default is 127.0.0.1:8080.
	var out, errOut bytes.Buffer
	s, err := newSession(context.Background(), ClientFlags{}, Env{Stdout: &out, Stderr: &errOut, Lookup: func(k string) (string, bool) {
		if k == "LIFTOFF_TOKEN" {
			return testToken, true
		}
		return "", false
	}})
	if err != nil || s.api.server() != "http://127.0.0.1:8080" {
		t.Errorf("default server: %v %v", s, err)
	}
}

func TestCLIHTTPS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken || r.URL.Path != "/api/v1/deployments" {
			answerJSON(w, 401, `{"error":"unauthorized"}`)
			return
		}
		answerJSON(w, 200, `{"deployments":[]}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	defer srv.Close()
	// A certificate the system does not trust: refused, said clearly.
	r := runClientTest(t, srv.URL, nil, "status")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "cannot reach the liftoff daemon at "+srv.URL) || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("https with an unknown certificate: %s", r)
	}
	// Trusted (as the system's roots would be): it works.
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) {
		return map[string]string{"LIFTOFF_TOKEN": testToken, "LIFTOFF_SERVER": srv.URL}[k], true
	}
	code := Run(context.Background(), []string{"status"}, Env{Stdout: &out, Stderr: &errOut, Lookup: lookup, HTTPClient: srv.Client()})
	if code != ExitOK || !strings.Contains(out.String(), "No deployments configured.") {
		t.Errorf("https: exit %d %s %s", code, out.String(), errOut.String())
	}
}

// deploysScript answers GET /api/v1/deploys?delivery=... with the next
// of its answers at each call (the last one again once at the end), and
// GET /api/v1/deploys?deployment=... (without delivery) with newest.
type deploysScript struct {
	mu      sync.Mutex
	answers []string
	newest  string
}

func (s *deploysScript) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Query().Get("delivery") == "" {
		answerJSON(w, 200, s.newest)
		return
	}
	a := s.answers[0]
	if len(s.answers) > 1 {
		s.answers = s.answers[1:]
	}
	answerJSON(w, 200, a)
}

func deploysPage(ds ...string) string {
	return `{"deploys":[` + strings.Join(ds, ",") + `],"next":null}`
}

// running is deploy 50 of delivery d-50, under way at step.
func running(started time.Time, step string) string {
	return deployJSONText(50, "web-staging", "v1.4.2", "", "api", "ci", "", "", step, started, 0, "")
}

// ended is deploy 50 ended with outcome, with its phases.
func ended(started time.Time, outcome, errText string) string {
	d := deployJSONText(50, "web-staging", "v1.4.2", digestA, "api", "ci", "", outcome, "", started, 8300*time.Millisecond, errText)
	phases := `"phases":{"gate":5.012,"pull":2.31,"resolve":0.05,"stop":0.4,"create":0.05,"start":0.3,"cleanup":0.1,"prepare":0.01,"rename":0.01}`
	if outcome == "rolled_back" {
		phases = `"phases":{"gate":30,"pull":2.31,"resolve":0.05,"prepare":0.01,"stop":0.4,"rename":0.01,"create":0.05,"start":0.3,"rollback":1.5}`
	}
	return strings.Replace(d, `"phases":{}`, phases, 1)
}

func TestCLIDeployWaitSucceeded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web-staging/deploy", 202, `{"delivery":"d-50"}`)
	script := &deploysScript{newest: deploysPage(deployJSONText(49, "web-staging", "v1.4.1", digestB, "dockerhub", "", "alice", "", "gate", now.Add(-time.Minute), 0, "")),
		answers: []string{
			deploysPage(), deploysPage(), // queued
			deploysPage(running(now, "resolve")),
			deploysPage(running(now, "pull")), deploysPage(running(now, "pull")),
			deploysPage(running(now, "gate")),
			deploysPage(ended(now, "succeeded", "")),
		}}
	f.mux.HandleFunc("GET /api/v1/deploys", script.serve)
	r := runClientTest(t, f.srv.URL, nil, "deploy", "web-staging", "v1.4.2", "--wait")
	if r.code != ExitOK {
		t.Fatalf("deploy --wait: %s", r)
	}
	want := []string{
		"Accepted: deploy of v1.4.2 to web-staging (delivery d-50); waiting up to 15m0s.",
		"  queued: waiting for its turn",
		"  resolve   looking up the tag's digest",
		"  pull      pulling the image",
		"  gate      health gate: the new container proves itself",
		"  phases: resolve 0.05s, pull 2.31s, prepare 0.01s, stop 0.40s, rename 0.01s, create 0.05s, start 0.30s, gate 5.01s, cleanup 0.10s",
		"succeeded: web-staging runs v1.4.2 (3f9a0c1d2e4b); deploy #50 took 8.30s",
		"",
	}
	if got := strings.Split(r.stdout, "\n"); !slices.Equal(got, want) {
		t.Errorf("deploy --wait printed:\n%s\nwant:\n%s", r.stdout, strings.Join(want, "\n"))
	}
	if b := f.posted(); len(b) != 1 || b[0] != `{"tag":"v1.4.2"}` {
		t.Errorf("posted %q", b)
	}
	for _, q := range f.asked()[1:] {
		if q != "GET /api/v1/deploys?delivery=d-50&deployment=web-staging&limit=1" && q != "GET /api/v1/deploys?deployment=web-staging&limit=1" {
			t.Errorf("--wait asked %q", q)
		}
	}
}

func TestCLIDeployWaitRolledBack(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web-staging/deploy", 202, `{"delivery":"d-50"}`)
	script := &deploysScript{answers: []string{
		deploysPage(running(now, "gate")),
		deploysPage(running(now, "rollback")),
		deploysPage(ended(now, "rolled_back", "health gate: GET /healthz answered 500")),
	}}
	f.mux.HandleFunc("GET /api/v1/deploys", script.serve)
	r := runClientTest(t, f.srv.URL, nil, "deploy", "web-staging", "v1.4.2", "--wait", "--json")
	if r.code != ExitFailed {
		t.Fatalf("deploy --wait of a deploy rolled back: %s", r)
	}
	for _, want := range []string{"  rollback  the new container failed: rolling back to the previous one",
		"phases: resolve 0.05s, pull 2.31s, prepare 0.01s, stop 0.40s, rename 0.01s, create 0.05s, start 0.30s, gate 30.0s, rollback 1.50s",
		"liftoff deploy: rolled_back: deploy #50 of v1.4.2 (3f9a0c1d2e4b) to web-staging did not succeed after 8.30s: health gate: GET /healthz answered 500"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r)
		}
	}
	// --json: stdout is the API's answer about the deploy, nothing else.
	var page apiv1.Deploys
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Deploys) != 1 || outcomeOf(page.Deploys[0].Outcome) != "rolled_back" {
		t.Errorf("deploy --wait --json stdout: %v %s", err, r)
	}
}

// TestCLIWaitThroughARestart: the deploy is interrupted (liftoff died):
// its record ends unsettled, and a resumed deploy of the same delivery
// follows; --wait goes on to the end of that one.
func TestCLIWaitThroughARestart(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web-staging/deploy", 202, `{"delivery":"d-50"}`)
	interrupted := strings.Replace(ended(now, "rolled_back", "interrupted at step gate; the previous container was restored at start-up"),
		`"settled":true`, `"settled":false`, 1)
	resumed := strings.Replace(ended(now, "succeeded", ""), `"id":50`, `"id":51`, 1)
	script := &deploysScript{answers: []string{
		deploysPage(running(now, "gate")),
		deploysPage(interrupted), deploysPage(interrupted),
		deploysPage(resumed),
	}}
	f.mux.HandleFunc("GET /api/v1/deploys", script.serve)
	r := runClientTest(t, f.srv.URL, nil, "deploy", "web-staging", "v1.4.2", "--wait")
	if r.code != ExitOK {
		t.Fatalf("deploy --wait through an interruption: %s", r)
	}
	for _, want := range []string{"interrupted (interrupted at step gate; the previous container was restored at start-up): liftoff deploys it again",
		"succeeded: web-staging runs v1.4.2 (3f9a0c1d2e4b); deploy #51"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestCLIWaitOutcomes: --wait exits 0 only for succeeded and unchanged.
func TestCLIWaitOutcomes(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for outcome, code := range map[string]int{"succeeded": 0, "unchanged": 0, "rolled_back": 1, "failed": 1, "refused": 1, "expired": 1, "rejected": 1} {
		f := newFakeDaemon(t)
		f.on("POST /api/v1/deployments/web-staging/approve", 202, `{"delivery":"d-50"}`)
		f.mux.HandleFunc("GET /api/v1/deploys", (&deploysScript{answers: []string{deploysPage(ended(now, outcome, "why"))}}).serve)
		r := runClientTest(t, f.srv.URL, nil, "approve", "web-staging", "--request", "50", "--wait")
		if r.code != code || !strings.Contains(r.stdout+r.stderr, outcome+": ") {
			t.Errorf("approve --wait, outcome %s: want exit %d: %s", outcome, code, r)
		}
	}
}

func TestCLIWaitTimeout(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web-staging/rollback", 202, `{"delivery":"d-50"}`)
	f.mux.HandleFunc("GET /api/v1/deploys", (&deploysScript{answers: []string{deploysPage(running(now, "gate"))}}).serve)
	start := time.Now()
	r := runClientTest(t, f.srv.URL, nil, "rollback", "web-staging", "--wait", "--timeout", "150ms")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "gave up waiting after 150ms (--timeout): the rollback of web-staging is deploy #50, at step gate; it goes on in the daemon (liftoff history --delivery d-50)") {
		t.Errorf("rollback --wait --timeout: %s", r)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("--timeout 150ms took %s", time.Since(start))
	}
}

// TestCLIWaitSuperseded: a request that never begins because a later one
// replaced it is not waited for until the timeout; one replaced by an
// identical request is followed through that one.
func TestCLIWaitSuperseded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	other := func(id int64, tag, outcome string) string {
		return deployJSONText(id, "web-staging", tag, "", "dockerhub", "", "alice", outcome, "resolve", now, time.Second, "")
	}
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web-staging/deploy", 202, `{"delivery":"d-50"}`)
	var mu sync.Mutex
	calls := 0
	f.mux.HandleFunc("GET /api/v1/deploys", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Query().Get("delivery") != "" {
			answerJSON(w, 200, deploysPage()) // d-50 never begins
			return
		}
		if calls++; calls == 1 {
			answerJSON(w, 200, deploysPage(other(60, "v1.4.1", "")))
			return
		}
		answerJSON(w, 200, deploysPage(other(61, "v1.5.0", "")))
	})
	r := runClientTest(t, f.srv.URL, nil, "deploy", "web-staging", "v1.4.2", "--wait")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "the deploy of v1.4.2 to web-staging was superseded: a later request (delivery d-61, v1.5.0) deploys instead as deploy #61") {
		t.Errorf("deploy --wait superseded: %s", r)
	}

	// The same, but the later request asks for the same tag: followed.
	g := newFakeDaemon(t)
	g.on("POST /api/v1/deployments/web-staging/deploy", 202, `{"delivery":"d-50"}`)
	newest := 0
	g.mux.HandleFunc("GET /api/v1/deploys", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch q := r.URL.Query(); {
		case q.Get("delivery") == "d-50":
			answerJSON(w, 200, deploysPage())
		case q.Get("delivery") == "d-61":
			answerJSON(w, 200, deploysPage(other(61, "v1.4.2", "succeeded")))
		default:
			if newest++; newest == 1 {
				answerJSON(w, 200, deploysPage())
				return
			}
			answerJSON(w, 200, deploysPage(other(61, "v1.4.2", "")))
		}
	})
	r = runClientTest(t, g.srv.URL, nil, "deploy", "web-staging", "v1.4.2", "--wait")
	if r.code != ExitOK || !strings.Contains(r.stdout, "an identical request (delivery d-61) stands for this one: following deploy #61") ||
		!strings.Contains(r.stdout, "succeeded: web-staging runs v1.4.2") {
		t.Errorf("deploy --wait replaced by an identical request: %s", r)
	}
}

// TestCLIWaitNeedsRead: a token that may deploy but not read gets its
// deploy, and is told why --wait cannot follow it.
func TestCLIWaitNeedsRead(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web-staging/deploy", 202, `{"delivery":"d-50"}`)
	f.on("GET /api/v1/deploys", 403, `{"error":"forbidden: this token lacks scope read"}`)
	r := runClientTest(t, f.srv.URL, nil, "deploy", "web-staging", "v1.4.2", "--wait")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "the deploy of v1.4.2 to web-staging was accepted (delivery d-50), but --wait cannot follow it: refused (403): forbidden: this token lacks scope read; give the token the read scope") {
		t.Errorf("deploy --wait with a token without read: %s", r)
	}
}

// TestCLIWaitDaemonAway: the daemon restarting (503, no answer) while a
// deploy is followed is waited out.
func TestCLIWaitDaemonAway(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web-staging/deploy", 202, `{"delivery":"d-50"}`)
	var mu sync.Mutex
	n := 0
	f.mux.HandleFunc("GET /api/v1/deploys", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch n++; {
		case n == 1:
			answerJSON(w, 200, deploysPage(running(now, "pull")))
		case n < 4:
			answerJSON(w, 503, `{"error":"shutting down"}`)
		default:
			answerJSON(w, 200, deploysPage(ended(now, "succeeded", "")))
		}
	})
	r := runClientTest(t, f.srv.URL, nil, "deploy", "web-staging", "v1.4.2", "--wait")
	if r.code != ExitOK || strings.Count(r.stdout, "no answer from the daemon") != 1 {
		t.Errorf("deploy --wait across a restart: %s", r)
	}
}

func TestCLIDeployWithoutWait(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	f.on("POST /api/v1/deployments/web/deploy", 202, `{"delivery":"d-7"}`)
	r := runClientTest(t, f.srv.URL, nil, "deploy", "web", "@"+digestA)
	if r.code != ExitOK || !strings.Contains(r.stdout, "Accepted: deploy of @"+digestA+" to web (delivery d-7).") ||
		!strings.Contains(r.stdout, "liftoff history --delivery d-7") {
		t.Errorf("deploy: %s", r)
	}
	r = runClientTest(t, f.srv.URL, nil, "deploy", "web", "v2", "--json")
	if r.code != ExitOK || strings.TrimSpace(r.stdout) != "{\n  \"delivery\": \"d-7\"\n}" {
		t.Errorf("deploy --json: %s", r)
	}
	if b := f.posted(); !slices.Equal(b, []string{`{"digest":"` + digestA + `"}`, `{"tag":"v2"}`}) {
		t.Errorf("posted %q", b)
	}
}

func TestCLIActions(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	view := `{"name":"web","environment":"production","paused":%t,"running":null,"down":null,"last":null,"pending":null,"held":%s}`
	f.on("POST /api/v1/deployments/web/rollback", 202, `{"delivery":"d-8"}`)
	f.on("POST /api/v1/deployments/web/approve", 202, `{"request":9,"delivery":"d-9","digest":"sha256:99"}`)
	f.on("POST /api/v1/deployments/web/reject", 200, `{"request":9,"delivery":"d-9"}`)
	f.on("POST /api/v1/deployments/web/pause", 200, fmt.Sprintf(view, true, "null"))
	// The answer to resume says what it sent on.
	f.on("POST /api/v1/deployments/web/resume", 200, strings.Replace(fmt.Sprintf(view, false, "null"), `"held":null}`,
		`"held":null,"resumed":{"delivery":"d-held","tag":"v3","state":"queued"}}`, 1))
	for _, tc := range []struct {
		args []string
		body string
		out  string
	}{
		{[]string{"rollback", "web"}, `{}`, "Accepted: rollback of web (delivery d-8)."},
		{[]string{"rollback", "web", "--to", "3"}, `{"to":3}`, "Accepted: rollback of web to deploy #3 (delivery d-8)."},
		{[]string{"approve", "web", "--request", "9"}, `{"request":9}`, "Accepted: approved push to web (request 9, sha256:99) (delivery d-9)."},
		{[]string{"reject", "web", "--request", "9"}, `{"request":9}`, "Rejected the push pending for web (request 9, delivery d-9): it will not be deployed."},
		{[]string{"pause", "web"}, `{}`, "Paused web: pushes are held until liftoff resume web."},
		{[]string{"resume", "web"}, `{}`, "Resumed web: pushes deploy again.\nThe push held meanwhile, v3 (delivery d-held), deploys now: liftoff history --delivery d-held"},
	} {
		before := len(f.posted())
		r := runClientTest(t, f.srv.URL, nil, tc.args...)
		if r.code != ExitOK || !strings.Contains(r.stdout, tc.out) {
			t.Errorf("liftoff %v: want %q: %s", tc.args, tc.out, r)
		}
		if b := f.posted(); len(b) != before+1 || b[before] != tc.body {
			t.Errorf("liftoff %v posted %q, want %q", tc.args, b[before:], tc.body)
		}
	}
	r := runClientTest(t, f.srv.URL, nil, "pause", "web", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); r.code != ExitOK || err != nil || v["paused"] != true {
		t.Errorf("pause --json: %s", r)
	}
}

// TestCLIUsage: liftoff --help lists every command of the grammar, each
// command has its help (the client commands with the client flags, the
// others without), and bad arguments are usage errors (2) said before
// anything is asked of the daemon.
func TestCLIUsage(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "--help")
	if code != ExitOK {
		t.Fatalf("--help: exit %d", code)
	}
	var gr grammar
	parser, err := newParser(&gr, Env{Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var names, clientCommands []string
	for _, c := range parser.Model.Children {
		names = append(names, c.Name)
		if isClient(c) {
			clientCommands = append(clientCommands, c.Name)
		}
	}
	want := []string{"serve", "validate", "audit", "version", "status", "history", "logs", "deploy", "rollback", "approve", "reject", "pause", "resume", "canary", "previews"}
	if !slices.Equal(names, want) {
		t.Errorf("the grammar's commands %v, want %v", names, want)
	}
	if !slices.Equal(clientCommands, want[4:]) {
		t.Errorf("the grammar's client commands %v, want %v", clientCommands, want[4:])
	}
	for _, name := range names {
		if !regexp.MustCompile(`(?m)^  liftoff ` + name + ` .*\S`).MatchString(out) {
			t.Errorf("liftoff --help has no line for %s:\n%s", name, out)
		}
	}
	for _, want := range []string{"LIFTOFF_SERVER", "LIFTOFF_TOKEN", "--token-file", "--json", "--wait", "Exit codes: 0 ok; 1", "2 usage or"} {
		if !strings.Contains(out, want) {
			t.Errorf("liftoff --help lacks %q", want)
		}
	}
	for _, name := range names {
		client := slices.Contains(clientCommands, name)
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			code, out, _ := runCLI(t, args...)
			if code != ExitOK || !strings.Contains(out, "Usage: liftoff "+name) || strings.Contains(out, "--server") != client {
				t.Errorf("liftoff %v: exit %d, --server shown %v, want %v\n%s", args, code, !client, client, out)
			}
		}
	}

	f := newFakeDaemon(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "web"}, `expected "<tag|@digest>"`},
		{[]string{"deploy", "web", "v 1"}, `"v 1" is not a tag`},
		{[]string{"deploy", "web", "@sha256:abc"}, "is not a digest"},
		{[]string{"deploy", "web", ".hidden"}, "is not a tag"},
		{[]string{"deploy", "web", "v1", "--timeout", "0s", "--wait"}, "--timeout 0s: want a positive duration"},
		{[]string{"deploy", "web", "v1", "--bogus"}, "unknown flag --bogus"},
		{[]string{"rollback"}, `expected "<deployment>"`},
		{[]string{"rollback", "web", "--to", "x"}, "--to"},
		{[]string{"pause", "web", "extra"}, "unexpected argument extra"},
		{[]string{"history", "--limit", "0"}, "--limit 0: want 1 to 1000"},
		{[]string{"status", "--server"}, "--server"},
		{[]string{"--server", f.srv.URL}, "expected one of"},
	} {
		r := runClientTest(t, f.srv.URL, map[string]string{}, tc.args...) // no token: arguments are said first
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("liftoff %v: want exit 2 and %q: %s", tc.args, tc.want, r)
		}
	}
	if a := f.asked(); len(a) != 0 {
		t.Errorf("bad arguments asked the daemon %q", a)
	}
	// The client flags may come before the command.
	g := newFakeDaemon(t)
	g.on("GET /api/v1/deployments", 200, `{"deployments":[]}`)
	var so, se bytes.Buffer
	code = run(context.Background(), []string{"--server", g.srv.URL, "status"}, &so, &se, func(k string) (string, bool) {
		return testToken, k == "LIFTOFF_TOKEN"
	})
	if code != ExitOK || !strings.Contains(so.String(), "No deployments configured.") {
		t.Errorf("liftoff --server URL status: exit %d %s %s", code, so.String(), se.String())
	}
}

func TestCLIFormat(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if got := ago(now, time.Time{}); got != "-" {
		t.Errorf("ago(zero) = %q", got)
	}
	if got := ago(now, now.Add(-3*time.Hour-10*time.Minute)); got != "3h10m ago" {
		t.Errorf("ago(3h10m) = %q, want apiv1.Ago's", got)
	}
	if got := phasesLine(map[string]float64{"zeta": 1, "gate": 2, "pull": 0.5, "release": 3}); got != "pull 0.50s, release 3.00s, gate 2.00s, zeta 1.00s" {
		t.Errorf("phasesLine = %q", got)
	}
	if got := pollText(now, apiv1.Poll{IntervalSeconds: 60}); got != "polled every 1m00s: not polled yet" {
		t.Errorf("pollText before the first poll = %q", got)
	}
	polled, next := now.Add(-time.Minute), now.Add(10*time.Second)
	if got := pollText(now, apiv1.Poll{IntervalSeconds: 70, Polled: &polled, Result: "GET https://r.example/v2/: 401\nUnauthorized", Next: &next}); got != "polled every 1m10s: last 1m ago, GET https://r.example/v2/: 401 Unauthorized; next in 10s" {
		t.Errorf("pollText after a failed poll = %q", got)
	}
	for _, step := range apiv1.Steps() {
		if stepText[step] == "" {
			t.Errorf("--wait has no text for step %s", step)
		}
	}
	if len(stepText) != len(apiv1.Steps()) {
		t.Errorf("stepText has %d steps, apiv1.Steps %d", len(stepText), len(apiv1.Steps()))
	}
}
