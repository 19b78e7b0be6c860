package testenv_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
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
	testenv.Slow(t)
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

func TestRegistryWithHandler(t *testing.T) {
	t.Parallel()
	reg := testenv.Registry(t, testenv.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "another registry", http.StatusTeapot)
	})))
	if _, err := head(t, reg.Ref("acme/web", "v1")); statusOf(err) != http.StatusTeapot {
		t.Errorf("HEAD: err = %v, want the handler's 418", err)
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
	testenv.Slow(t)
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
	return runWith(t, e, ref, name, container.Config{Env: env}, nil)
}

// runWith is run with a config (its Image is ref) and bind mounts.
func runWith(t *testing.T, e *testenv.Eng, ref, name string, cfg container.Config, binds []string) string {
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
	cfg.Image = ref
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &cfg,
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(nw), Binds: binds},
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
	testenv.Slow(t)
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
	testenv.Slow(t)
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

// The release mode, run on the host (the app is a static linux/amd64
// binary): no engine needed.
func TestAppRelease(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the test app is built for linux/amd64")
	}
	bin := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(bin, testenv.AppBinary(t), 0o755); err != nil {
		t.Fatal(err)
	}
	release := func(t *testing.T, env ...string) *exec.Cmd {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, bin, testenv.ReleaseCmd()...)
		cmd.Env = env
		return cmd
	}
	outputs := func(t *testing.T, cmd *exec.Cmd) (stdout, stderr []string, code int) {
		t.Helper()
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return strings.Fields(strings.ReplaceAll(out.String(), " ", "_")), strings.Fields(strings.ReplaceAll(errOut.String(), " ", "_")), cmd.ProcessState.ExitCode()
	}
	// Lines are compared without the version: there is no /version on
	// the host.
	line := regexp.MustCompile(`^release_.*_line_(\d+)_(stdout|stderr)$`)
	numbers := func(lines []string, stream string) (n []string) {
		for _, l := range lines {
			if m := line.FindStringSubmatch(l); m != nil && m[2] == stream {
				n = append(n, m[1])
			}
		}
		return n
	}

	t.Run("default", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(t.TempDir(), "marker")
		for range 2 {
			stdout, stderr, code := outputs(t, release(t, "TESTAPP_MARKER_FILE="+marker))
			if code != 0 || len(stdout) != 1 || !slices.Equal(numbers(stdout, "stdout"), []string{"0"}) || len(stderr) != 0 {
				t.Errorf("release = exit %d, stdout %q, stderr %q; want 0, one line on stdout", code, stdout, stderr)
			}
		}
		b, err := os.ReadFile(marker)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) != 2 || !regexp.MustCompile(`^release .* \d{19}$`).MatchString(lines[1]) {
			t.Errorf("marker file = %q, want two lines release VERSION UNIXNANOS", b)
		}
	})
	t.Run("lines-var-exit", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := outputs(t, release(t, "TESTAPP_RELEASE_LINES=5", "TESTAPP_RELEASE_EXIT=3",
			"TESTAPP_PRINT_VAR=SECRET_KEY,EMPTY,NONE", "SECRET_KEY=s3cr3t", "EMPTY="))
		if code != 3 {
			t.Errorf("exit code = %d, want 3", code)
		}
		if got := numbers(stdout, "stdout"); !slices.Equal(got, []string{"0", "2", "4"}) {
			t.Errorf("stdout lines %v (%q), want 0 2 4", got, stdout)
		}
		if got := numbers(stderr, "stderr"); !slices.Equal(got, []string{"1", "3"}) || len(stderr) != 2 {
			t.Errorf("stderr lines %v (%q), want 1 3", got, stderr)
		}
		for _, want := range []string{"SECRET_KEY=s3cr3t", "EMPTY=", "NONE_unset"} {
			if !slices.Contains(stdout, want) {
				t.Errorf("stdout = %q, want %s", stdout, want)
			}
		}
	})
	t.Run("bad-env", func(t *testing.T) {
		t.Parallel()
		if _, _, code := outputs(t, release(t, "TESTAPP_RELEASE_EXIT=three")); code != 2 {
			t.Errorf("exit code = %d, want 2", code)
		}
	})
	t.Run("hang-until-term", func(t *testing.T) {
		t.Parallel()
		cmd := release(t, "TESTAPP_RELEASE_SLEEP=1h")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// It prints once it handles SIGTERM.
		if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 143 {
			t.Errorf("exit code after SIGTERM = %d, want 143 (-1: killed at the test's deadline)", code)
		}
	})
}

// A release run in a container appends to the marker file, and a server
// started after it answers what the file held when it started, not what was
// added later.
func TestAppReleaseMarker(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	e := testenv.Engine(t)
	reg := e.Registry(t)
	ref := reg.Host() + "/acme/web@" + reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "2.1"})
	dir := t.TempDir()
	env := []string{"TESTAPP_MARKER_FILE=/m/marker"}
	binds := []string{dir + ":/m"}

	id := runWith(t, e, ref, e.UniqueName(t, "release"), container.Config{Cmd: testenv.ReleaseCmd(), Env: env}, binds)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	w := e.Client().ContainerWait(ctx, id, client.ContainerWaitOptions{})
	select {
	case res := <-w.Result:
		if res.StatusCode != 0 {
			t.Fatalf("release exit code = %d, want 0", res.StatusCode)
		}
	case err := <-w.Error:
		t.Fatalf("wait: %v", err)
	}
	marker := filepath.Join(dir, "marker")
	released, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^release 2\.1 \d{19}\n$`).Match(released) {
		t.Fatalf("marker file after the release = %q, want one line release 2.1 UNIXNANOS", released)
	}

	name := e.UniqueName(t, "server")
	runWith(t, e, ref, name, container.Config{Env: env}, binds)
	info := appInfo(t, e, name)
	if info.MarkerAtStart != string(released) {
		t.Errorf("marker_at_start = %q, want %q", info.MarkerAtStart, released)
	}
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("later\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if again := appInfo(t, e, name); again.MarkerAtStart != string(released) {
		t.Errorf("marker_at_start after the file changed = %q, want what it held at start, %q", again.MarkerAtStart, released)
	}

	// Without the file: empty; without the variable: absent.
	none := e.UniqueName(t, "nomarker")
	runWith(t, e, ref, none, container.Config{Env: []string{"TESTAPP_MARKER_FILE=/m/none"}}, binds)
	if got := appInfo(t, e, none).MarkerAtStart; got != "" {
		t.Errorf("marker_at_start without the file = %q, want empty", got)
	}
}

// appInfo asks the test app in the named container, retrying while it
// starts.
func appInfo(t *testing.T, e *testenv.Eng, name string) testenv.App {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		a, err := e.AppInfo(ctx, name)
		cancel()
		if err == nil {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("test app in %s does not answer: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
