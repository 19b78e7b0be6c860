package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// appConfig is an app of three processes, NAME-app, of acme/NAME:staging:
// web, worker and beat run the test app with their own command (which it
// ignores, unless the image's TESTAPP_EXIT_ARG names it); the release
// leaves a marker in DATADIR. ORDER is replaced by the tests. The format
// verbs are those of e2eConfig.
const appConfig = configHead + `api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
environments:
  staging:
    env: {STAGE: staging}
deployments:
  - name: %[1]s-app
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    env: {TESTAPP_MARKER_FILE: /data/release.log}
    stop_timeout: 1s
    release: {command: [release]}
    container: {volumes: ["DATADIR:/data"], labels: {team: blood}}
    health: {min_uptime: 300ms}
    ORDER
    processes:
      web: {command: [web]}
      worker: {command: [worker], scale: 2}
      beat: {command: [beat]}
`

// startAppDaemon starts liftoff on appConfig with order (a line, or "") and
// a data directory of its own, which it returns.
func startAppDaemon(t *testing.T, order string, o daemonOptions) (*daemon, string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o777); err != nil { // the containers write as root
		t.Fatal(err)
	}
	config := strings.NewReplacer("DATADIR", data, "ORDER", order).Replace(appConfig)
	return startDaemonWith(t, config, o), data
}

// appContainers are the app's containers, in the default order.
func appContainers(prefix string) []string {
	app := prefix + "-app"
	return []string{app + "-beat-1", app + "-web-1", app + "-worker-1", app + "-worker-2"}
}

// onVersion asserts that exactly the app's containers exist, all running
// the test app of version, with the same environment, and returns their ids
// by name.
func (d *daemon) onVersion(version string) map[string]string {
	d.t.Helper()
	var want []string
	for _, c := range appContainers(d.prefix) {
		want = append(want, c+" running")
	}
	if got := d.eng.Containers(d.t, d.prefix); !slices.Equal(got, want) {
		d.t.Fatalf("containers %v, want %v", got, want)
	}
	ids := map[string]string{}
	for _, c := range appContainers(d.prefix) {
		env := d.serving(c, version)
		if env["STAGE"] != "staging" || env["TESTAPP_MARKER_FILE"] != "/data/release.log" {
			d.t.Errorf("%s's environment %v: want the app's", c, env)
		}
		ids[c] = d.eng.ContainerID(d.t, c)
	}
	return ids
}

