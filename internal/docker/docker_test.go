package docker_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// newClient returns a client of the engine of DOCKER_HOST or the local
// socket, counting errors on a registry of its own.
func newClient(t testing.TB) (*docker.Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := docker.New("", reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, reg
}

func errorsTotal(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "liftoff_docker_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no liftoff_docker_errors_total{op=%q}", op)
	return 0
}

func ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestResolve(t *testing.T) {
	t.Parallel()
	c, metrics := newClient(t)
	reg := testenv.Registry(t)
	want := reg.Push(t, "acme/web", "staging", testenv.AppImage{Version: "1"})
	reg.Push(t, "acme/web", "other", testenv.AppImage{Version: "2"})

	got, err := c.Resolve(ctx(t), reg.Ref("acme/web", "staging"), deploy.Auth{})
	if err != nil || got != want {
		t.Errorf("Resolve(staging) = %s, %v; want %s", got, err, want)
	}
	for _, ref := range []string{reg.Ref("acme/web", "nope"), reg.Ref("acme/nothing", "staging")} {
		if _, err := c.Resolve(ctx(t), ref, deploy.Auth{}); !errors.Is(err, deploy.ErrNotFound) {
			t.Errorf("Resolve(%s) error = %v, want ErrNotFound", ref, err)
		}
	}
	reg.Delete(t, "acme/web", "staging")
	if _, err := c.Resolve(ctx(t), reg.Ref("acme/web", "staging"), deploy.Auth{}); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Resolve of a deleted tag: error = %v, want ErrNotFound", err)
	}
	if n := errorsTotal(t, metrics, "resolve"); n != 0 {
		t.Errorf("errors_total{op=resolve} = %v after only not-found answers, want 0", n)
	}

	reg.Close()
	_, err = c.Resolve(ctx(t), reg.Ref("acme/web", "other"), deploy.Auth{})
	if !errors.Is(err, deploy.ErrUnavailable) || errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Resolve on a registry that is down: error = %v, want ErrUnavailable", err)
	}
	if n := errorsTotal(t, metrics, "resolve"); n != 1 {
		t.Errorf("errors_total{op=resolve} = %v after a registry that is down, want 1", n)
	}
}

// A registry whose HEAD answers lack the digest header is asked with GET.
func TestResolveWithoutDigestHeader(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	c, _ := newClient(t)
	var bare atomic.Bool
	reg := testenv.Registry(t, testenv.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if bare.Load() && r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
				w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
				w.Header().Set("Content-Length", "100")
				w.WriteHeader(http.StatusOK)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	want := reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "1"})
	bare.Store(true)
	if got, err := c.Resolve(ctx(t), reg.Ref("acme/web", "v1"), deploy.Auth{}); err != nil || got != want {
		t.Errorf("Resolve = %s, %v; want %s", got, err, want)
	}
	if _, err := c.Resolve(ctx(t), reg.Ref("acme/web", "v2"), deploy.Auth{}); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Resolve of a missing tag: error = %v, want ErrNotFound", err)
	}
}

