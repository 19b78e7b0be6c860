package testenv_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

func head(t *testing.T, ref string, opts ...remote.Option) (string, error) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r, append(opts, remote.WithContext(t.Context()))...)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func TestRegistryPushAndDelete(t *testing.T) {
	t.Parallel()
	reg := testenv.Registry(t)
	d1 := reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "1"})
	d2 := reg.Push(t, "acme/web", "v2", testenv.AppImage{Version: "2", Env: []string{"DEBUG=True"}})
	if d1 == d2 {
		t.Fatalf("versions 1 and 2 have the same digest %s", d1)
	}
	if again := reg.Push(t, "acme/web", "latest", testenv.AppImage{Version: "1"}); again != d1 {
		t.Errorf("pushing the same image again gave %s, want %s", again, d1)
	}
	if got, err := head(t, reg.Ref("acme/web", "v2")); err != nil || got != d2 {
		t.Errorf("HEAD v2 = %s, %v; want %s", got, err, d2)
	}

	reg.Delete(t, "acme/web", "v2")
	if _, err := head(t, reg.Ref("acme/web", "v2")); statusOf(err) != http.StatusNotFound {
		t.Errorf("HEAD deleted tag: err = %v, want a 404", err)
	}
	if got, err := head(t, reg.Host()+"/acme/web@"+d2); err != nil || got != d2 {
		t.Errorf("HEAD by digest after deleting the tag = %s, %v; want %s", got, err, d2)
	}

	reg.Close()
	if _, err := head(t, reg.Ref("acme/web", "v1")); err == nil || statusOf(err) != 0 {
		t.Errorf("HEAD on a closed registry: err = %v, want a connection error", err)
	}
}

func TestRegistryBasicAuth(t *testing.T) {
	t.Parallel()
	reg := testenv.Registry(t, testenv.WithBasicAuth("ci", "s3cret"))
	d := reg.Push(t, "acme/private", "v1", testenv.AppImage{Version: "1"})
	if _, err := head(t, reg.Ref("acme/private", "v1")); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("anonymous HEAD: err = %v, want a 401", err)
	}
	auth := remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "ci", Password: "s3cret"}))
	if got, err := head(t, reg.Ref("acme/private", "v1"), auth); err != nil || got != d {
		t.Errorf("HEAD with auth = %s, %v; want %s", got, err, d)
	}
}

