package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// registryRig is the engine with the Docker adapter on the real engine,
// deploying one deployment from a test registry.
type registryRig struct {
	t      *testing.T
	eng    *testenv.Eng
	reg    *testenv.Reg
	engine *deploy.Engine
	name   string // deployment and container
	repo   string // acme/web on reg
	done   chan deploy.Result
}

func newRegistryRig(t *testing.T, opts ...testenv.RegOption) *registryRig {
	t.Helper()
	e := testenv.Engine(t)
	r := &registryRig{t: t, eng: e, reg: e.Registry(t, opts...), repo: "acme/web", done: make(chan deploy.Result, 8)}
	r.name = e.UniqueName(t, "regfault")
	cfg, err := deployments.Parse([]byte(fmt.Sprintf(`
environments: {staging: {}}
deployments:
  - name: %s
    image: %s/%s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 300ms}
`, r.name, r.reg.Host(), r.repo)), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := docker.New("", nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r.engine = deploy.New(deploy.Options{
		Runtime:    dc,
		Config:     func() *deployments.Config { return cfg },
		Logger:     zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Registerer: prometheus.NewRegistry(),
		// A pull that hangs is given up after 3s, not the default 10m.
		PullTimeout: 3 * time.Second,
		// A registry that is down is retried once, briefly.
		Retries:      1,
		RetryBackoff: 100 * time.Millisecond,
		OnDone:       func(res deploy.Result) { r.done <- res },
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.engine.Close(ctx); err != nil {
			t.Errorf("engine close: %v", err)
		}
		dc.Close()
	})
	return r
}

func (r *registryRig) deploy() deploy.Result {
	r.t.Helper()
	if _, err := r.engine.Enqueue(context.Background(), deploy.Request{Deployment: r.name, Image: r.reg.Host() + "/" + r.repo, Tag: "staging", Trigger: "test"}); err != nil {
		r.t.Fatal(err)
	}
	select {
	case res := <-r.done:
		return res
	case <-time.After(2 * time.Minute):
		r.t.Fatal("no deploy finished within 2m")
		return deploy.Result{}
	}
}

// running deploys v1 and returns its container's id and start time.
func (r *registryRig) running() (id, started string) {
	r.t.Helper()
	r.reg.Push(r.t, r.repo, "staging", testenv.AppImage{Version: "v1"})
	if res := r.deploy(); res.Outcome != deploy.Succeeded {
		r.t.Fatalf("v1: %s %v", res.Outcome, res.Err)
	}
	return r.state()
}

func (r *registryRig) state() (id, started string) {
	r.t.Helper()
	res, err := r.eng.Client().ContainerInspect(r.t.Context(), r.name, client.ContainerInspectOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return res.Container.ID, res.Container.State.StartedAt
}

// untouched asserts that v1's container still runs as it did: not
// stopped, not replaced, serving v1, alone.
func (r *registryRig) untouched(id, started string) {
	r.t.Helper()
	if gotID, gotStarted := r.state(); gotID != id || gotStarted != started {
		r.t.Errorf("container %s (started %s), want v1's %s untouched (started %s)", gotID, gotStarted, id, started)
	}
	if v, _ := r.eng.AppGet(r.t, r.name); v != "v1" {
		r.t.Errorf("serving %q, want v1", v)
	}
	if got := r.eng.RunningContainers(r.t, r.name); len(got) != 1 || got[0] != r.name {
		r.t.Errorf("running %v, want only %s", got, r.name)
	}
}

func TestRegistryFaults(t *testing.T) {
	t.Parallel()

	t.Run("registry down", func(t *testing.T) {
		t.Parallel()
		r := newRegistryRig(t)
		id, started := r.running()
		r.reg.Push(t, r.repo, "staging", testenv.AppImage{Version: "v2"})
		r.reg.Close()
		res := r.deploy()
		if res.Outcome != deploy.Failed || !errors.Is(res.Err, deploy.ErrUnavailable) {
			t.Errorf("registry down: %s %v, want failed, unavailable", res.Outcome, res.Err)
		}
		r.untouched(id, started)
	})

	t.Run("tag deleted", func(t *testing.T) {
		t.Parallel()
		r := newRegistryRig(t)
		id, started := r.running()
		// The push's webhook fired, then the tag went away.
		r.reg.Push(t, r.repo, "staging", testenv.AppImage{Version: "v2"})
		r.reg.Delete(t, r.repo, "staging")
		res := r.deploy()
		if res.Outcome != deploy.Failed || !errors.Is(res.Err, deploy.ErrNotFound) {
			t.Errorf("tag deleted: %s %v, want failed, not found", res.Outcome, res.Err)
		}
		r.untouched(id, started)
	})

	t.Run("pull hangs", func(t *testing.T) {
		t.Parallel()
		var hang atomic.Bool
		blocked := make(chan struct{})
		var once sync.Once
		r := newRegistryRig(t, testenv.WithMiddleware(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if hang.Load() && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
					once.Do(func() { close(blocked) })
					<-req.Context().Done() // until the engine gives up, or the registry closes
					return
				}
				next.ServeHTTP(w, req)
			})
		}))
		id, started := r.running()
		// A version of its own: the engine must fetch its blobs, not find
		// them pulled by another test.
		r.reg.Push(t, r.repo, "staging", testenv.AppImage{Version: "v2-" + r.name})
		hang.Store(true)
		res := r.deploy()
		select {
		case <-blocked:
		default:
			t.Error("the pull never asked for a blob")
		}
		if res.Outcome != deploy.Failed || !errors.Is(res.Err, context.DeadlineExceeded) || !strings.Contains(res.Err.Error(), "pull") {
			t.Errorf("hung pull: %s %v, want failed in pull by its deadline", res.Outcome, res.Err)
		}
		r.untouched(id, started)
	})
}
