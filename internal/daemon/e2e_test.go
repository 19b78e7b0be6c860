package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

const hookToken = "e2e-token-0123456789abcdef0123456789"

// daemon is liftoff started in-process on 127.0.0.1:0 against the real
// Docker engine, with DockerHub's registry mirrored by a test registry.
type daemon struct {
	t       *testing.T
	eng     *testenv.Eng
	reg     *testenv.Reg
	app     *liftoff.Daemon
	base    string // http://127.0.0.1:PORT
	prefix  string // unique per test: names of its deployments and containers
	repo    string // acme/<prefix>, as DockerHub names it
	results chan deploy.Result
	logs    *testenv.SyncBuffer
	stop    func() error
	// configPath and lookup are the config file and the environment
	// the daemon was launched with.
	configPath string
	lookup     func(string) (string, bool)
}

// configHead starts the config of every daemon of these tests: liftoff on
// a free port, the DockerHub hook with the hook token (%[3]s), Docker Hub
// mirrored by the test registry (%[2]s).
const configHead = `
listen: 127.0.0.1:0
hooks:
  - source: dockerhub
    token: %[3]s
registries:
  docker.io:
    mirror: %[2]s
`

// e2eConfig is a staging + production web app; %[1]s is the unique prefix,
// %[2]s the mirror, %[3]s the hook token, %[4]s the secret key file.
const e2eConfig = configHead + `environments:
  staging:
    env:
      DJANGO_SETTINGS_MODULE: dblood.settings.staging
      DEBUG: "True"
      STATIC_URL: /staging/api/static/
  production:
    env:
      DJANGO_SETTINGS_MODULE: dblood.settings.production
      DEBUG: "False"
      STATIC_URL: /api/static/
deployments:
  - name: %[1]s-staging
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    env: {SENTRY_ENV: staging}
    health: {min_uptime: 500ms}
  - name: %[1]s-prod
    image: docker.io/acme/%[1]s
    tags: [latest, "semver:^1"]
    environment: production
    secret_files: {SECRET_KEY: %[4]s}
    health: {min_uptime: 500ms}
`

func startDaemon(t *testing.T, config string) *daemon {
	t.Helper()
	return startDaemonWith(t, config, daemonOptions{})
}

// launch loads the config at path and runs liftoff on it in-process until
// the test ends (or d.stop), with results and logs going to d.
func (d *daemon) launch(path string, lookup func(string) (string, bool), opts liftoff.Options) {
	t := d.t
	t.Helper()
	cfg, err := deployments.Load(path, lookup)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	opts.Logger = zerolog.New(d.logs).Level(zerolog.DebugLevel)
	opts.ConfigPath, opts.Lookup = path, lookup
	d.configPath, d.lookup = path, lookup
	opts.OnDeploy = func(r deploy.Result) { d.results <- r }
	if d.app, err = liftoff.New(cfg, opts); err != nil {
		t.Fatalf("start: %v", err)
	}
	d.base = "http://" + d.app.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.app.Run(ctx) }()
	var once sync.Once
	var runErr error
	d.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("liftoff stopped with an error: %v", err)
		}
		if t.Failed() {
			t.Logf("liftoff's log:\n%s", d.logs.String())
		}
	})
}

// secretMarker is the content of a secret file; it must never leave the
// container's environment.
const secretMarker = "s3cr3t-marker-7c1d9e"

func (d *daemon) push(tag, version string, env ...string) string {
	d.t.Helper()
	return d.reg.Push(d.t, d.repo, tag, testenv.AppImage{Version: version, Env: env})
}

// hook delivers a DockerHub push of tag and returns the status and answer.
func (d *daemon) hook(tag string) (int, hookAnswer) {
	d.t.Helper()
	return d.post("/hooks/dockerhub/"+hookToken, testenv.DockerHubPayload(d.repo, tag))
}

