package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// Markers, one per place liftoff takes a secret from. Each is distinctive
// enough that finding it anywhere means it leaked.
const (
	secretsToken       = "hookmarker-4f0c8a2e9b7d1c3e5a6f" // the hook token, from ${VAR}
	secretsVar         = "varmarker-3c9f1a7e"              // an env value written ${VAR}
	secretsEnvFile     = "envfilemarker-8d2b6e4a"          // a value in an env file
	secretsSecretFile  = "secretfilemarker-1f7c3e9b"       // a secret file
	secretsPassword    = "regpassmarker-6a4d2f8c"          // the registry's password_file
	secretsWrongPass   = "wrongpassmarker-0b5e7d3a"        // a rotated, wrong password
	secretsBadLine     = "badlinemarker-9e1b5c7d"          // a bad line of an env file
	secretsBadVarValue = "Bad Name badvarmarker-2d8f4b6c"  // an invalid value from ${VAR}
	secretsAPIToken    = "apimarker-5e2a9c7d1b3f4e6a8c0d"  // an API token, from ${VAR}
	secretsNotifyURL   = "notifymarker-7a3e9c1b"           // in the path of the notification receivers' URLs, from ${VAR}
	secretsNotifyKey   = "notifykeymarker-4d8b2f6e0a1c"    // the json receiver's secret_file
)

var allSecrets = []string{secretsToken, secretsVar, secretsEnvFile, secretsSecretFile, secretsPassword,
	secretsWrongPass, secretsBadLine, "badvarmarker-2d8f4b6c", secretsAPIToken, secretsNotifyURL, secretsNotifyKey}

// secretsLookup is liftoff's own environment in this test.
func secretsLookup(k string) (string, bool) {
	v, ok := map[string]string{
		"LIFTOFF_E2E_HOOK_TOKEN": secretsToken,
		"LIFTOFF_E2E_SECRET":     secretsVar,
		"LIFTOFF_E2E_BAD_NAME":   secretsBadVarValue,
		"LIFTOFF_E2E_API_TOKEN":  secretsAPIToken,
	}[k]
	return v, ok
}

// secretsConfig takes a secret from every source liftoff has. %[1]s is the
// prefix, %[2]s the registry (a password-protected DockerHub mirror),
// %[3]s the directory of the files, %[4]s an extra line for the
// deployment.
const secretsConfig = `
listen: 127.0.0.1:0
history: %[3]s/liftoff.db
hooks:
  - source: dockerhub
    token: ${LIFTOFF_E2E_HOOK_TOKEN}
api_tokens:
  - {name: ops, token: "${LIFTOFF_E2E_API_TOKEN}", scopes: [admin]}
notifications:
  - {name: audit, url: "${LIFTOFF_E2E_NOTIFY_URL}", format: json, events: [succeeded, failed, rolled_back, refused], secret_file: %[3]s/notify-key}
  - {name: team, url: "${LIFTOFF_E2E_SLACK_URL}", format: slack, events: [refused]}
registries:
  docker.io:
    mirror: %[2]s
  %[2]s:
    username: liftoff
    password_file: %[3]s/registry-password
environments:
  production:
    env:
      FROM_VAR: ${LIFTOFF_E2E_SECRET}
    env_files: [%[3]s/production.env]
    require: [SECRET_KEY]
    forbid: {DEBUG: ["True"]}
deployments:
  - name: %[1]s-app
    image: acme/%[1]s
    tags: [latest, "semver:^1"]
    environment: production
    secret_files: {SECRET_KEY: %[3]s/secret_key}
    health: {min_uptime: 500ms}
%[4]s`

