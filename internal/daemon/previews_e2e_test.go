package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

const tokPreviews = "previews-token-0123456789abcdef0123"

// previewsConfig is a deployment NAME-web (tag staging) on a plain HTTP
// front door (DOOR) with previews of pr-* tags, at most 2, for TTL.
const previewsConfig = configHead + `front_door: {listen: "DOOR"}
api_tokens:
  - {name: ci, token: ` + tokPreviews + `, scopes: ["deploy:staging", read]}
environments:
  staging: {env: {WHO: staging}}
deployments:
  - name: %[1]s-web
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    proxy: {hosts: [web.example.test], port: 8000, drain_timeout: 5s}
    health: {url: "http://{upstream}/healthz", timeout: 8s, min_uptime: 300ms}
    previews: {tags: "glob:pr-*", host: "{tag}.preview.example.test", ttl: TTL, max: 2}
    EXTRA
`

// startPreviews starts liftoff on previewsConfig with a front door on a
// port of its own that stays the same across a restart.
func startPreviews(t *testing.T, ttl, extra string) (*daemon, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	door := ln.Addr().String()
	ln.Close()
	cfg := strings.NewReplacer("DOOR", door, "TTL", ttl, "EXTRA", extra).Replace(previewsConfig)
	return startDaemonWith(t, cfg, daemonOptions{}), door
}

// doorGet asks the front door at door for / with Host host: the status
// and the version that answered.
func doorGet(t *testing.T, door, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+door+"/", nil)
	req.Host = host
	c := &http.Client{Timeout: 20 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s through the front door: %v", host, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var a struct{ Version string }
	json.Unmarshal(b, &a)
	return res.StatusCode, a.Version
}

// eventually polls cond every 100ms until it holds, failing after a
// minute: a wait for the engine, not a measure of speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not so after a minute: %s", what)
		}
	}
}

func (d *daemon) previews() []map[string]any {
	d.t.Helper()
	out := d.apiOK(http.StatusOK, tokPreviews, http.MethodGet, "/api/v1/deployments/"+d.prefix+"-web/previews", "")
	var list []map[string]any
	for _, p := range out["previews"].([]any) {
		list = append(list, p.(map[string]any))
	}
	return list
}

// TestPreviews: a push of pr-1 starts its own container, served at its
// host by the front door beside the deployment's, which it never touches;
// a newer push replaces it, one that fails its gate leaves it serving;
// the API lists it; a third preview over max removes the oldest; the API
// removes one; a restart adopts what runs and routes it again.
func TestPreviews(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, door := startPreviews(t, "1h", "")
	web, pr1, pr2, pr3 := d.prefix+"-web", d.prefix+"-web-pr-1", d.prefix+"-web-pr-2", d.prefix+"-web-pr-3"
	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	mainID := d.eng.ContainerID(t, web)

	d.pushImage("pr-1", testenv.AppImage{Version: "p1"})
	if r := d.deployOK("pr-1"); r.Request.Deployment != pr1 {
		t.Fatalf("pr-1 deployed %s, want %s", r.Request.Deployment, pr1)
	}
	if st, v := doorGet(t, door, "pr-1.preview.example.test"); st != 200 || v != "p1" {
		t.Errorf("pr-1's host: %d %q, want 200 from p1", st, v)
	}
	if st, v := doorGet(t, door, "web.example.test"); st != 200 || v != "v1" {
		t.Errorf("the deployment's host: %d %q, want 200 from v1", st, v)
	}
	_, env := d.eng.AppGet(t, pr1)
	if env["WHO"] != "staging" {
		t.Errorf("the preview's environment lacks the deployment's: WHO=%q", env["WHO"])
	}

	// Replaced by a newer push; kept when the newer one fails its gate.
	d.pushImage("pr-1", testenv.AppImage{Version: "p1b"})
	d.deployOK("pr-1")
	if st, v := doorGet(t, door, "pr-1.preview.example.test"); st != 200 || v != "p1b" {
		t.Errorf("pr-1 after its second push: %d %q, want p1b", st, v)
	}
	d.pushImage("pr-1", testenv.AppImage{Version: "p1bad", Env: []string{"TESTAPP_HEALTH=fail"}})
	if r := d.deploy("pr-1"); r.Outcome != deploy.RolledBack {
		t.Errorf("a preview failing its gate: %s (%v), want rolled_back", r.Outcome, r.Err)
	}
	if st, v := doorGet(t, door, "pr-1.preview.example.test"); st != 200 || v != "p1b" {
		t.Errorf("pr-1 after a failed push: %d %q, want p1b still", st, v)
	}
	if got := d.eng.ContainerID(t, web); got != mainID {
		t.Error("a preview's push touched the deployment's container")
	}
	ps := d.previews()
	if len(ps) != 1 || ps[0]["name"] != pr1 || ps[0]["tag"] != "pr-1" || ps[0]["url"] != "http://pr-1.preview.example.test/" {
		t.Errorf("previews: %+v", ps)
	}
	if r := d.liftoffCLI(tokPreviews, "previews", web); r.code != 0 || !strings.Contains(r.stdout, "pr-1  http://pr-1.preview.example.test/") {
		t.Errorf("liftoff previews %s: %+v", web, r)
	}
	if st, page := d.apiRaw(tokPreviews, http.MethodGet, "/deployments/"+web, ""); st != 200 || !strings.Contains(string(page), `<a href="http://pr-1.preview.example.test/" rel="noopener">pr-1</a>`) {
		t.Errorf("the status page of %s: %d, no link to pr-1:\n%s", web, st, page)
	}

	// max 2: a third preview removes the least recently pushed, pr-1.
	d.pushImage("pr-2", testenv.AppImage{Version: "p2"})
	d.deployOK("pr-2")
	d.pushImage("pr-3", testenv.AppImage{Version: "p3"})
	d.deployOK("pr-3")
	eventually(t, "pr-1 removed as the oldest of 3 over max 2", func() bool {
		return len(d.eng.Containers(t, pr1)) == 0
	})
	if st, _ := doorGet(t, door, "pr-1.preview.example.test"); st != http.StatusNotFound {
		t.Errorf("pr-1's host after its removal: %d, want 404", st)
	}
	d.waitMetric(fmt.Sprintf(`liftoff_previews{deployment="%s"} 2`, web))

	// Removed through the API; a second removal is a 404; a token that
	// may only read gets no say.
	d.apiOK(http.StatusOK, tokPreviews, http.MethodDelete, "/api/v1/deployments/"+web+"/previews/pr-2", "")
	if containerExists(t, d, pr2) {
		t.Error("pr-2's container is left after its removal")
	}
	if st, _ := doorGet(t, door, "pr-2.preview.example.test"); st != http.StatusNotFound {
		t.Errorf("pr-2's host after its removal: %d, want 404", st)
	}
	if st, _ := d.api(tokPreviews, http.MethodDelete, "/api/v1/deployments/"+web+"/previews/pr-2", ""); st != http.StatusNotFound {
		t.Errorf("removing pr-2 again: %d, want 404", st)
	}
	if r := d.liftoffCLI(tokPreviews, "previews", "rm", web, "pr-2"); r.code != 1 || !strings.Contains(r.stderr, "(404)") {
		t.Errorf("liftoff previews rm of a removed preview: %+v", r)
	}

	// A restart adopts pr-3: routed again, listed, its ttl re-armed.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d.launch(d.configPath, d.lookup, liftoff.Options{})
	eventually(t, "pr-3 routed after the restart", func() bool {
		st, v := doorGet(t, door, "pr-3.preview.example.test")
		return st == 200 && v == "p3"
	})
	if ps := d.previews(); len(ps) != 1 || ps[0]["name"] != pr3 {
		t.Errorf("previews after the restart: %+v", ps)
	}
	if st, v := doorGet(t, door, "web.example.test"); st != 200 || v != "v1" {
		t.Errorf("the deployment after the restart: %d %q", st, v)
	}
}