func TestResolveAuth(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	c, _ := newClient(t)
	reg := testenv.Registry(t, testenv.WithBasicAuth("ci", "pa55word"))
	want := reg.Push(t, "acme/private", "v1", testenv.AppImage{Version: "1"})
	ref := reg.Ref("acme/private", "v1")

	got, err := c.Resolve(ctx(t), ref, deploy.Auth{Username: "ci", Password: "pa55word"})
	if err != nil || got != want {
		t.Errorf("Resolve with auth = %s, %v; want %s", got, err, want)
	}
	for _, auth := range []deploy.Auth{{}, {Username: "ci", Password: "wrong-pa55"}} {
		_, err := c.Resolve(ctx(t), ref, auth)
		if err == nil || errors.Is(err, deploy.ErrNotFound) {
			t.Errorf("Resolve with %q: error = %v, want an auth error", auth.Username, err)
		}
		if err != nil && auth.Password != "" && strings.Contains(err.Error(), auth.Password) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestPingFailure(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c, err := docker.New("unix:///nonexistent/docker.sock", reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx(t)); !errors.Is(err, deploy.ErrUnavailable) {
		t.Fatalf("Ping of no engine: error = %v, want ErrUnavailable", err)
	}
	if _, err := c.Inspect(ctx(t), "web"); !errors.Is(err, deploy.ErrUnavailable) || errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Inspect on no engine: error = %v, want ErrUnavailable", err)
	}
	if n := errorsTotal(t, reg, "ping"); n != 1 {
		t.Errorf("errors_total{op=ping} = %v, want 1", n)
	}
	// Two clients on one registry share the counter.
	c2, err := docker.New("unix:///nonexistent/docker.sock", reg, zerolog.Nop())
	if err != nil {
		t.Fatalf("second client on the same registry: %v", err)
	}
	defer c2.Close()
	c2.Ping(ctx(t))
	if n := errorsTotal(t, reg, "ping"); n != 2 {
		t.Errorf("errors_total{op=ping} = %v, want 2", n)
	}
}

func TestPullAndImageEnv(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	e := testenv.Engine(t)
	c, metrics := newClient(t)
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
	reg := e.Registry(t)
	d := reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "1", Env: []string{"DEBUG=True", "STATIC_URL=/static/"}})
	ref := reg.Host() + "/acme/web@" + d

	if _, err := c.ImageEnv(ctx(t), ref); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("ImageEnv before the pull: error = %v, want ErrNotFound", err)
	}
	if err := c.Pull(ctx(t), ref, deploy.Auth{}); err != nil {
		t.Fatal(err)
	}
	env, err := c.ImageEnv(ctx(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{"DEBUG=True", "STATIC_URL=/static/"} {
		if !slices.Contains(env, kv) {
			t.Errorf("ImageEnv = %q, want it to hold %s", env, kv)
		}
	}
	if n := errorsTotal(t, metrics, "pull"); n != 0 {
		t.Errorf("errors_total{op=pull} = %v, want 0", n)
	}

	missing := reg.Host() + "/acme/web@sha256:" + strings.Repeat("0", 64)
	err = c.Pull(ctx(t), missing, deploy.Auth{})
	if !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Pull of a missing digest: error = %v, want ErrNotFound", err)
	}
	if n := errorsTotal(t, metrics, "pull"); n != 0 {
		t.Errorf("errors_total{op=pull} = %v after a not-found pull, want 0", n)
	}

	down := e.Registry(t)
	d = down.Push(t, "acme/web", "v1", testenv.AppImage{Version: "down"})
	down.Close()
	err = c.Pull(ctx(t), down.Host()+"/acme/web@"+d, deploy.Auth{})
	if !errors.Is(err, deploy.ErrUnavailable) || errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Pull from a registry that is down: error = %v, want ErrUnavailable", err)
	}
	if n := errorsTotal(t, metrics, "pull"); n != 1 {
		t.Errorf("errors_total{op=pull} = %v after a registry that is down, want 1", n)
	}
}

func TestPullAuth(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	e := testenv.Engine(t)
	c, _ := newClient(t)
	reg := e.Registry(t, testenv.WithBasicAuth("ci", "pa55word"))
	d := reg.Push(t, "acme/private", "v1", testenv.AppImage{Version: "1", Env: []string{"PRIVATE=yes"}})
	ref := reg.Host() + "/acme/private@" + d

	err := c.Pull(ctx(t), ref, deploy.Auth{Username: "ci", Password: "wrong-pa55"})
	if err == nil {
		t.Fatal("Pull with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-pa55") {
		t.Errorf("error shows the password: %v", err)
	}
	if err := c.Pull(ctx(t), ref, deploy.Auth{Username: "ci", Password: "pa55word"}); err != nil {
		t.Fatalf("Pull with auth: %v", err)
	}
	if env, err := c.ImageEnv(ctx(t), ref); err != nil || !slices.Contains(env, "PRIVATE=yes") {
		t.Errorf("ImageEnv = %q, %v", env, err)
	}
}

// A pull whose registry stops answering ends at the context's deadline.
func TestPullHung(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	e := testenv.Engine(t)
	c, metrics := newClient(t)
	var hang atomic.Bool
	reg := e.Registry(t, testenv.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hang.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				<-r.Context().Done()
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	d := reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "hung"})
	hang.Store(true)

	pctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := c.Pull(pctx, reg.Host()+"/acme/web@"+d, deploy.Auth{})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung Pull: error = %v, want DeadlineExceeded", err)
	}
	if took > 10*time.Second {
		t.Errorf("hung Pull returned after %v, long after its 2s deadline", took)
	}
	if n := errorsTotal(t, metrics, "pull"); n != 1 {
		t.Errorf("errors_total{op=pull} = %v, want 1", n)
	}
}

