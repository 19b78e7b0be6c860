//go:build linux

package daemon_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// enginesConfig: one push of acme/NAME:staging deploys NAME-near on the
// machine's engine and NAME-far on the engine far (FARHOST), a dockerd of
// the test's own.
const enginesConfig = configHead + `engines:
  far: {host: "FARHOST"}
api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
environments:
  staging:
    env: {STAGE: staging}
deployments:
  - name: %[1]s-near
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 500ms}
  - name: %[1]s-far
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    engine: far
    stop_timeout: 1s
    container: {restart: unless-stopped}
    health: {min_uptime: 500ms}
`

// TestSeveralEngines: one liftoff drives the machine's engine and a second
// dockerd. A push deploys to both. The second engine going away in the
// middle of its deploy (after the old container was stopped and set
// aside) fails that deploy only, the other engine's deploy succeeds, and
// /readyz names the engine away; once it is back, liftoff repairs what
// the deploy left (the old container back), resumes the push, and later
// pushes deploy to both again.
func TestSeveralEngines(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	eng := testenv.Engine(t)
	d := &daemon{t: t, eng: eng, reg: eng.Registry(t), results: make(chan deploy.Result, 64), logs: &testenv.SyncBuffer{}}
	d.prefix = eng.UniqueName(t, "engines")
	d.repo = "acme/" + d.prefix
	far := testenv.StartDockerd(t, d.reg.Host())
	near, farName := d.prefix+"-near", d.prefix+"-far"

	// The BeforeStep hook stops the far engine when the armed deploy of
	// farName is about to create its new container.
	var armed atomic.Bool
	reached, stopped := make(chan struct{}, 1), make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(stopped) }) })
	path := filepath.Join(t.TempDir(), "liftoff.yaml")
	writeDaemonConfig(t, d, path, strings.Replace(enginesConfig, "FARHOST", far.Host(), 1))
	d.launch(path, func(string) (string, bool) { return "", false }, liftoff.Options{
		WatchInterval: 200 * time.Millisecond,
		RetryBackoff:  50 * time.Millisecond,
		BeforeStep: func(deployment, step string) {
			if deployment == farName && step == deploy.StepCreate && armed.CompareAndSwap(true, false) {
				reached <- struct{}{}
				<-stopped
			}
		},
	})

	// v1 to both.
	v1 := d.pushImage("staging", testenv.AppImage{Version: "v1"})
	results := d.pushBoth("staging")
	for _, name := range []string{near, farName} {
		if r := results[name]; r.Outcome != deploy.Succeeded {
			t.Fatalf("v1 to %s: %s %v", name, r.Outcome, r.Err)
		}
	}
	d.only(near)
	d.serving(near, "v1")
	farOnly(t, far, d.prefix, farName, v1)
	if status, body := d.readyz(); status != http.StatusOK {
		t.Fatalf("/readyz with both engines up: %d %s", status, body)
	}
	d.hasMetric(`liftoff_deployed_info{deployment="` + farName + `",digest="` + v1 + `",engine="far",environment="staging",image="docker.io/acme/` + d.prefix + `",tag="staging"} 1`)
	d.hasMetric(`liftoff_deployed_info{deployment="` + near + `",digest="` + v1 + `",engine="local",environment="staging",image="docker.io/acme/` + d.prefix + `",tag="staging"} 1`)
	list := d.apiOK(200, tokRead, "GET", "/api/v1/deployments", "")
	engines := map[string]any{}
	for _, v := range list["deployments"].([]any) {
		m := v.(map[string]any)
		engines[m["name"].(string)] = m["engine"]
	}
	if engines[near] != "local" || engines[farName] != "far" {
		t.Errorf("GET /api/v1/deployments: engines %v", engines)
	}

	// v2: far goes away in the middle of its deploy.
	v2 := d.pushImage("staging", testenv.AppImage{Version: "v2"})
	armed.Store(true)
	if status, ans := d.hook("staging"); status != http.StatusAccepted || ans.Accepted != 2 {
		t.Fatalf("push of v2: %d %+v", status, ans)
	}
	select {
	case <-reached:
	case <-time.After(90 * time.Second):
		t.Fatal("the deploy of v2 to far did not reach its create step within 90s")
	}
	began := time.Now()
	far.Stop(t)
	t.Logf("the far engine stopped in %v", time.Since(began).Round(time.Millisecond))
	release.Do(func() { close(stopped) })
	results = map[string]deploy.Result{}
	for range 2 {
		r := d.next()
		results[r.Request.Deployment] = r
	}
	if r := results[near]; r.Outcome != deploy.Succeeded {
		t.Errorf("v2 to %s with far away: %s %v, want succeeded", near, r.Outcome, r.Err)
	}
	if r := results[farName]; r.Outcome != deploy.Failed || !errors.Is(r.Err, deploy.ErrUnavailable) {
		t.Errorf("v2 to %s with its engine away: %s %v, want failed, engine unavailable", farName, r.Outcome, r.Err)
	}
	d.only(near)
	d.serving(near, "v2")
	status, body := d.readyz()
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `engine "far": not answering (`) || strings.Contains(body, `engine "local"`) {
		t.Errorf("/readyz with far away: %d %q, want 503 naming far, and only far", status, body)
	}

	// far back: the old container is put back, then v2 resumed.
	far.Start(t)
	r := d.next()
	if r.Request.Deployment != farName || r.Outcome != deploy.Succeeded || r.Request.Trigger != deploy.TriggerResume || r.Digest != v2 {
		t.Fatalf("after far came back: %s %s %s %s %v, want v2 resumed and succeeded on far", r.Request.Deployment, r.Request.Trigger, r.Outcome, r.Digest, r.Err)
	}
	farOnly(t, far, d.prefix, farName, v2)
	d.logEntry("reconciled an interrupted deploy", map[string]string{"deployment": farName, "repair": "restored"})
	waitReady(t, d)
	recs := d.apiOK(200, tokRead, "GET", "/api/v1/deploys?deployment="+farName+"&limit=3", "")["deploys"].([]any)
	if len(recs) != 3 || recs[1].(map[string]any)["outcome"] != string(deploy.RolledBack) {
		t.Errorf("far's deploys: %v, want v2 resumed, v2 interrupted and rolled back by the repair, v1", recs)
	}

	// v3: both again.
	v3 := d.pushImage("staging", testenv.AppImage{Version: "v3"})
	results = d.pushBoth("staging")
	for _, name := range []string{near, farName} {
		if r := results[name]; r.Outcome != deploy.Succeeded {
			t.Fatalf("v3 to %s: %s %v", name, r.Outcome, r.Err)
		}
	}
	d.only(near)
	d.serving(near, "v3")
	farOnly(t, far, d.prefix, farName, v3)
}