func TestUniqueName(t *testing.T) {
	t.Parallel()
	e := testenv.Engine(t)
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]+$`)
	a, b := e.UniqueName(t, "Web App"), e.UniqueName(t, "Web App")
	if a == b {
		t.Errorf("UniqueName twice gave %s", a)
	}
	for _, n := range []string{a, b, e.UniqueName(t, ""), e.UniqueName(t, "-x/y")} {
		if !valid.MatchString(n) {
			t.Errorf("UniqueName gave %q, not a valid lowercase container name", n)
		}
	}
}

// TestEngineSweep: what a test made through an Eng is gone when it ends,
// and nothing else is: not an image named after the host of a registry the
// test had closed, as one pulled from another test's registry that got the
// same port would be.
func TestEngineSweep(t *testing.T) {
	t.Parallel()
	e := testenv.Engine(t)
	var name, pulled, reused string
	t.Cleanup(func() {
		if reused != "" {
			e.Client().ImageRemove(context.Background(), reused, client.ImageRemoveOptions{})
		}
	})
	t.Run("test", func(t *testing.T) {
		te := testenv.Engine(t)
		reg := te.Registry(t)
		pulled = reg.Host() + "/acme/web@" + reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "sweep"})
		name = te.UniqueName(t, "sweep")
		run(t, te, pulled, name, nil)
		reg.Close()
		// Another test's registry gets the port; the engine pulls from it.
		reused = reg.Host() + "/acme/other:v1"
		if _, err := te.Client().ImageTag(t.Context(), client.ImageTagOptions{Source: pulled, Target: reused}); err != nil {
			t.Fatal(err)
		}
	})
	if got := e.Containers(t, name); len(got) != 0 {
		t.Errorf("containers left: %v", got)
	}
	if _, err := e.Client().ImageInspect(t.Context(), pulled); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect the image the test pulled: %v, want not found", err)
	}
	if _, err := e.Client().ImageInspect(t.Context(), reused); err != nil {
		t.Errorf("the image of the other test's registry was removed too: %v", err)
	}
}

// run pulls ref and starts a container from it on a fresh network.
func run(t *testing.T, e *testenv.Eng, ref, name string, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cli := e.Client()
	pull, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if err := pull.Wait(ctx); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	nw := e.UniqueName(t, "net")
	e.Network(t, nw)
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: ref, Env: env},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(nw)},
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return res.ID
}

func TestAppAnswers(t *testing.T) {
	t.Parallel()
	e := testenv.Engine(t)
	reg := e.Registry(t)
	d := reg.Push(t, "acme/web", "staging", testenv.AppImage{Version: "1.4.2", Env: []string{"DEBUG=True", "STATIC_URL=/img/"}})
	name := e.UniqueName(t, "app")
	id := run(t, e, reg.Host()+"/acme/web@"+d, name, []string{"STATIC_URL=/staging/", "SECRET_KEY=k"})

	version, env := e.AppGet(t, name)
	if version != "1.4.2" {
		t.Errorf("version = %q, want 1.4.2", version)
	}
	for k, want := range map[string]string{"DEBUG": "True", "STATIC_URL": "/staging/", "SECRET_KEY": "k"} {
		if env[k] != want {
			t.Errorf("env[%s] = %q, want %q", k, env[k], want)
		}
	}
	if got := e.ContainerID(t, name); got != id {
		t.Errorf("ContainerID = %s, want %s", got, id)
	}
	if got := e.RunningContainers(t, name); len(got) != 1 || got[0] != name {
		t.Errorf("RunningContainers = %v, want [%s]", got, name)
	}
	if got := e.ContainerID(t, name+"-none"); got != "" {
		t.Errorf("ContainerID of no container = %q, want empty", got)
	}
	if c := e.Inspect(t, name); c.ID != id || !c.State.Running || c.State.StartedAt != e.StartedAt(t, id) {
		t.Errorf("Inspect = %s running %v started %s; want %s running, started as StartedAt says", c.ID, c.State.Running, c.State.StartedAt, id)
	}

	// The app stops on SIGTERM at once: exit code 0, not 137 from a kill.
	timeout := 30
	if _, err := e.Client().ContainerStop(t.Context(), id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, e, id); code != 0 {
		t.Errorf("exit code after stop = %d, want 0", code)
	}
	if got := e.Containers(t, name); len(got) != 1 || got[0] != name+" exited" {
		t.Errorf("Containers = %v, want [%s exited]", got, name)
	}
	if got := e.RunningContainers(t, name); len(got) != 0 {
		t.Errorf("RunningContainers of a stopped container = %v, want none", got)
	}
}

func exitCode(t *testing.T, e *testenv.Eng, id string) int {
	t.Helper()
	return e.Inspect(t, id).State.ExitCode
}

func TestAppExits(t *testing.T) {
	t.Parallel()
	e := testenv.Engine(t)
	reg := e.Registry(t)
	d := reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "1"})
	ref := reg.Host() + "/acme/web@" + d
	for _, tc := range []struct {
		name string
		env  []string
		code int
	}{
		{"exit", []string{"TESTAPP_EXIT=3"}, 3},
		{"exit-after", []string{"TESTAPP_EXIT_AFTER=300ms"}, 1},
		{"exit-after-code", []string{"TESTAPP_EXIT_AFTER=100ms", "TESTAPP_EXIT_CODE=7"}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := run(t, e, ref, e.UniqueName(t, tc.name), tc.env)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			w := e.Client().ContainerWait(ctx, id, client.ContainerWaitOptions{})
			select {
			case res := <-w.Result:
				if int(res.StatusCode) != tc.code {
					t.Errorf("exit code = %d, want %d", res.StatusCode, tc.code)
				}
			case err := <-w.Error:
				t.Fatalf("wait: %v", err)
			}
		})
	}
}

func TestAppHealthcheck(t *testing.T) {
	t.Parallel()
	e := testenv.Engine(t)
	reg := e.Registry(t)
	d := reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "1", Healthcheck: true})
	ref := reg.Host() + "/acme/web@" + d
	for _, tc := range []struct {
		name string
		env  []string
		want container.HealthStatus
	}{
		{"healthy", nil, container.Healthy},
		{"unhealthy", []string{"TESTAPP_HEALTH=fail"}, container.Unhealthy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := run(t, e, ref, e.UniqueName(t, tc.name), tc.env)
			deadline := time.Now().Add(30 * time.Second)
			for {
				var got container.HealthStatus
				if h := e.Inspect(t, id).State.Health; h != nil {
					got = h.Status
				}
				if got == tc.want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("health = %q, want %q", got, tc.want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
