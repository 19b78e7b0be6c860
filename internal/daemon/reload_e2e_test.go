package daemon_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// greetingConfig is webConfig whose deployment sets GREETING=<greeting>.
func greetingConfig(greeting string) string {
	return webYAML("{min_uptime: 500ms}", "", "env: {GREETING: "+greeting+"}")
}

// reload asks the daemon to reload over HTTP, as an operator on the host
// would, and returns the status and the error it gave.
func (d *daemon) reload() (int, string) {
	d.t.Helper()
	status, ans := d.post("/-/reload", "")
	return status, ans.Error
}

// greeting deploys version under the staging tag and returns the GREETING
// the new container got.
func (d *daemon) greeting(version string) string {
	d.t.Helper()
	d.pushImage("staging", testenv.AppImage{Version: version})
	d.deployOK("staging")
	return d.serving(d.prefix+"-web", version)["GREETING"]
}

func TestReload(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, greetingConfig("hello"))
	name := d.prefix + "-web"
	if g := d.greeting("v1"); g != "hello" {
		t.Fatalf("GREETING = %q, want hello", g)
	}
	running := d.eng.ContainerID(t, name)

	// POST /-/reload: the next deploy gets the new value; what runs is
	// not touched by the reload itself.
	d.rewrite(greetingConfig("bonjour"))
	if status, msg := d.reload(); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, msg)
	}
	d.hasMetric("liftoff_config_last_reload_successful 1")
	d.logEntry("configuration reloaded", map[string]string{"config": d.configPath})
	if id := d.eng.ContainerID(t, name); id != running {
		t.Errorf("the reload replaced the container: %s → %s", running, id)
	}
	if g := d.greeting("v2"); g != "bonjour" {
		t.Errorf("after the reload GREETING = %q, want bonjour", g)
	}

	// SIGHUP runs the same Reload.
	d.rewrite(greetingConfig("hola"))
	if err := d.app.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if g := d.greeting("v3"); g != "hola" {
		t.Errorf("after SIGHUP GREETING = %q, want hola", g)
	}

	// An invalid file: 400 with the reason, the running config stays.
	d.rewrite(greetingConfig("ciao") + "bogus_key: 1\n")
	status, msg := d.reload()
	if status != http.StatusBadRequest || !strings.Contains(msg, "bogus_key") {
		t.Errorf("invalid reload: %d %q, want 400 naming bogus_key", status, msg)
	}
	d.hasMetric("liftoff_config_last_reload_successful 0")
	d.logEntry("reload failed; keeping the running configuration", map[string]string{"error": "bogus_key"})
	if err := d.app.Reload(); err == nil || !strings.Contains(err.Error(), "bogus_key") {
		t.Errorf("Reload of an invalid file: %v", err)
	}
	if g := d.greeting("v4"); g != "hola" {
		t.Errorf("after a failed reload GREETING = %q, want the old hola", g)
	}

	// Valid again: the gauge recovers.
	d.rewrite(greetingConfig("ciao"))
	if status, msg := d.reload(); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, msg)
	}
	d.hasMetric("liftoff_config_last_reload_successful 1")
	d.only(name)
}

// TestReloadDuringDeploy holds a deploy before its pull, reloads, and lets
// it go on: it finishes with the config it started with; the next deploy
// uses the new one.
func TestReloadDuringDeploy(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	var armed atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	d := startDaemonWith(t, greetingConfig("hello"), daemonOptions{
		BeforeStep: func(_, step string) {
			if step == deploy.StepPull && armed.CompareAndSwap(true, false) {
				close(held)
				<-release
			}
		},
	})
	// Registered after the daemon: runs before its stop, which waits for
	// the held deploy.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	if g := d.greeting("v1"); g != "hello" {
		t.Fatalf("GREETING = %q, want hello", g)
	}

	armed.Store(true)
	d.pushImage("staging", testenv.AppImage{Version: "v2"})
	if status, ans := d.hook("staging"); status != http.StatusAccepted || ans.Accepted != 1 {
		t.Fatalf("push: %d %+v", status, ans)
	}
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("the deploy did not reach its pull")
	}
	d.rewrite(greetingConfig("bonjour"))
	if status, msg := d.reload(); status != http.StatusOK {
		t.Fatalf("reload during the deploy: %d %s", status, msg)
	}
	once.Do(func() { close(release) })
	if r := d.next(); r.Outcome != deploy.Succeeded {
		t.Fatalf("deploy in flight: %s %v", r.Outcome, r.Err)
	}
	if g := d.serving(d.prefix+"-web", "v2")["GREETING"]; g != "hello" {
		t.Errorf("the deploy in flight got GREETING=%q, want hello, from the config it started with", g)
	}
	if g := d.greeting("v3"); g != "bonjour" {
		t.Errorf("the next deploy got GREETING=%q, want bonjour", g)
	}
	d.only(d.prefix + "-web")
}

// apiDeployment follows webConfig: NAME-api, of the same repository's api
// tag.
const apiDeployment = `  - name: %[1]s-api
    image: acme/%[1]s
    tags: [api]
    environment: staging
    health: {min_uptime: 500ms}
`

// TestReloadLeavesRemovedDeploymentRunning: a deployment taken out of the
// config is no longer deployed, but its container keeps running.
func TestReloadLeavesRemovedDeploymentRunning(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	both := webYAML("{min_uptime: 500ms}", "", "")
	d := startDaemon(t, both+apiDeployment)
	web, api := d.prefix+"-web", d.prefix+"-api"
	d.pushImage("staging", testenv.AppImage{Version: "web-v1"})
	d.deployOK("staging")
	d.pushImage("api", testenv.AppImage{Version: "api-v1"})
	d.deployOK("api")
	apiID, apiStarted := d.eng.ContainerID(t, api), d.eng.StartedAt(t, api)

	d.rewrite(both)
	if status, msg := d.reload(); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, msg)
	}
	// The api tag now matches nothing; web still deploys.
	d.pushImage("api", testenv.AppImage{Version: "api-v2"})
	if status, ans := d.hook("api"); status != http.StatusAccepted || ans.Accepted != 0 {
		t.Errorf("push for the removed deployment: %d %+v, want nothing accepted", status, ans)
	}
	d.pushImage("staging", testenv.AppImage{Version: "web-v2"})
	if r := d.deploy("staging"); r.Outcome != deploy.Succeeded || r.Request.Deployment != web {
		t.Fatalf("web after the reload: %s %s %v", r.Request.Deployment, r.Outcome, r.Err)
	}
	d.quiet()

	d.serving(web, "web-v2")
	d.serving(api, "api-v1")
	if id, started := d.eng.ContainerID(t, api), d.eng.StartedAt(t, api); id != apiID || started != apiStarted {
		t.Errorf("the removed deployment's container was touched: %s (started %s), was %s (started %s)", id, started, apiID, apiStarted)
	}
	if got := d.eng.RunningContainers(t, d.prefix); strings.Join(got, " ") != fmt.Sprintf("%s %s", api, web) {
		t.Errorf("running %v, want exactly %s and %s", got, api, web)
	}
}