// pushBoth delivers a push of tag, which must be accepted for two
// deployments, and returns their results by deployment.
func (d *daemon) pushBoth(tag string) map[string]deploy.Result {
	d.t.Helper()
	if status, ans := d.hook(tag); status != http.StatusAccepted || ans.Accepted != 2 {
		d.t.Fatalf("push of %s: %d %+v", tag, status, ans)
	}
	out := map[string]deploy.Result{}
	for range 2 {
		r := d.next()
		out[r.Request.Deployment] = r
	}
	return out
}

// readyz returns /readyz's status and body.
func (d *daemon) readyz() (int, string) {
	d.t.Helper()
	resp, err := http.Get(d.base + "/readyz")
	if err != nil {
		d.t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitReady(t *testing.T, d *daemon) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := d.readyz()
		if status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %q 30s after far came back", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// farOnly asserts that name is the only container of the test on the far
// engine, that it runs, and that it runs digest.
func farOnly(t *testing.T, far *testenv.Dockerd, prefix, name, digest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := far.Client().ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatalf("far: list containers: %v", err)
	}
	var got []string
	for _, c := range list.Items {
		for _, n := range c.Names {
			if n = strings.TrimPrefix(n, "/"); strings.HasPrefix(n, prefix) {
				got = append(got, n+" "+string(c.State))
			}
		}
	}
	if !slices.Equal(got, []string{name + " running"}) {
		t.Fatalf("far: containers %v, want exactly [%s running]", got, name)
	}
	in, err := far.Client().ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("far: inspect %s: %v", name, err)
	}
	if got := in.Container.Config.Labels[deploy.LabelDigest]; got != digest {
		t.Errorf("far: %s runs %s, want %s", name, got, digest)
	}
}
