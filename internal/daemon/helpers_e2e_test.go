package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// webConfig is one staging deployment, NAME-web, of acme/NAME:staging;
// HEALTH, CONTAINER and EXTRA are replaced by the tests (see webYAML).
// The format verbs are those of e2eConfig.
const webConfig = configHead + `environments:
  staging:
    env: {STAGE: staging}
deployments:
  - name: %[1]s-web
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    EXTRA
    container:
      CONTAINER
    health: HEALTH
`

// webYAML fills webConfig: health is a YAML flow mapping, container and
// extra are lines indented like the deployment's keys (or "").
func webYAML(health, container, extra string) string {
	if container == "" {
		container = "labels: {}"
	}
	r := strings.NewReplacer("HEALTH", health, "CONTAINER", container, "EXTRA", extra)
	return r.Replace(webConfig)
}

// syncBuffer is kept for crash_test.go, which predates testenv.SyncBuffer.
type syncBuffer = testenv.SyncBuffer

// daemonOptions are what startDaemonWith adds to startDaemon.
type daemonOptions struct {
	// BeforeStep runs before each journaled deploy step; blocking in it
	// holds the deploy there.
	BeforeStep func(deployment, step string)
}

// startDaemonWith is startDaemon with hooks into the engine.
func startDaemonWith(t *testing.T, config string, o daemonOptions) *daemon {
	t.Helper()
	eng := testenv.Engine(t)
	d := &daemon{t: t, eng: eng, reg: eng.Registry(t), results: make(chan deploy.Result, 64), logs: &testenv.SyncBuffer{}}
	d.prefix = eng.UniqueName(t, "e2e")
	d.repo = "acme/" + d.prefix
	path := filepath.Join(t.TempDir(), "liftoff.yaml")
	noEnv := func(string) (string, bool) { return "", false }
	writeDaemonConfig(t, d, path, config)
	d.launch(path, noEnv, liftoff.Options{BeforeStep: o.BeforeStep})
	return d
}

// writeDaemonConfig writes config, formatted as startDaemon formats it, to
// path; the secret file and the history live beside it.
func writeDaemonConfig(t *testing.T, d *daemon, path, config string) {
	t.Helper()
	dir := filepath.Dir(path)
	secret := filepath.Join(dir, "secret_key")
	if err := os.WriteFile(secret, []byte(secretMarker+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(config, d.prefix, d.reg.Host(), hookToken, secret) +
		fmt.Sprintf("history: %s\n", filepath.Join(dir, "liftoff.db"))
	// Write and rename, so that a reload never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// rewrite replaces the daemon's config file (not the running config).
func (d *daemon) rewrite(config string) {
	d.t.Helper()
	writeDaemonConfig(d.t, d, d.configPath, config)
}

// pushImage pushes a test image under tag of the daemon's repository.
func (d *daemon) pushImage(tag string, img testenv.AppImage) string {
	d.t.Helper()
	return d.reg.Push(d.t, d.repo, tag, img)
}

// deploy delivers a DockerHub push of tag, which must be accepted, and
// waits for the deploy it caused.
func (d *daemon) deploy(tag string) deploy.Result {
	d.t.Helper()
	if status, ans := d.hook(tag); status != 202 || ans.Accepted != 1 {
		d.t.Fatalf("push of %s: %d %+v", tag, status, ans)
	}
	return d.next()
}

// deployOK is deploy, which must succeed.
func (d *daemon) deployOK(tag string) deploy.Result {
	d.t.Helper()
	r := d.deploy(tag)
	if r.Outcome != deploy.Succeeded {
		d.t.Fatalf("deploy of %s: %s %v", tag, r.Outcome, r.Err)
	}
	return r
}

// only asserts that container is the one container, running or not, whose
// name starts with the daemon's prefix, and that it runs: no .liftoff-prev
// or .liftoff-next is left over.
func (d *daemon) only(container string) {
	d.t.Helper()
	if got := d.eng.Containers(d.t, d.prefix); !slices.Equal(got, []string{container + " running"}) {
		d.t.Errorf("containers %v, want exactly [%s running]", got, container)
	}
}

// hasMetric asserts that /metrics has the line (a whole sample).
func (d *daemon) hasMetric(line string) {
	d.t.Helper()
	for _, l := range strings.Split(d.get("/metrics"), "\n") {
		if l == line {
			return
		}
	}
	d.t.Errorf("/metrics lacks %s", line)
}

// logEntry finds the first log line with that message whose fields include
// want (string values; "error" matches by substring) and returns it; the
// test fails if there is none.
func (d *daemon) logEntry(message string, want map[string]string) map[string]any {
	d.t.Helper()
	sc := bufio.NewScanner(strings.NewReader(d.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) != nil || e["message"] != message {
			continue
		}
		for k, v := range want {
			got, _ := e[k].(string)
			if k == "error" && !strings.Contains(got, v) || k != "error" && got != v {
				continue next
			}
		}
		return e
	}
	d.t.Errorf("no log line %q with %v", message, want)
	return nil
}
