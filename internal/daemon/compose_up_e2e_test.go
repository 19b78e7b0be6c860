package daemon_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// composeUpFile has web, which liftoff runs and keeps out of a plain
// `docker compose up` with a profile, and sidecar, which Compose runs.
const composeUpFile = `
services:
  web:
    image: acme/{{APP}}:staging
    profiles: [liftoff]
    networks: [back]
  sidecar:
    image: acme/{{APP}}:staging
    networks: [back]
networks:
  back: {name: {{NET}}, external: true}
`

const composeUpConfig = configHead + `deployments:
  - name: %[1]s-web
    tags: [staging]
    stop_timeout: 1s
    health: {min_uptime: 500ms}
    compose: {file: FILE, service: web, project: PROJECT}
`

// composeCLI returns the command that runs Docker Compose on this machine:
// docker-compose (1.x, or 2.x installed standalone) or the docker compose
// plugin.
func composeCLI(t *testing.T) []string {
	t.Helper()
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if os.Getenv("LIFTOFF_REQUIRE_DOCKER") == "1" {
		t.Fatal("no docker-compose on PATH nor docker compose plugin: .ci/run installs it (Debian: apt install docker-compose)")
	}
	t.Skip("SKIPPED: no docker-compose nor docker compose plugin; what Compose shows of liftoff's containers is not checked")
	return nil
}

// TestComposeSeesLiftoffsContainers: `docker compose ps` in the project
// shows the container liftoff runs; `docker compose up -d` by hand leaves
// it alone when the service has a profile no one activates (the README's
// advice); `docker compose up -d web`, naming it, makes Compose replace it
// with its own container of the tag, and liftoff's next deploy takes the
// service back.
func TestComposeSeesLiftoffsContainers(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	compose := composeCLI(t)
	// Registered before the engines, so run after their sweeps have
	// removed the containers: what Compose made besides containers.
	var (
		eng     *testenv.Eng
		project string
		tag     string
	)
	t.Cleanup(func() {
		if eng == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cli := eng.Client()
		if _, err := cli.NetworkRemove(ctx, project+"_default", client.NetworkRemoveOptions{}); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("remove Compose's network: %v", err)
		}
		if tag != "" {
			if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{}); err != nil && !strings.Contains(err.Error(), "No such image") {
				t.Errorf("remove tag %s: %v", tag, err)
			}
		}
	})
	eng = testenv.Engine(t)
	net := eng.UniqueName(t, "back")
	project = eng.UniqueName(t, "proj")
	eng.Network(t, net)

	d := startDaemon(t, webYAML("{min_uptime: 500ms}", "", ""))
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "docker-compose.yml")
	text := strings.NewReplacer("{{APP}}", d.prefix, "{{NET}}", net).Replace(composeUpFile)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d.rewrite(strings.NewReplacer("FILE", file, "PROJECT", project).Replace(composeUpConfig))
	if status, msg := d.reload(); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, msg)
	}
	web := d.prefix + "-web"
	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	id := d.eng.ContainerID(t, web)

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(compose[0], append(append(compose[1:], "-f", file, "-p", project), args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", strings.Join(compose, " "), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("ps"); !strings.Contains(out, web) {
		t.Errorf("compose ps does not show liftoff's %s:\n%s", web, out)
	}

	// The image under the tag the file names, as a compose user has it.
	tag = "acme/" + d.prefix + ":staging"
	if out, err := exec.Command("docker", "tag", d.eng.Inspect(t, web).Config.Image, tag).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v\n%s", err, out)
	}

	// A plain up: the profile keeps web out, liftoff's container runs on.
	run("up", "-d", "--no-build")
	if now := d.eng.ContainerID(t, web); now != id || !d.eng.Inspect(t, id).State.Running {
		t.Errorf("docker compose up touched liftoff's container: %s → %s", id, now)
	}
	if out := run("ps"); !strings.Contains(out, web) || !strings.Contains(out, "sidecar") {
		t.Errorf("compose ps after up:\n%s", out)
	}

	// Naming web: Compose replaces liftoff's container by one of its own.
	run("up", "-d", "--no-build", "web")
	if now := d.eng.ContainerID(t, web); now == id {
		t.Errorf("docker compose up web kept liftoff's container %s", id)
	}

	// liftoff's next deploy runs the service again, as its own.
	d.pushImage("staging", testenv.AppImage{Version: "v2"})
	if r := d.deploy("staging"); r.Outcome != deploy.Succeeded {
		t.Fatalf("deploy after compose up web: %s %v", r.Outcome, r.Err)
	}
	d.serving(web, "v2")
	// Compose's own container of web runs on beside it: two of the
	// service, as the README says, until `docker compose rm -sf web`.
	var composeWeb []string
	for _, c := range d.eng.Containers(t, project) {
		if strings.Contains(c, "web") {
			composeWeb = append(composeWeb, c)
		}
	}
	if len(composeWeb) != 1 || !strings.HasSuffix(composeWeb[0], " running") {
		t.Errorf("Compose's containers of web: %v, want one running", composeWeb)
	}
	if out := run("ps"); !strings.Contains(out, web) {
		t.Errorf("compose ps does not show liftoff's %s:\n%s", web, out)
	}
}