// hookAnswer is a hook's answer: a 202's counts (apiv1.HookAnswer), or
// an error's reason.
type hookAnswer struct {
	Delivery string `json:"delivery"`
	Accepted int    `json:"accepted"`
	Pending  int    `json:"pending"`
	Held     int    `json:"held"`
	Ignored  int    `json:"ignored"`
	Error    string `json:"error"`
	// Redelivery is true on the 200 to a sender's delivery id seen before.
	Redelivery bool `json:"redelivery"`
}

func (d *daemon) post(path, body string) (int, hookAnswer) {
	d.t.Helper()
	resp, err := http.Post(d.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		d.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var a hookAnswer
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &a); err != nil {
			d.t.Fatalf("answer %q: %v", raw, err)
		}
	}
	return resp.StatusCode, a
}

// next waits for the next deploy to finish.
func (d *daemon) next() deploy.Result {
	d.t.Helper()
	select {
	case r := <-d.results:
		return r
	case <-time.After(90 * time.Second):
		d.t.Fatal("no deploy finished within 90s")
		return deploy.Result{}
	}
}

// quiet asserts that no deploy finishes within a short while.
func (d *daemon) quiet() {
	d.t.Helper()
	select {
	case r := <-d.results:
		d.t.Fatalf("unexpected deploy: %s %s %v", r.Request.Deployment, r.Outcome, r.Err)
	case <-time.After(time.Second):
	}
}

func (d *daemon) serving(container, version string) map[string]string {
	d.t.Helper()
	got, env := d.eng.AppGet(d.t, container)
	if got != version {
		d.t.Fatalf("%s serves version %q, want %q", container, got, version)
	}
	return env
}

