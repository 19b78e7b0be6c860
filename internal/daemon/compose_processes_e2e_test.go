package daemon_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// composeAppFile is a web and a worker service of one image, as an app's
// processes: {{APP}}, {{NET}} and {{DATA}} are the test's names.
const composeAppFile = `
services:
  web:
    image: acme/{{APP}}:staging
    command: [web]
    environment: {ROLE: web, TESTAPP_MARKER_FILE: /data/release.log}
    volumes: ["{{DATA}}:/data"]
    networks: [back]
    labels: {tier: web}
  worker:
    image: acme/{{APP}}:staging
    command: [worker]
    environment: {ROLE: worker, TESTAPP_MARKER_FILE: /data/release.log}
    volumes: ["{{DATA}}:/data"]
    networks: [back]
    stop_grace_period: 1s
networks:
  back: {name: {{NET}}, external: true}
`

// composeAppConfig is the app NAME-app of the services of FILE, in
// project PROJECT, with one release.
const composeAppConfig = configHead + `environments:
  staging:
    env: {STAGE: staging}
    forbid: {ROLE: [evil]}
deployments:
  - name: %[1]s-app
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    release: {command: [release]}
    health: {min_uptime: 300ms}
    compose: {file: FILE, project: PROJECT}
    processes:
      web: {service: web}
      worker: {service: worker, scale: 2}
`

// TestComposeServicesAsProcesses: the web and worker services of one
// compose file deploy as one app: one push, one release, every container
// on the new digest with its own service's command, environment and
// labels (Compose's, per replica), and docker-compose ps in the project
// shows them all. A process whose service's environment breaks the
// policy refuses the deploy, naming it, before the release runs.
func TestComposeServicesAsProcesses(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	compose := composeCLI(t)
	eng := testenv.Engine(t)
	net, project := eng.UniqueName(t, "back"), eng.UniqueName(t, "proj")
	eng.Network(t, net)

	d := startDaemon(t, webYAML("{min_uptime: 500ms}", "", ""))
	dir := filepath.Join(t.TempDir(), "shop")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o777); err != nil { // the containers write as root
		t.Fatal(err)
	}
	file := filepath.Join(dir, "docker-compose.yml")
	text := strings.NewReplacer("{{APP}}", d.prefix, "{{NET}}", net, "{{DATA}}", data).Replace(composeAppFile)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d.rewrite(strings.NewReplacer("FILE", file, "PROJECT", project).Replace(composeAppConfig))
	if status, msg := d.reload(); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, msg)
	}

	app := d.prefix + "-app"
	containers := []string{app + "-web-1", app + "-worker-1", app + "-worker-2"}
	for i, version := range []string{"v1", "v2"} {
		d.push("staging", version)
		r := d.deployOK("staging")
		if m := markers(t, data, "release.log"); len(m) != i+1 || !strings.HasPrefix(m[i], "release "+version+" ") {
			t.Fatalf("release markers after %s: %q, want one per push", version, m)
		}
		var want []string
		for _, c := range containers {
			want = append(want, c+" running")
		}
		if got := d.eng.Containers(t, d.prefix); !slices.Equal(got, want) {
			t.Fatalf("containers after %s: %v, want %v", version, got, want)
		}
		for _, c := range containers {
			service, number, _ := strings.Cut(strings.TrimPrefix(c, app+"-"), "-")
			env := d.serving(c, version)
			if env["ROLE"] != service || env["STAGE"] != "staging" {
				t.Errorf("%s's environment ROLE=%q STAGE=%q: want its service's, with the app's layers", c, env["ROLE"], env["STAGE"])
			}
			in := d.eng.Inspect(t, c)
			l := in.Config.Labels
			if l["liftoff.digest"] != r.Digest || l[deployments.ComposeServiceLabel] != service ||
				l[deployments.ComposeNumberLabel] != number || l[deployments.ComposeProjectLabel] != project {
				t.Errorf("%s's labels %v: want digest %s, service %s, number %s, project %s", c, l, r.Digest, service, number, project)
			}
			if (l["tier"] == "web") != (service == "web") {
				t.Errorf("%s's labels %v: tier=web belongs to the web service only", c, l)
			}
			if !slices.Equal(in.Config.Cmd, []string{service}) {
				t.Errorf("%s runs %v, want its service's command", c, in.Config.Cmd)
			}
		}
	}

	// The worker's service now breaks the policy: the file is read again
	// at the deploy, which is refused before the release; v2 runs on.
	if err := os.WriteFile(file, []byte(strings.Replace(text, "ROLE: worker", "ROLE: evil", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.push("staging", "v3")
	if r := d.deploy("staging"); r.Outcome != deploy.Refused || r.Err == nil || !strings.Contains(r.Err.Error(), "process worker (service worker)") {
		t.Fatalf("v3 with a forbidden ROLE in the worker's service: %s %v, want refused naming the process", r.Outcome, r.Err)
	}
	if m := markers(t, data, "release.log"); len(m) != 2 {
		t.Errorf("release markers after the refused v3: %q, want v1's and v2's only", m)
	}
	for _, c := range containers {
		d.serving(c, "v2")
	}

	cmd := exec.Command(compose[0], append(compose[1:], "-f", file, "-p", project, "ps")...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s ps: %v\n%s", strings.Join(compose, " "), err, out)
	}
	for _, c := range containers {
		if !strings.Contains(string(out), c) {
			t.Errorf("compose ps does not show %s:\n%s", c, out)
		}
	}
}
