package daemon_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

const tokDistHook = "previews-dist-hook-0123456789abcdef0123"

// distDeleteEvent is a registry 3 notification of the delete of
// docker.io/repo:tag, as a DELETE of /v2/<repo>/manifests/<tag> makes it.
func distDeleteEvent(repo, tag string) string {
	b, _ := json.Marshal(map[string]any{"events": []any{map[string]any{
		"id": "del-" + tag, "timestamp": "2026-12-07T04:01:02Z", "action": "delete",
		"target":  map[string]any{"repository": repo, "tag": tag},
		"request": map[string]any{"host": "docker.io", "method": "DELETE"},
		"actor":   map[string]any{"name": "ci-bot"}}}})
	return string(b)
}

// TestPreviewTagDeleteEvent: a distribution registry's delete of a
// preview's tag, POSTed to the hook, removes the running preview (its
// route and its container) and nothing else; a delete of the tag the
// deployment itself runs changes nothing.
func TestPreviewTagDeleteEvent(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	door := ln.Addr().String()
	ln.Close()
	cfg := strings.NewReplacer("DOOR", door, "TTL", "1h", "EXTRA", "",
		"hooks:\n", "hooks:\n  - {source: distribution, token: "+tokDistHook+"}\n").Replace(previewsConfig)
	d := startDaemonWith(t, cfg, daemonOptions{})
	web, name := d.prefix+"-web", d.prefix+"-web-pr-5"
	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	mainID := d.eng.ContainerID(t, web)
	d.pushImage("pr-5", testenv.AppImage{Version: "p5"})
	d.deployOK("pr-5")
	if st, v := doorGet(t, door, "pr-5.preview.example.test"); st != 200 || v != "p5" {
		t.Fatalf("pr-5: %d %q", st, v)
	}

	// The deployment's own tag: nothing is removed.
	if st, ans := d.post("/hooks/distribution/"+tokDistHook, distDeleteEvent(d.repo, "staging")); st != http.StatusAccepted || ans.Accepted != 0 || ans.Ignored != 1 {
		t.Fatalf("delete of staging: %d %+v", st, ans)
	}
	if !strings.Contains(d.logs.String(), "tag deleted from the registry: no preview of it runs; nothing is removed") {
		t.Error("the delivery's log does not say that the delete of staging removed nothing")
	}

	if st, ans := d.post("/hooks/distribution/"+tokDistHook, distDeleteEvent(d.repo, "pr-5")); st != http.StatusAccepted || ans.Accepted != 0 || ans.Ignored != 1 {
		t.Fatalf("delete of pr-5: %d %+v", st, ans)
	}
	eventually(t, "pr-5 removed after its tag's delete event", func() bool { return !containerExists(t, d, name) })
	if st, _ := doorGet(t, door, "pr-5.preview.example.test"); st != http.StatusNotFound {
		t.Errorf("pr-5's host after its tag was deleted: %d, want 404", st)
	}
	if ps := d.previews(); len(ps) != 0 {
		t.Errorf("previews after the delete: %+v", ps)
	}
	d.logEntry("preview: removed", map[string]string{"preview": name, "why": "its tag was deleted from the registry"})
	if !strings.Contains(d.logs.String(), "tag deleted from the registry: removing its preview "+name) {
		t.Error("the delivery's log does not say which preview it removes")
	}
	if got := d.eng.ContainerID(t, web); got != mainID {
		t.Error("a delete event touched the deployment's container")
	}
	if st, v := doorGet(t, door, "web.example.test"); st != 200 || v != "v1" {
		t.Errorf("the deployment after the deletes: %d %q", st, v)
	}
}
