package deploy

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// OnPending and OnDropped tell of what happens to a push outside a deploy:
// once per push awaiting approval (duplicates and pushes put back at
// start-up not again), and once per push dropped, with why.
func TestOnPendingOnDropped(t *testing.T) {
	cfg, err := deployments.Parse([]byte(holdConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	rt, j := newFakeRuntime(), newRCJournal()
	pending, dropped := make(chan Request, 16), make(chan Result, 16)
	start := func() *Engine {
		e := New(Options{
			Runtime: rt, Journal: j, Config: func() *deployments.Config { return cfg },
			Logger: zerolog.Nop(), Registerer: prometheus.NewRegistry(),
			OnPending: func(r Request) { pending <- r },
			OnDropped: func(r Result) { dropped <- r },
			waits:     testWaits,
		})
		t.Cleanup(func() { e.Close(context.Background()) })
		if err := e.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := start()
	ctx := context.Background()
	push := func(tag string) {
		t.Helper()
		rt.push("docker.io/acme/api:"+tag, "sha256:"+tag)
		if ds, err := e.Enqueue(ctx, Request{Deployment: "api", Image: "docker.io/acme/api", Tag: tag, Trigger: "dockerhub", Delivery: "d-" + tag}); err != nil || ds[0] != Pending {
			t.Fatalf("push %s: %v %v", tag, ds, err)
		}
	}
	nextPending := func(tag string) Request {
		t.Helper()
		select {
		case r := <-pending:
			if r.Tag != tag || r.Deployment != "api" || r.Expires.IsZero() || r.ID == 0 {
				t.Fatalf("OnPending(%+v), want %s with its expiry and id", r, tag)
			}
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no OnPending for %s", tag)
		}
		return Request{}
	}
	nextDropped := func(tag string, o Outcome, actor string) Result {
		t.Helper()
		select {
		case r := <-dropped:
			if r.Request.Tag != tag || r.Outcome != o || r.Environment != "production" || r.Err == nil || r.Request.Actor != actor || r.Ended.Before(r.Started) {
				t.Fatalf("OnDropped(%+v), want %s %s by %q", r, tag, o, actor)
			}
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no OnDropped for %s", tag)
		}
		return Result{}
	}

	push("v1")
	nextPending("v1")
	push("v1") // Docker Hub's duplicate: nothing new
	push("v2") // replaces v1
	nextDropped("v1", Superseded, "")
	nextPending("v2")
	if _, err := e.Reject(ctx, "api", "lead", Decision{Request: e.Status("api").Pending.ID}); err != nil {
		t.Fatal(err)
	}
	nextDropped("v2", Rejected, "lead")

	// Held while paused: pending only once resumed.
	if err := e.Pause(ctx, "api", "lead"); err != nil {
		t.Fatal(err)
	}
	rt.push("docker.io/acme/api:v3", "sha256:v3")
	if ds, err := e.Enqueue(ctx, Request{Deployment: "api", Image: "docker.io/acme/api", Tag: "v3", Trigger: "dockerhub"}); err != nil || ds[0] != Held {
		t.Fatalf("push while paused: %v %v", ds, err)
	}
	if _, err := e.Unpause(ctx, "api", "lead"); err != nil {
		t.Fatal(err)
	}
	nextPending("v3")

	// Put back at start-up: not told again; it expires there (300ms).
	e.Close(ctx)
	e = start()
	nextDropped("v3", Expired, "")
	select {
	case r := <-pending:
		t.Errorf("OnPending(%+v) for a push Load put back", r)
	case r := <-dropped:
		t.Errorf("OnDropped(%+v) more than once", r)
	default:
	}
}