type fixture struct {
	e    *testenv.Eng
	c    *docker.Client
	m    *prometheus.Registry
	reg  *testenv.Reg
	ref  string // image pinned by digest, pulled
	name string
}

func newFixture(t testing.TB, img testenv.AppImage) *fixture {
	t.Helper()
	f := &fixture{e: testenv.Engine(t)}
	f.c, f.m = newClient(t)
	f.reg = f.e.Registry(t)
	f.ref = f.reg.Host() + "/acme/web@" + f.reg.Push(t, "acme/web", "v1", img)
	if err := f.c.Pull(ctx(t), f.ref, deploy.Auth{}); err != nil {
		t.Fatal(err)
	}
	f.name = f.e.UniqueName(t, "web")
	return f
}

func TestContainerLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "1.4.2", Env: []string{"DEBUG=True", "STATIC_URL=/static/"}})
	front, back := f.e.UniqueName(t, "front"), f.e.UniqueName(t, "back")
	f.e.Network(t, front)
	f.e.Network(t, back)

	spec := deploy.Spec{
		Name:     f.name,
		Image:    f.ref,
		Env:      []string{"STATIC_URL=/staging/static/", "SECRET_KEY=s3"},
		Labels:   map[string]string{deploy.LabelManaged: "true", deploy.LabelDeployment: "web-staging"},
		Ports:    []string{"127.0.0.1::8000"},
		Volumes:  []string{t.TempDir() + ":/data:ro", "/scratch"},
		Networks: []string{front, back},
		Aliases:  []string{"web", "api"},
		Restart:  "on-failure:3",
	}
	id, err := f.c.Create(ctx(t), spec)
	if err != nil {
		t.Fatal(err)
	}

	raw := f.e.Inspect(t, id)
	if !slices.Contains(raw.Config.Env, "SECRET_KEY=s3") || !slices.Contains(raw.Config.Env, "DEBUG=True") {
		t.Errorf("env = %q, want the spec's over the image's", raw.Config.Env)
	}
	if raw.HostConfig.RestartPolicy.Name != "on-failure" || raw.HostConfig.RestartPolicy.MaximumRetryCount != 3 {
		t.Errorf("restart policy = %+v", raw.HostConfig.RestartPolicy)
	}
	if len(raw.HostConfig.PortBindings) != 1 || len(raw.HostConfig.Binds) != 1 {
		t.Errorf("port bindings = %v, binds = %v", raw.HostConfig.PortBindings, raw.HostConfig.Binds)
	}
	for _, n := range []string{front, back} {
		ep := raw.NetworkSettings.Networks[n]
		if ep == nil {
			t.Errorf("not connected to %s before start; networks: %v", n, raw.NetworkSettings.Networks)
			continue
		}
		if !slices.Contains(ep.Aliases, "web") || !slices.Contains(ep.Aliases, "api") {
			t.Errorf("aliases on %s = %v, want web and api", n, ep.Aliases)
		}
	}

	ctr, err := f.c.Inspect(ctx(t), f.name)
	if err != nil {
		t.Fatal(err)
	}
	if ctr.ID != id || ctr.Name != f.name || ctr.Image != f.ref || ctr.Running || ctr.Status != "created" || ctr.IP != "" ||
		!ctr.Managed() || ctr.Labels[deploy.LabelDeployment] != "web-staging" || !ctr.StartedAt.IsZero() {
		t.Errorf("Inspect of a created container = %+v", ctr)
	}

	if err := f.c.Start(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	version, env := f.e.AppGet(t, f.name)
	if version != "1.4.2" || env["STATIC_URL"] != "/staging/static/" || env["DEBUG"] != "True" {
		t.Errorf("app answers version %q, env %v", version, env)
	}
	if ctr, err = f.c.Inspect(ctx(t), id); err != nil || !ctr.Running || ctr.Status != "running" || ctr.StartedAt.IsZero() {
		t.Errorf("Inspect of a started container = %+v, %v", ctr, err)
	}
	if want := f.e.Inspect(t, id).NetworkSettings.Networks[front].IPAddress.String(); ctr.IP != want {
		t.Errorf("IP = %q, want %q, its address on the first network", ctr.IP, want)
	}
	// The published port answers too.
	bound := f.e.Inspect(t, id).NetworkSettings.Ports
	for _, bs := range bound {
		if len(bs) == 0 {
			continue
		}
		resp, err := http.Get("http://" + bs[0].HostIP.String() + ":" + bs[0].HostPort + "/healthz")
		if err != nil {
			t.Errorf("GET through the published port: %v", err)
		} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
			t.Errorf("GET through the published port: %s", resp.Status)
		}
	}

	if err := f.c.Stop(ctx(t), id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if ctr, err = f.c.Inspect(ctx(t), id); err != nil || ctr.Running || ctr.Status != "exited" || ctr.ExitCode != 0 {
		t.Errorf("Inspect of a stopped container = %+v, %v", ctr, err)
	}
	if err := f.c.Stop(ctx(t), id, 10*time.Second); err != nil {
		t.Errorf("stopping a stopped container: %v", err)
	}

	prev := f.name + ".liftoff-prev"
	if err := f.c.Rename(ctx(t), id, prev); err != nil {
		t.Fatal(err)
	}
	if ctr, err = f.c.Inspect(ctx(t), prev); err != nil || ctr.ID != id || ctr.Name != prev {
		t.Errorf("Inspect after rename = %+v, %v", ctr, err)
	}
	if _, err := f.c.Inspect(ctx(t), f.name); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Inspect of the old name: error = %v, want ErrNotFound", err)
	}

	if err := f.c.Remove(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Remove(ctx(t), id); err != nil {
		t.Errorf("removing a removed container: %v", err)
	}
	if _, err := f.c.Inspect(ctx(t), id); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Inspect after remove: error = %v, want ErrNotFound", err)
	}
	for _, op := range []string{"inspect", "create", "start", "stop", "rename", "remove"} {
		if n := errorsTotal(t, f.m, op); n != 0 {
			t.Errorf("errors_total{op=%s} = %v, want 0", op, n)
		}
	}
}