// startSecretsDaemon is startDaemon with liftoff's environment set
// (secretsLookup) and a registry that wants a password.
func startSecretsDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	eng := testenv.Engine(t)
	d := &daemon{t: t, eng: eng, reg: eng.Registry(t, testenv.WithBasicAuth("liftoff", secretsPassword)),
		results: make(chan deploy.Result, 64), logs: &testenv.SyncBuffer{}}
	d.prefix = eng.UniqueName(t, "sec")
	d.repo = "acme/" + d.prefix
	dir := t.TempDir()
	for name, content := range map[string]string{
		"registry-password": secretsPassword + "\n",
		"secret_key":        secretsSecretFile + "\n",
		"production.env":    "# production\nENVFILE_SECRET=" + secretsEnvFile + "\n",
		"notify-key":        secretsNotifyKey + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Notification receivers whose URLs are secrets: audit answers, team
	// (a Slack URL) fails every try, so that its errors are logged.
	notified := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
		t.Cleanup(srv.Close)
		return srv.URL + "/services/" + secretsNotifyURL + "?token=" + secretsNotifyURL
	}
	audit, team := notified(http.StatusOK), notified(http.StatusInternalServerError)
	lookup := func(k string) (string, bool) {
		switch k {
		case "LIFTOFF_E2E_NOTIFY_URL":
			return audit, true
		case "LIFTOFF_E2E_SLACK_URL":
			return team, true
		}
		return secretsLookup(k)
	}
	path := filepath.Join(dir, "liftoff.yaml")
	secretsWriteConfig(t, d, dir, "")
	d.launch(path, lookup, liftoff.Options{})
	return d, dir
}