// TestAppOfProcesses: one push deploys an app of three processes (four
// containers) with one release; a worker that exits at once in the next
// image rolls back the web, swapped before it, too.
func TestAppOfProcesses(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, data := startAppDaemon(t, "order: [web, worker, beat]", daemonOptions{})
	app := d.prefix + "-app"

	d.push("staging", "v1")
	d.deployOK("staging")
	d.onVersion("v1")
	if m := markers(t, data, "release.log"); len(m) != 1 {
		t.Fatalf("release markers after v1: %q, want one", m)
	}

	d.push("staging", "v2")
	r := d.deployOK("staging")
	v2 := d.onVersion("v2")
	if m := markers(t, data, "release.log"); len(m) != 2 || !strings.HasPrefix(m[1], "release v2 ") {
		t.Fatalf("release markers after v2: %q, want v1's and v2's, once each", m)
	}
	for _, c := range appContainers(d.prefix) {
		l := d.eng.Inspect(t, c).Config.Labels
		proc := strings.Split(strings.TrimPrefix(c, app+"-"), "-")[0]
		if l[deploy.LabelDigest] != r.Digest || l[deploy.LabelApp] != app || l[deploy.LabelProcess] != proc || l["team"] != "blood" {
			t.Errorf("%s's labels %v: want digest %s, app %s, process %s and the app's labels", c, l, r.Digest, app, proc)
		}
	}
	if cmd := d.eng.Inspect(t, app+"-worker-2").Config.Cmd; !slices.Equal(cmd, []string{"worker"}) {
		t.Errorf("worker-2 runs %v, want its process's command", cmd)
	}
	rec := d.deployRecord(app)
	if rec["outcome"] != "succeeded" || rec["digest"] != r.Digest {
		t.Errorf("the app's v2 deploy in the API: %v", rec)
	}

	// v3's worker exits at once: web (swapped first) and worker-1 go back
	// to v2, the very containers that ran it; beat was never touched.
	d.push("staging", "v3", "TESTAPP_EXIT_ARG=worker")
	r = d.deploy("staging")
	if r.Outcome != deploy.RolledBack || r.Err == nil || !strings.Contains(r.Err.Error(), "process worker") ||
		!strings.Contains(r.Err.Error(), app+"-worker-1") {
		t.Fatalf("v3: %s %v, want rolled_back naming the worker", r.Outcome, r.Err)
	}
	if got := d.onVersion("v2"); !maps2Equal(got, v2) {
		t.Errorf("containers after the rollback %v, want v2's %v", got, v2)
	}
	rec = d.deployRecord(app)
	if rec["outcome"] != "rolled_back" || !strings.Contains(rec["error"].(string), "process worker") {
		t.Errorf("the app's v3 deploy in the API: %v", rec)
	}
	web := d.deployRecord(app + "/web.1")
	if web["outcome"] != "rolled_back" || !strings.Contains(web["error"].(string), "another process failed") {
		t.Errorf("the web's v3 swap in the API: %v", web)
	}
	d.noOneOffs()

	// The API and the CLI show the app as one deployment with its
	// processes, each with its container and digest.
	got := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+app, "")
	ps, _ := got["processes"].([]any)
	v2digest := d.eng.Inspect(t, app+"-web-1").Config.Labels[deploy.LabelDigest]
	var names []string
	for _, p := range ps {
		p := p.(map[string]any)
		run, _ := p["running"].(map[string]any)
		if run["digest"] != v2digest || run["state"] != "running" {
			t.Errorf("process %v in the API: want running the v2 digest", p)
		}
		names = append(names, fmt.Sprintf("%v.%v %v", p["process"], p["replica"], run["container"]))
	}
	if want := []string{"web.1 " + app + "-web-1", "worker.1 " + app + "-worker-1", "worker.2 " + app + "-worker-2", "beat.1 " + app + "-beat-1"}; !slices.Equal(names, want) {
		t.Errorf("the API's processes %v, want %v (in swap order)", names, want)
	}
	out := d.liftoffCLI(tokRead, "status", app)
	for _, line := range []string{"web.1", "worker.2", "beat.1"} {
		if out.code != 0 || !strings.Contains(out.stdout, "  "+line) {
			t.Errorf("liftoff status %s lacks a line for %s:\n%s", app, line, out)
		}
	}

	// The same digest again: nothing to do.
	d.push("staging", "v2")
	if r := d.deploy("staging"); r.Outcome != deploy.Unchanged {
		t.Errorf("v2 again: %s %v, want unchanged", r.Outcome, r.Err)
	}

	// One worker fewer: the next deploy removes worker-2 once the others
	// run the new version.
	d.rewrite(strings.NewReplacer("DATADIR", data, "ORDER", "order: [web, worker, beat]", "scale: 2", "scale: 1").Replace(appConfig))
	if status, why := d.reload(); status != 200 {
		t.Fatalf("reload: %d %s", status, why)
	}
	d.push("staging", "v4")
	d.deployOK("staging")
	var want []string
	for _, c := range []string{"beat-1", "web-1", "worker-1"} {
		want = append(want, app+"-"+c+" running")
		d.serving(app+"-"+c, "v4")
	}
	if got := d.eng.Containers(t, d.prefix); !slices.Equal(got, want) {
		t.Errorf("containers after scale 1: %v, want %v", got, want)
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
