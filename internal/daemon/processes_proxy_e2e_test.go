package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// appProxyConfig is an app whose web process has liftoff's front door,
// swapped first so that a failing worker rolls the published web back.
const appProxyConfig = configHead + `environments:
  staging:
    env: {STAGE: staging}
deployments:
  - name: %[1]s-app
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 300ms}
    order: [web, worker]
    processes:
      web:
        command: [web]
        proxy: {listen: "127.0.0.1:0", port: 8000, drain_timeout: 10s}
        health: {url: "http://{upstream}/healthz", timeout: 8s, min_uptime: 300ms}
      worker: {command: [worker]}
`

// TestAppWebBehindFrontDoor: the web process of an app behind liftoff's
// front door is swapped start-first under load without a lost request;
// when a process swapped after it fails, the front door goes back to the
// web's previous container, which served all along; after a restart the
// front door serves the web again without a deploy.
func TestAppWebBehindFrontDoor(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemonWith(t, appProxyConfig, daemonOptions{})
	app := d.prefix + "-app"
	web := app + "/web.1"

	d.push("staging", "v1")
	d.deployOK("staging")
	addr := d.app.ProxyAddr(web)
	if addr == nil {
		t.Fatalf("no front door for %s", web)
	}
	version := func() string {
		t.Helper()
		resp, err := http.Get("http://" + addr.String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a struct{ Version string }
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		return a.Version
	}
	if v := version(); v != "v1" {
		t.Fatalf("the front door answers with %q after v1", v)
	}
	load := startProxyLoad(t, addr.String(), 10*time.Millisecond)

	for _, v := range []string{"v2", "v3"} {
		d.push("staging", v)
		r := d.deployOK("staging")
		if got := version(); got != v {
			t.Errorf("after %s the front door answers with %q", v, got)
		}
		want := []string{app + "-web-1 running", app + "-worker-1 running"}
		if got := d.eng.Containers(t, d.prefix); !slices.Equal(got, want) {
			t.Errorf("containers after %s: %v, want %v (no .liftoff-next or -prev left)", v, got, want)
		}
		if l := d.eng.Inspect(t, app+"-web-1").Config.Labels; l[deploy.LabelDigest] != r.Digest {
			t.Errorf("web-1 after %s runs %s, want %s", v, l[deploy.LabelDigest], r.Digest)
		}
	}
	v3 := d.eng.ContainerID(t, app+"-web-1")

	// v4's worker exits at once: the web, published first, goes back to
	// v3's very container, and the front door with it.
	d.push("staging", "v4", "TESTAPP_EXIT_ARG=worker")
	r := d.deploy("staging")
	if r.Outcome != deploy.RolledBack || r.Err == nil || !strings.Contains(r.Err.Error(), "process worker") {
		t.Fatalf("v4: %s %v, want rolled_back naming the worker", r.Outcome, r.Err)
	}
	if got := version(); got != "v3" {
		t.Errorf("after the rollback the front door answers with %q, want v3", got)
	}
	if got := d.eng.ContainerID(t, app+"-web-1"); got != v3 {
		t.Errorf("web-1 is %s after the rollback, want v3's %s", got, v3)
	}
	d.serving(app+"-worker-1", "v3")
	load.end()

	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("%d requests answered; by version: %v", load.ok.Load(), load.versions)
	if len(load.failures) > 0 {
		t.Errorf("%d requests failed:\n%s", len(load.failures), strings.Join(load.failures, "\n"))
	}
	for _, v := range []string{"v1", "v2", "v3"} {
		if load.versions[v] == 0 {
			t.Errorf("%s answered no request", v)
		}
	}
	d.hasMetric(fmt.Sprintf(`liftoff_proxy_requests_in_flight{deployment="%s"} 0`, web))

	// A liftoff started again serves the web's container through its
	// front door without a deploy (a request before it finds it waits).
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d.launch(d.configPath, d.lookup, liftoff.Options{})
	if addr = d.app.ProxyAddr(web); addr == nil {
		t.Fatalf("no front door for %s after the restart", web)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	defer resp.Body.Close()
	var a struct{ Version string }
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK || a.Version != "v3" {
		t.Errorf("after the restart: %d %q %v, want 200 from v3", resp.StatusCode, a.Version, err)
	}
}