func TestDockerHubPushDeploysEndToEnd(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, e2eConfig)
	staging, prod := d.prefix+"-staging", d.prefix+"-prod"

	// First deploy of staging.
	d.push("staging", "v1", "DEBUG=baked-in", "IMAGE_ONLY=yes")
	status, ans := d.hook("staging")
	if status != http.StatusAccepted || ans.Accepted != 1 {
		t.Fatalf("staging push: %d %+v", status, ans)
	}
	if r := d.next(); r.Outcome != deploy.Succeeded {
		t.Fatalf("first deploy: %s %v", r.Outcome, r.Err)
	}
	env := d.serving(staging, "v1")
	for k, want := range map[string]string{
		"DJANGO_SETTINGS_MODULE": "dblood.settings.staging", "DEBUG": "True",
		"STATIC_URL": "/staging/api/static/", "SENTRY_ENV": "staging", "IMAGE_ONLY": "yes",
	} {
		if env[k] != want {
			t.Errorf("staging %s = %q, want %q", k, env[k], want)
		}
	}
	if _, ok := env["SECRET_KEY"]; ok {
		t.Error("staging got production's SECRET_KEY")
	}

	// Production, from the latest tag.
	d.push("latest", "v1")
	if status, ans := d.hook("latest"); status != http.StatusAccepted || ans.Accepted != 1 {
		t.Fatalf("latest push: %d %+v", status, ans)
	}
	if r := d.next(); r.Outcome != deploy.Succeeded {
		t.Fatalf("production deploy: %s %v", r.Outcome, r.Err)
	}
	env = d.serving(prod, "v1")
	if env["DJANGO_SETTINGS_MODULE"] != "dblood.settings.production" || env["DEBUG"] != "False" || env["SECRET_KEY"] != secretMarker {
		t.Errorf("production env: settings=%q debug=%q secret set=%v", env["DJANGO_SETTINGS_MODULE"], env["DEBUG"], env["SECRET_KEY"] == secretMarker)
	}
	prodID := d.eng.ContainerID(t, prod)

	// v2 to staging: staging serves v2, production is untouched.
	d.push("staging", "v2")
	d.hook("staging")
	if r := d.next(); r.Outcome != deploy.Succeeded || r.Request.Deployment != staging {
		t.Fatalf("staging v2: %s %s %v", r.Request.Deployment, r.Outcome, r.Err)
	}
	d.serving(staging, "v2")
	d.serving(prod, "v1")
	if id := d.eng.ContainerID(t, prod); id != prodID {
		t.Errorf("production container replaced by a staging push: %s → %s", prodID, id)
	}

	// The same push again: nothing restarts.
	stagingID := d.eng.ContainerID(t, staging)
	d.hook("staging")
	if r := d.next(); r.Outcome != deploy.Unchanged {
		t.Fatalf("repeated push: %s %v", r.Outcome, r.Err)
	}
	if id := d.eng.ContainerID(t, staging); id != stagingID {
		t.Errorf("repeated push replaced the container: %s → %s", stagingID, id)
	}

	// A semver tag goes to production.
	d.push("1.4.2", "v1.4.2")
	if _, ans := d.hook("1.4.2"); ans.Accepted != 1 {
		t.Fatalf("1.4.2 push accepted %v", ans.Accepted)
	}
	if r := d.next(); r.Outcome != deploy.Succeeded {
		t.Fatalf("1.4.2: %s %v", r.Outcome, r.Err)
	}
	d.serving(prod, "v1.4.2")

	// An unmatched tag: accepted by nobody, nothing changes.
	d.push("feature-x", "vx")
	status, ans = d.hook("feature-x")
	if status != http.StatusAccepted || ans.Accepted != 0 || ans.Ignored != 2 {
		t.Fatalf("unmatched tag: %d %+v", status, ans)
	}
	d.quiet()

	// An image that exits at once: the previous container is back and serving.
	d.push("staging", "v3-broken", "TESTAPP_EXIT=3")
	d.hook("staging")
	r := d.next()
	if r.Outcome != deploy.RolledBack || !strings.Contains(r.Err.Error(), "exit code 3") {
		t.Fatalf("broken image: %s %v", r.Outcome, r.Err)
	}
	d.serving(staging, "v2")
	if id := d.eng.ContainerID(t, staging); id != stagingID {
		t.Errorf("after rollback the container is %s, want the previous %s", id, stagingID)
	}
	if got := d.eng.RunningContainers(t, d.prefix); strings.Join(got, " ") != prod+" "+staging {
		t.Errorf("running containers %v, want exactly the two deployments", got)
	}

	// The secret never left the container.
	if strings.Contains(d.logs.String(), secretMarker) {
		t.Error("the secret key's value appears in liftoff's log")
	}
	metrics := d.get("/metrics")
	for _, want := range []string{
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="staging",outcome="rolled_back"} 1`, staging),
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="staging",outcome="succeeded"} 2`, staging),
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="production",outcome="succeeded"} 2`, prod),
		`liftoff_webhooks_total{outcome="accepted",source="dockerhub"} 6`,
		`liftoff_webhooks_total{outcome="ignored",source="dockerhub"} 1`,
		`liftoff_deploys_in_progress 0`,
		`liftoff_build_info{`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, secretMarker) || strings.Contains(metrics, hookToken) {
		t.Error("/metrics shows a secret")
	}
}

func TestBurstOfIdenticalDeliveriesDeploysOnce(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, e2eConfig)
	staging := d.prefix + "-staging"
	d.push("staging", "v1")
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, _ := d.hook("staging"); status != http.StatusAccepted {
				t.Errorf("delivery: %d", status)
			}
		}()
	}
	wg.Wait()
	r := d.next()
	if r.Outcome != deploy.Succeeded {
		t.Fatalf("burst: %s %v", r.Outcome, r.Err)
	}
	id := d.eng.ContainerID(t, staging)
	// A delivery that arrived after the deploy had looked up the tag may
	// run once more; it finds the digest running and restarts nothing.
	for {
		select {
		case r := <-d.results:
			if r.Outcome != deploy.Unchanged {
				t.Fatalf("second deploy from one burst: %s %v", r.Outcome, r.Err)
			}
			continue
		case <-time.After(2 * time.Second):
		}
		break
	}
	if got := d.eng.ContainerID(t, staging); got != id {
		t.Errorf("container replaced again: %s → %s", id, got)
	}
	d.serving(staging, "v1")
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, e2eConfig)
	valid := testenv.DockerHubPayload(d.repo, "staging")
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"wrong token", "/hooks/dockerhub/not-the-token-0123456789abcdef", valid, http.StatusNotFound},
		{"unknown source", "/hooks/nosuch/" + hookToken, valid, http.StatusNotFound},
		{"malformed json", "/hooks/dockerhub/" + hookToken, `{"push_data": {`, http.StatusBadRequest},
		{"invalid tag", "/hooks/dockerhub/" + hookToken, testenv.DockerHubPayload(d.repo, "-bad"), http.StatusBadRequest},
		{"invalid repository", "/hooks/dockerhub/" + hookToken, testenv.DockerHubPayload("Acme/../x", "staging"), http.StatusBadRequest},
		{"too large", "/hooks/dockerhub/" + hookToken, `{"x":"` + strings.Repeat("a", 2<<20) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		status, ans := d.post(tc.path, tc.body)
		if status != tc.status {
			t.Errorf("%s: status %d (%+v), want %d", tc.name, status, ans, tc.status)
		}
	}
	// Unknown image (a repo nobody pushed) for a valid deployment name.
	d.push("unrelated", "v0")
	status, _ := d.post("/hooks/dockerhub/"+hookToken, testenv.DockerHubPayload("acme/nobody-"+d.prefix, "staging"))
	if status != http.StatusAccepted {
		t.Errorf("unknown image: %d", status)
	}
	// A matched tag that the registry does not have fails before anything.
	status, ans := d.hook("staging")
	if status != http.StatusAccepted {
		t.Fatalf("matched push: %d", status)
	}
	if r := d.next(); r.Outcome != deploy.Failed || !errors.Is(r.Err, deploy.ErrNotFound) {
		t.Errorf("tag missing from the registry: %s %v (%v)", r.Outcome, r.Err, ans)
	}
	d.quiet()
	if got := d.eng.RunningContainers(t, d.prefix); len(got) != 0 {
		t.Errorf("containers started by bad input: %v", got)
	}
	if strings.Contains(d.logs.String(), hookToken) {
		t.Error("the hook token appears in the log")
	}
}

func TestGracefulStop(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	// A gate of a few seconds keeps the deploy in flight while liftoff stops.
	// The stop comes once the deploy has begun: a push still waiting in
	// its queue is left in the journal for the next start instead.
	begun := make(chan struct{})
	var once sync.Once
	d := startDaemonWith(t, strings.ReplaceAll(e2eConfig, "min_uptime: 500ms", "min_uptime: 4s"), daemonOptions{
		BeforeStep: func(string, string) { once.Do(func() { close(begun) }) },
	})
	if body := d.get("/healthz"); !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %q", body)
	}
	d.get("/readyz")
	d.push("staging", "v1")
	if status, _ := d.hook("staging"); status != http.StatusAccepted {
		t.Fatalf("hook: %d", status)
	}
	select {
	case <-begun:
	case <-time.After(90 * time.Second):
		t.Fatal("the deploy did not begin within 90s")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- d.stop() }()
	// While the deploy finishes, hooks are refused with 503 so that senders
	// retry, and readiness fails.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, ans := d.hook("staging")
		if status == http.StatusServiceUnavailable {
			break
		}
		if status != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("hook while stopping: %d %+v, want 503", status, ans)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, err := http.Get(d.base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while stopping: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if r := d.next(); r.Outcome != deploy.Succeeded {
		t.Errorf("deploy in flight at stop: %s %v", r.Outcome, r.Err)
	}
	d.serving(d.prefix+"-staging", "v1")
	if _, err := http.Get(d.base + "/healthz"); err == nil {
		t.Error("still serving after stop")
	}
}

func (d *daemon) get(path string) string {
	d.t.Helper()
	resp, err := http.Get(d.base + path)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}