func TestCreateFailures(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "1"})
	if _, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name, Image: f.ref}); err != nil {
		t.Fatal(err)
	}
	_, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name, Image: f.ref})
	if err == nil || errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Create on a name in use: error = %v", err)
	}
	if n := errorsTotal(t, f.m, "create"); n != 1 {
		t.Errorf("errors_total{op=create} = %v, want 1", n)
	}

	// The second network does not exist: nothing may be left behind.
	nw := f.e.UniqueName(t, "net")
	f.e.Network(t, nw)
	half := f.name + "-half"
	_, err = f.c.Create(ctx(t), deploy.Spec{Name: half, Image: f.ref, Networks: []string{nw, nw + "-missing"}})
	if err == nil || errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Create with a missing network: error = %v", err)
	}
	if id := f.e.ContainerID(t, half); id != "" {
		t.Errorf("a failed Create left container %s behind", id)
	}

	if _, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name + "-noimage", Image: f.reg.Host() + "/acme/none@sha256:" + strings.Repeat("1", 64)}); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Create from an image not pulled: error = %v, want ErrNotFound", err)
	}
	if _, err := f.c.Inspect(ctx(t), f.name+"-nothing"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Inspect of no container: error = %v, want ErrNotFound", err)
	}
	if n := errorsTotal(t, f.m, "inspect"); n != 0 {
		t.Errorf("errors_total{op=inspect} = %v after a not-found, want 0", n)
	}
}

