package deploy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

const previewsConfig = `
hooks: [{source: dockerhub, token: 0123456789abcdef0123456789abcdef}]
front_door: {listen: "127.0.0.1:0"}
environments:
  staging: {backup: {command: [dump]}}
deployments:
  - name: web
    image: acme/web
    tags: [staging]
    environment: staging
    container: {aliases: [web], networks: [net]}
    proxy: {hosts: [web.example.com], port: 8000}
    health: {min_uptime: 50ms, timeout: 1s}
    previews: {tags: "glob:pr-*", host: "{tag}.p.example.com", ttl: 1h, max: 2}
`

// TestPreviewsOnFakes: a preview deploys in a queue of its own, as its own
// container without the deployment's aliases, served by the front door,
// never running the environment's backup nor touching the deployment; the
// least recently pushed goes over max; RemovePreview removes one and says
// ErrNoPreview for one that does not run.
func TestPreviewsOnFakes(t *testing.T) {
	cfg, err := deployments.Parse([]byte(previewsConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	rt := newFakeRuntime()
	door := &fakeDoor{rt: rt, up: map[string]string{}}
	results := make(chan Result, 8)
	var changed atomic.Int32
	e := New(Options{
		Runtime: rt, Logger: zerolog.Nop(), FrontDoor: door,
		Config:     func() *deployments.Config { return cfg },
		OnDone:     func(r Result) { results <- r },
		OnPreviews: func() { changed.Add(1) },
		waits:      testWaits,
	})
	t.Cleanup(func() { e.Close(context.Background()) })
	push := func(tag, digest string) Result {
		t.Helper()
		rt.push("docker.io/acme/web:"+tag, digest)
		m := cfg.Match("docker.io/acme/web", tag)
		if len(m.Accepted) != 1 {
			t.Fatalf("match %s: %+v", tag, m)
		}
		if _, err := e.Enqueue(context.Background(), Request{Deployment: m.Accepted[0].Name, Image: "docker.io/acme/web", Tag: tag}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-results:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no deploy of %s finished", tag)
			return Result{}
		}
	}
	if r := push("pr-1", "sha256:"+hex64('1')); r.Outcome != Succeeded || r.Request.Deployment != "web-pr-1" {
		t.Fatalf("pr-1: %s %v", r.Outcome, r.Err)
	}
	c, ok := rt.get("web-pr-1")
	if !ok || c.Labels[LabelPreview] != "web" || c.Labels[LabelPushed] == "" || len(rt.aliases[c.ID]) != 0 {
		t.Errorf("the preview's container: %+v aliases %v", c, rt.aliases[c.ID])
	}
	if _, ok := rt.get("web"); ok {
		t.Error("a preview's push created the deployment's container")
	}
	if len(rt.oneOffs) != 0 {
		t.Errorf("a preview ran one-offs (the backup?): %+v", rt.oneOffs)
	}
	if door.upstream("web-pr-1") == "" {
		t.Error("the front door does not serve the preview")
	}
	ps := e.Previews("web")
	if len(ps) != 1 || ps[0].Host != "pr-1.p.example.com" || ps[0].Tag != "pr-1" || !ps[0].Expires.Equal(ps[0].Pushed.Add(time.Hour)) {
		t.Errorf("previews: %+v", ps)
	}
	if changed.Load() == 0 {
		t.Error("OnPreviews was not called for a new preview")
	}

	push("pr-2", "sha256:"+hex64('2'))
	push("pr-3", "sha256:"+hex64('3'))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := rt.get("web-pr-1"); !ok && len(e.Previews("web")) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pr-1 not removed over max 2: %+v", e.Previews("web"))
		}
	}
	if ps := e.Previews("web"); ps[0].Tag != "pr-2" || ps[1].Tag != "pr-3" {
		t.Errorf("previews after max: %+v", ps)
	}

	if err := e.RemovePreview(context.Background(), "web", "pr-9"); !errors.Is(err, ErrNoPreview) {
		t.Errorf("removing a preview that does not run: %v", err)
	}
	if err := e.RemovePreview(context.Background(), "web", "pr-2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := rt.get("web-pr-2"); ok {
		t.Error("pr-2's container is left")
	}
	if ps := e.Previews(""); len(ps) != 1 || ps[0].Tag != "pr-3" {
		t.Errorf("previews after removing pr-2: %+v", ps)
	}
}

func hex64(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