func secretsWriteConfig(t *testing.T, d *daemon, dir, extra string) {
	t.Helper()
	text := fmt.Sprintf(secretsConfig, d.prefix, d.reg.Host(), dir, extra)
	if err := os.WriteFile(filepath.Join(dir, "liftoff.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// secretsOutputs collects everything liftoff says, by where it said it.
type secretsOutputs map[string]string

// request makes one HTTP request and records the whole answer, headers
// included.
func (o secretsOutputs) request(t *testing.T, name, method, url, body string) (int, string) {
	t.Helper()
	return o.requestAs(t, name, "", method, url, body)
}

// requestAs is request with Authorization: Bearer token (none if "").
func (o secretsOutputs) requestAs(t *testing.T, name, token, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var head strings.Builder
	resp.Header.Write(&head)
	o[name] = resp.Status + "\n" + head.String() + "\n" + string(b)
	return resp.StatusCode, string(b)
}

// TestSecretsNeverLeave deploys with a secret in every source liftoff
// takes one from — successful, failing, refused and rolled-back deploys,
// a rejected reload, `liftoff validate` — and then looks for each secret in
// everything liftoff said or wrote: the debug log, every HTTP answer, the
// deploys' errors, the history file. Only the container's environment may
// hold them (which this test checks too, to prove it reached them).
func TestSecretsNeverLeave(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, dir := startSecretsDaemon(t)
	app := d.prefix + "-app"
	out := secretsOutputs{}
	hook := "/hooks/dockerhub/" + secretsToken
	var results []deploy.Result
	deliver := func(name, tag string) deploy.Result {
		t.Helper()
		status, body := out.request(t, "hook "+name, http.MethodPost, d.base+hook, testenv.DockerHubPayload(d.repo, tag))
		if status != http.StatusAccepted || !strings.Contains(body, `"accepted":1,`) {
			t.Fatalf("%s: %d %s", name, status, body)
		}
		r := d.next()
		results = append(results, r)
		return r
	}

	// 1. Succeeds: pulled with the password from the mirror that wants it.
	d.push("latest", "v1")
	if r := deliver("success", "latest"); r.Outcome != deploy.Succeeded {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	env := d.serving(app, "v1")
	for k, want := range map[string]string{"FROM_VAR": secretsVar, "ENVFILE_SECRET": secretsEnvFile, "SECRET_KEY": secretsSecretFile} {
		if env[k] != want {
			t.Errorf("container env %s = %q, want the marker", k, env[k])
		}
	}
	for k, v := range env {
		for _, m := range []string{secretsToken, secretsPassword} {
			if strings.Contains(v, m) {
				t.Errorf("container env %s holds %q, which is not the app's", k, m)
			}
		}
	}

	// 2. Refused by policy.
	d.push("latest", "v2", "DEBUG=True")
	if r := deliver("refused", "latest"); r.Outcome != deploy.Refused {
		t.Fatalf("v2: %s %v", r.Outcome, r.Err)
	}
	// 3. Rolled back: the new container exits at once.
	d.push("latest", "v3", "TESTAPP_EXIT=3")
	if r := deliver("rolled back", "latest"); r.Outcome != deploy.RolledBack {
		t.Fatalf("v3: %s %v", r.Outcome, r.Err)
	}
	d.serving(app, "v1")
	// 4. Fails: a tag the registry does not have.
	if r := deliver("missing tag", "1.0.0"); r.Outcome != deploy.Failed {
		t.Fatalf("missing tag: %s %v", r.Outcome, r.Err)
	}
	// 5. Fails: the password file now holds a wrong password (read at
	// each pull).
	d.push("latest", "v4")
	if err := os.WriteFile(filepath.Join(dir, "registry-password"), []byte(secretsWrongPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := deliver("wrong password", "latest"); r.Outcome != deploy.Failed {
		t.Fatalf("wrong password: %s %v", r.Outcome, r.Err)
	}
	if err := os.WriteFile(filepath.Join(dir, "registry-password"), []byte(secretsPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.serving(app, "v1")

	// Bad deliveries.
	out.request(t, "hook wrong token", http.MethodPost, d.base+"/hooks/dockerhub/"+strings.ToUpper(secretsToken), testenv.DockerHubPayload(d.repo, "latest"))
	out.request(t, "hook bad tag", http.MethodPost, d.base+hook, testenv.DockerHubPayload(d.repo, "-bad"))
	out.request(t, "hook bad json", http.MethodPost, d.base+hook, `{"push_data": {"tag": "`+secretsToken)
	out.request(t, "hook GET", http.MethodGet, d.base+hook, "")
	out.request(t, "hook with query", http.MethodPost, d.base+hook+"/?token="+secretsToken, testenv.DockerHubPayload(d.repo, "nomatch"))
	// The read-only endpoints.
	for _, p := range []string{"/metrics", "/readyz", "/healthz", "/", "/api/v1/deployments"} {
		out.request(t, "GET "+p, http.MethodGet, d.base+p, "")
	}
	// The API, with its token, a near miss, and the token where it does
	// not belong (the query, the body, the path).
	api := d.base + "/api/v1"
	for _, p := range []string{"/deployments", "/deployments/" + app, "/deploys", "/deliveries"} {
		out.requestAs(t, "API GET "+p, secretsAPIToken, http.MethodGet, api+p, "")
	}
	if status, body := out.requestAs(t, "API deploy", secretsAPIToken, http.MethodPost, api+"/deployments/"+app+"/deploy", `{"tag": "latest"}`); status != http.StatusAccepted {
		t.Fatalf("API deploy: %d %s", status, body)
	}
	results = append(results, d.next())
	out.requestAs(t, "API pause", secretsAPIToken, http.MethodPost, api+"/deployments/"+app+"/pause", "")
	out.requestAs(t, "API resume", secretsAPIToken, http.MethodPost, api+"/deployments/"+app+"/resume", "")
	near := secretsAPIToken[:len(secretsAPIToken)-1] + "x"
	if status, _ := out.requestAs(t, "API near-miss token", near, http.MethodGet, api+"/deployments", ""); status != http.StatusUnauthorized {
		t.Errorf("API with a near-miss token: %d", status)
	}
	out.requestAs(t, "API token in the query", "", http.MethodGet, api+"/deployments?token="+secretsAPIToken, "")
	out.requestAs(t, "API token in the body", secretsAPIToken, http.MethodPost, api+"/deployments/"+app+"/deploy", `{"tag": "x", "token": "`+secretsAPIToken+`"}`)
	out.requestAs(t, "API token in the path", secretsAPIToken, http.MethodGet, api+"/deployments/"+secretsAPIToken, "")

	// A reload the new file breaks: an env file with bad lines, a ${VAR}
	// whose value is invalid where it is used.
	badEnv := "ENVFILE_SECRET=" + secretsEnvFile + "\nBAD " + secretsBadLine + "\nKEY WITH SPACE=" + secretsBadLine + "\n=" + secretsBadLine + "\n"
	if err := os.WriteFile(filepath.Join(dir, "production.env"), []byte(badEnv), 0o600); err != nil {
		t.Fatal(err)
	}
	secretsWriteConfig(t, d, dir, "    container: {name: \"${LIFTOFF_E2E_BAD_NAME}\"}\n")
	if status, body := out.request(t, "reload rejected", http.MethodPost, d.base+"/-/reload", ""); status != http.StatusBadRequest ||
		!strings.Contains(body, "production.env: line 2") || !strings.Contains(body, "container.name") {
		t.Errorf("reload of a broken file: %d %s", status, body)
	}
	// `liftoff validate` of the broken file says what is wrong, not what
	// the values are.
	var vout, verr bytes.Buffer
	code := run(context.Background(), []string{"validate", "--config", filepath.Join(dir, "liftoff.yaml")}, &vout, &verr, d.lookup)
	out["validate broken: stdout"], out["validate broken: stderr"] = vout.String(), verr.String()
	if code != exitUsage || !strings.Contains(verr.String(), "line 2") || !strings.Contains(verr.String(), "line 3") {
		t.Errorf("validate of a broken file: exit %d\n%s%s", code, vout.String(), verr.String())
	}
	// Restored, the reload goes through, and validate passes.
	if err := os.WriteFile(filepath.Join(dir, "production.env"), []byte("ENVFILE_SECRET="+secretsEnvFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secretsWriteConfig(t, d, dir, "")
	if status, body := out.request(t, "reload", http.MethodPost, d.base+"/-/reload", ""); status != http.StatusOK {
		t.Errorf("reload: %d %s", status, body)
	}
	vout.Reset()
	verr.Reset()
	code = run(context.Background(), []string{"validate", "--config", filepath.Join(dir, "liftoff.yaml")}, &vout, &verr, d.lookup)
	out["validate: stdout"], out["validate: stderr"] = vout.String(), verr.String()
	if code != exitOK {
		t.Errorf("validate: exit %d\n%s%s", code, vout.String(), verr.String())
	}

	for i, r := range results {
		if r.Err != nil {
			out[fmt.Sprintf("deploy %d (%s) error", i+1, r.Outcome)] = r.Err.Error()
		}
		out[fmt.Sprintf("deploy %d result", i+1)] = fmt.Sprintf("%+v", r)
	}

	// The history, while liftoff runs (WAL) and once it has stopped.
	readHistory := func(when string) {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			b, err := os.ReadFile(filepath.Join(dir, "liftoff.db"+suffix))
			if err == nil {
				out["history "+when+" liftoff.db"+suffix] = string(b)
			}
		}
	}
	readHistory("running")
	if err := d.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	readHistory("stopped")
	if !strings.Contains(out["history stopped liftoff.db"], app) {
		t.Error("the history file does not hold the deploys: the search below would prove nothing")
	}
	out["log"] = d.logs.String()
	// The notifications were sent, and failed, with their URLs in hand.
	d.logEntry("notification failed", map[string]string{"receiver": "team", "error": "answered 500"})
	if !strings.Contains(out["log"], `"receiver":"audit","event":"succeeded"`) {
		t.Error("no notification to audit in the log")
	}
	if !strings.Contains(out["log"], `"level":"debug"`) {
		t.Error("no debug lines in the log")
	}

	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		text := asciiLower(out[name])
		for _, m := range allSecrets {
			if i := strings.Index(text, asciiLower(m)); i >= 0 {
				t.Errorf("secret %q leaked into %s: …%s…", m, name, out[name][max(0, i-120):min(len(text), i+len(m)+40)])
			}
		}
	}
	if testing.Verbose() {
		t.Logf("searched %d outputs: %s", len(names), strings.Join(names, ", "))
	}
}

// asciiLower lowercases ASCII letters only, byte for byte, so that indexes
// into the result are indexes into s (the history file is binary).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