func TestHealthAndExit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "1", Healthcheck: true})
	// An image without a HEALTHCHECK, which the spec gives one.
	plain := f.reg.Host() + "/acme/web@" + f.reg.Push(t, "acme/web", "plain", testenv.AppImage{Version: "2"})
	if err := f.c.Pull(ctx(t), plain, deploy.Auth{}); err != nil {
		t.Fatal(err)
	}
	check := &deploy.Healthcheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: 200 * time.Millisecond, Timeout: time.Second, Retries: 1}
	healthy := func(c deploy.Container) bool { return c.Health == "healthy" }
	for _, tc := range []struct {
		suffix string
		image  string
		env    []string
		check  *deploy.Healthcheck
		until  func(deploy.Container) bool
	}{
		{"healthy", f.ref, nil, nil, healthy},
		{"unhealthy", f.ref, []string{"TESTAPP_HEALTH=fail"}, nil, func(c deploy.Container) bool { return c.Health == "unhealthy" }},
		{"spec-check", plain, nil, check, healthy},
		{"crash", f.ref, []string{"TESTAPP_EXIT=3"}, nil, func(c deploy.Container) bool {
			return c.Status == "exited" && c.ExitCode == 3 && c.RestartCount == 2
		}},
	} {
		t.Run(tc.suffix, func(t *testing.T) {
			t.Parallel()
			id, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name + "-" + tc.suffix, Image: tc.image, Env: tc.env, Healthcheck: tc.check, Restart: "on-failure:2"})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.c.Start(ctx(t), id); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				c, err := f.c.Inspect(ctx(t), id)
				if err != nil {
					t.Fatal(err)
				}
				if tc.until(c) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("container never got there: %+v", c)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

func TestList(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "1"})
	labels := map[string]string{deploy.LabelManaged: "true", deploy.LabelDeployment: f.name}
	for _, suffix := range []string{"", ".liftoff-prev"} {
		if _, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name + suffix, Image: f.ref, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name + "-other", Image: f.ref, Labels: map[string]string{deploy.LabelManaged: "true"}}); err != nil {
		t.Fatal(err)
	}
	got, err := f.c.List(ctx(t), map[string]string{deploy.LabelDeployment: f.name})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	if want := []string{f.name, f.name + ".liftoff-prev"}; !slices.Equal(names, want) {
		t.Errorf("List = %v, want %v", names, want)
	}
}

// SetAliases publishes a running container under aliases on every network
// it is on, and it keeps running and answering.
func TestSetAliases(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "2.0.0"})
	front, back := f.e.UniqueName(t, "front"), f.e.UniqueName(t, "back")
	f.e.Network(t, front)
	f.e.Network(t, back)
	id, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name, Image: f.ref, Networks: []string{front, back}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Start(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{front, back} {
		if ep := f.e.Inspect(t, id).NetworkSettings.Networks[n]; ep == nil || slices.Contains(ep.Aliases, "web") {
			t.Fatalf("before SetAliases, endpoint on %s = %+v", n, ep)
		}
	}
	if err := f.c.SetAliases(ctx(t), id, []string{front, back}, []string{"web"}); err != nil {
		t.Fatal(err)
	}
	raw := f.e.Inspect(t, id)
	for _, n := range []string{front, back} {
		if ep := raw.NetworkSettings.Networks[n]; ep == nil || !slices.Contains(ep.Aliases, "web") {
			t.Errorf("after SetAliases, endpoint on %s = %+v, want alias web", n, ep)
		}
	}
	if !raw.State.Running {
		t.Error("the container stopped")
	}
	if v, _ := f.e.AppGet(t, f.name); v != "2.0.0" {
		t.Errorf("serves %q after the reconnect", v)
	}
	if err := f.c.SetAliases(ctx(t), id, []string{f.e.UniqueName(t, "nosuch")}, []string{"web"}); err == nil {
		t.Error("SetAliases on a network the container is not on: no error")
	}
}