// TestPreviewExpires: a preview without a push for its ttl is removed,
// its route with it.
func TestPreviewExpires(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, door := startPreviews(t, "3s", "")
	name := d.prefix + "-web-pr-7"
	d.pushImage("pr-7", testenv.AppImage{Version: "p7"})
	d.deployOK("pr-7")
	if st, v := doorGet(t, door, "pr-7.preview.example.test"); st != 200 || v != "p7" {
		t.Errorf("pr-7: %d %q", st, v)
	}
	eventually(t, "pr-7 removed after its ttl", func() bool { return !containerExists(t, d, name) })
	if st, _ := doorGet(t, door, "pr-7.preview.example.test"); st != http.StatusNotFound {
		t.Errorf("pr-7's host after it expired: %d, want 404", st)
	}
	if ps := d.previews(); len(ps) != 0 {
		t.Errorf("previews after the ttl: %+v", ps)
	}
	d.logEntry("preview: removed", map[string]string{"preview": name, "why": "no push for previews.ttl"})
}

// TestPreviewTagDeleted: a polled deployment's preview goes once the
// registry no longer has its tag.
func TestPreviewTagDeleted(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, door := startPreviews(t, "1h", "poll: {interval: 1s}")
	name := d.prefix + "-web-pr-5"
	d.pushImage("pr-5", testenv.AppImage{Version: "p5"})
	if status, ans := d.hook("pr-5"); status != http.StatusAccepted || ans.Accepted != 1 {
		t.Fatalf("push of pr-5: %d %+v", status, ans)
	}
	eventually(t, "pr-5 served", func() bool {
		st, v := doorGet(t, door, "pr-5.preview.example.test")
		return st == 200 && v == "p5"
	})
	d.reg.Delete(t, d.repo, "pr-5")
	eventually(t, "pr-5 removed once its tag is gone", func() bool { return !containerExists(t, d, name) })
	if st, _ := doorGet(t, door, "pr-5.preview.example.test"); st != http.StatusNotFound {
		t.Errorf("pr-5's host after its tag was deleted: %d, want 404", st)
	}
	d.logEntry("previews: the registry no longer has the tag; the preview is removed", map[string]string{"preview": name})
}

func containerExists(t *testing.T, d *daemon, name string) bool {
	t.Helper()
	for _, c := range d.eng.Containers(t, name) {
		if strings.HasPrefix(c, name+" ") {
			return true
		}
	}
	return false
}