// Drain takes a running container out of the DNS of a network with a
// subnet of its own, keeping its address, so that a request in flight
// finishes; on a network created plainly, where the engine will not give it
// its address back, it leaves the container as it is, aliases and all.
func TestDrain(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "3.0.0"})
	sub, plain := f.e.UniqueName(t, "sub"), f.e.UniqueName(t, "plain")
	f.e.SubnetNetwork(t, sub)
	f.e.Network(t, plain)
	id, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name, Image: f.ref, Networks: []string{sub, plain}, Aliases: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Start(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.e.AppGet(t, f.name); v != "3.0.0" {
		t.Fatalf("serves %q", v)
	}
	before := f.e.Inspect(t, id).NetworkSettings.Networks
	ip := before[sub].IPAddress.String()

	// A request in flight on the subnet network through the drain: 40
	// lines, 50ms apart.
	lines := make(chan time.Time, 64)
	done := make(chan error, 1)
	go func() {
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Get("http://" + ip + ":8000/stream?n=40&every=50ms")
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- time.Now()
		}
		done <- sc.Err()
	}()
	var got []time.Time
	select {
	case at := <-lines:
		got = append(got, at)
	case err := <-done:
		t.Fatalf("the request in flight: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the request in flight got no line")
	}

	start := time.Now()
	drained, kept, err := f.c.Drain(ctx(t), id)
	took := time.Since(start)
	if err != nil || !slices.Equal(drained, []string{sub}) || !slices.Equal(kept, []string{plain}) {
		t.Fatalf("Drain = %v, %v, %v; want [%s], [%s]", drained, kept, err, sub, plain)
	}
	after := f.e.Inspect(t, id)
	if !after.State.Running {
		t.Error("the container stopped")
	}
	if ep := after.NetworkSettings.Networks[sub]; ep == nil || ep.IPAddress != before[sub].IPAddress || slices.Contains(ep.Aliases, "web") {
		t.Errorf("after Drain, endpoint on %s = %+v; want %s without the alias web", sub, ep, ip)
	}
	if ep := after.NetworkSettings.Networks[plain]; ep == nil || ep.IPAddress != before[plain].IPAddress || !slices.Contains(ep.Aliases, "web") {
		t.Errorf("after Drain, endpoint on %s = %+v; want it as it was, %s with the alias web", plain, ep, before[plain].IPAddress)
	}

	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the request in flight failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the request in flight did not finish")
	}
	close(lines)
	for at := range lines {
		got = append(got, at)
	}
	var gap time.Duration
	for i := 1; i < len(got); i++ {
		gap = max(gap, got[i].Sub(got[i-1]))
	}
	if len(got) != 40 {
		t.Errorf("the request in flight got %d lines, want 40", len(got))
	}
	t.Logf("Drain took %s; the request in flight got its %d lines, the longest wait between two %s (50ms without the drain)", took.Round(time.Millisecond), len(got), gap.Round(time.Millisecond))
	if v, _ := f.e.AppGet(t, f.name); v != "3.0.0" {
		t.Errorf("serves %q after the drain", v)
	}

	// Nothing is left to drain; a stopped container is left alone; a
	// removed one is not found.
	if drained, kept, err := f.c.Drain(ctx(t), id); err != nil || len(drained) != 0 || !slices.Equal(kept, []string{plain}) {
		t.Errorf("Drain again = %v, %v, %v; want nothing drained, [%s] kept", drained, kept, err, plain)
	}
	if err := f.c.Stop(ctx(t), id, time.Second); err != nil {
		t.Fatal(err)
	}
	if drained, kept, err := f.c.Drain(ctx(t), id); err != nil || len(drained)+len(kept) != 0 {
		t.Errorf("Drain of a stopped container = %v, %v, %v; want nothing", drained, kept, err)
	}
	if err := f.c.Remove(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.c.Drain(ctx(t), id); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Drain of a removed container: %v, want ErrNotFound", err)
	}
}
