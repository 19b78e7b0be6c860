package docker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// releaseOf is a one-off run of the test app's release mode from f's image,
// named f.name-suffix.
func releaseOf(f *fixture, suffix string, env ...string) deploy.OneOff {
	return deploy.OneOff{
		Name:        f.name + "-" + suffix,
		Image:       f.ref,
		Cmd:         testenv.ReleaseCmd(),
		Env:         env,
		Labels:      map[string]string{deploy.LabelManaged: "true", deploy.LabelDeployment: "web"},
		Timeout:     time.Minute,
		OutputLimit: 64 << 10,
	}
}

// gone fails the test if a container of that name exists.
func gone(t *testing.T, f *fixture, name string) {
	t.Helper()
	if id := f.e.ContainerID(t, name); id != "" {
		t.Errorf("container %s (%s) is left behind: %v", name, id, f.e.Containers(t, name))
	}
}

// lines returns out's lines, sorted: stdout and stderr are two pipes, and
// the engine may log a line of one before the line of the other written
// just before it.
func lines(out []byte) []string {
	l := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	slices.Sort(l)
	return l
}

// background is a RunOnce running in the background: res and err are
// set once done is closed.
type background struct {
	done chan struct{}
	res  deploy.OneOffResult
	err  error
}

func runAsync(ctx context.Context, f *fixture, spec deploy.OneOff) *background {
	b := &background{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.res, b.err = f.c.RunOnce(ctx, spec)
	}()
	return b
}

// waitFile waits for the file at path to hold something: the release
// command writes it when it starts.
func (b *background) waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		data, err := os.ReadFile(path)
		if err == nil && len(data) > 0 {
			return
		}
		select {
		case <-b.done:
			t.Fatalf("the run ended before it wrote %s: %+v, %v", path, b.res, b.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunOnce(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "1.5", Healthcheck: true})

	// The subtests run in parallel; the group ends when they all have.
	t.Run("group", func(t *testing.T) {
		t.Run("exit-0", func(t *testing.T) {
			t.Parallel()
			spec := releaseOf(f, "ok", "TESTAPP_RELEASE_LINES=3")
			res, err := f.c.RunOnce(ctx(t), spec)
			if err != nil || res.ExitCode != 0 || res.TimedOut {
				t.Fatalf("RunOnce = %+v, %v; want exit 0", res, err)
			}
			want := []string{"release 1.5 line 0 stdout", "release 1.5 line 1 stderr", "release 1.5 line 2 stdout"}
			if got := lines(res.Output); !slices.Equal(got, want) {
				t.Errorf("output = %q, want the lines %q", res.Output, want)
			}
			gone(t, f, spec.Name)
		})

		t.Run("exit-3", func(t *testing.T) {
			t.Parallel()
			spec := releaseOf(f, "exit3", "TESTAPP_RELEASE_EXIT=3")
			res, err := f.c.RunOnce(ctx(t), spec)
			if err != nil || res.ExitCode != 3 || res.TimedOut {
				t.Fatalf("RunOnce = %+v, %v; want exit 3 and no error", res, err)
			}
			if string(res.Output) != "release 1.5 line 0 stdout\n" {
				t.Errorf("output = %q", res.Output)
			}
			gone(t, f, spec.Name)
		})

		t.Run("timeout", func(t *testing.T) {
			t.Parallel()
			spec := releaseOf(f, "hang", "TESTAPP_RELEASE_SLEEP=1h")
			spec.Timeout = time.Second
			res, err := f.c.RunOnce(ctx(t), spec)
			if err != nil || !res.TimedOut || res.ExitCode == 0 {
				t.Fatalf("RunOnce of a hang = %+v, %v; want TimedOut, a non-zero exit code, no error", res, err)
			}
			t.Logf("killed at its timeout: exit code %d", res.ExitCode)
			gone(t, f, spec.Name)
		})

		t.Run("output-tail", func(t *testing.T) {
			t.Parallel()
			const n, limit = 400, 300
			spec := releaseOf(f, "tail", "TESTAPP_RELEASE_LINES="+strconv.Itoa(n))
			spec.OutputLimit = limit
			res, err := f.c.RunOnce(ctx(t), spec)
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("RunOnce = %+v, %v", res, err)
			}
			if len(res.Output) != limit || !strings.HasSuffix(string(res.Output), "\n") {
				t.Fatalf("output = %d bytes %q, want the last %d", len(res.Output), res.Output, limit)
			}
			// Whole lines but the first, cut; each stream keeps its
			// order, so they are all among the last ones of the two.
			all := strings.Split(strings.TrimSuffix(string(res.Output), "\n"), "\n")
			num := regexp.MustCompile(`^release 1\.5 line (\d+) (stdout|stderr)$`)
			for _, l := range all[1:] {
				m := num.FindStringSubmatch(l)
				if m == nil {
					t.Errorf("line %q in the output", l)
					continue
				}
				if i, _ := strconv.Atoi(m[1]); i < n-2*limit/len("release 1.5 line 399 stdout\n")-2 {
					t.Errorf("line %q is not among the last ones: output %q", l, res.Output)
				}
			}

			spec.OutputLimit = 5
			if res, err := f.c.RunOnce(ctx(t), spec); err != nil || (string(res.Output) != "dout\n" && string(res.Output) != "derr\n") {
				t.Errorf("RunOnce with OutputLimit 5 = %+v, %v; want the last 5 bytes", res, err)
			}
			spec.OutputLimit = 0
			if res, err := f.c.RunOnce(ctx(t), spec); err != nil || len(res.Output) != 0 {
				t.Errorf("RunOnce with OutputLimit 0 = %+v, %v; want no output", res, err)
			}
			gone(t, f, spec.Name)
		})

		t.Run("env-and-volume", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			spec := releaseOf(f, "vol", "TESTAPP_MARKER_FILE=/out/marker", "TESTAPP_PRINT_VAR=SECRET_KEY", "SECRET_KEY=s3cr3t")
			spec.Volumes = []string{dir + ":/out"}
			for i := range 2 {
				res, err := f.c.RunOnce(ctx(t), spec)
				if err != nil || res.ExitCode != 0 {
					t.Fatalf("run %d: RunOnce = %+v, %v", i, res, err)
				}
				if !slices.Contains(lines(res.Output), "SECRET_KEY=s3cr3t") {
					t.Errorf("run %d: output = %q, want SECRET_KEY=s3cr3t: the env did not reach it", i, res.Output)
				}
				gone(t, f, spec.Name)
			}
			b, err := os.ReadFile(filepath.Join(dir, "marker"))
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^(release 1\.5 \d+\n){2}$`).Match(b) {
				t.Errorf("marker file on the volume = %q, want a line of each run", b)
			}
		})

		// While it runs: on both networks, with no alias there, no port
		// published, no restart policy, no health check, not auto-removed.
		t.Run("networks-no-alias-no-ports", func(t *testing.T) {
			t.Parallel()
			front, back := f.e.UniqueName(t, "front"), f.e.UniqueName(t, "back")
			f.e.Network(t, front)
			f.e.Network(t, back)
			dir := t.TempDir()
			spec := releaseOf(f, "net", "TESTAPP_MARKER_FILE=/out/marker", "TESTAPP_RELEASE_SLEEP=1h")
			spec.Volumes = []string{dir + ":/out"}
			spec.Networks = []string{front, back}
			spec.Timeout = 10 * time.Minute
			run := runAsync(ctx(t), f, spec)
			run.waitFile(t, filepath.Join(dir, "marker"))

			raw := f.e.Inspect(t, spec.Name)
			if !raw.State.Running {
				t.Fatalf("state = %+v, want running", raw.State)
			}
			for _, n := range []string{front, back} {
				ep := raw.NetworkSettings.Networks[n]
				if ep == nil {
					t.Errorf("not on network %s: %v", n, raw.NetworkSettings.Networks)
					continue
				}
				for _, a := range ep.Aliases {
					if a != raw.ID[:12] { // Docker's own alias
						t.Errorf("alias %q on %s, want none", a, n)
					}
				}
			}
			if len(raw.HostConfig.PortBindings) != 0 || raw.HostConfig.PublishAllPorts {
				t.Errorf("port bindings = %v, publish all = %v; want none", raw.HostConfig.PortBindings, raw.HostConfig.PublishAllPorts)
			}
			for p, bs := range raw.NetworkSettings.Ports {
				if len(bs) != 0 {
					t.Errorf("port %s published at %v", p, bs)
				}
			}
			if rp := raw.HostConfig.RestartPolicy; (rp.Name != "" && rp.Name != "no") || raw.HostConfig.AutoRemove {
				t.Errorf("restart policy = %+v, auto-remove = %v; want neither", rp, raw.HostConfig.AutoRemove)
			}
			if hc := raw.Config.Healthcheck; hc == nil || !slices.Equal(hc.Test, []string{"NONE"}) {
				t.Errorf("health check = %+v, want none (the image has one)", hc)
			}
			if raw.Config.Labels[deploy.LabelManaged] != "true" || raw.Config.Labels[deploy.LabelDeployment] != "web" {
				t.Errorf("labels = %v", raw.Config.Labels)
			}
			if !slices.Equal(raw.Config.Cmd, testenv.ReleaseCmd()) || !slices.Equal(raw.Config.Entrypoint, []string{"/app"}) {
				t.Errorf("entrypoint %q, cmd %q; want the image's entrypoint and the spec's cmd", raw.Config.Entrypoint, raw.Config.Cmd)
			}

			// SIGTERM ends the hang: the command's own exit, no timeout.
			if _, err := f.e.Client().ContainerKill(ctx(t), raw.ID, client.ContainerKillOptions{Signal: "TERM"}); err != nil {
				t.Fatal(err)
			}
			<-run.done
			if run.err != nil || run.res.ExitCode != 143 || run.res.TimedOut {
				t.Errorf("RunOnce = %+v, %v; want exit 143", run.res, run.err)
			}
			gone(t, f, spec.Name)
		})

		t.Run("managed-leftover", func(t *testing.T) {
			t.Parallel()
			spec := releaseOf(f, "left")
			// A crash left the one-off container, running.
			old, err := f.c.Create(ctx(t), deploy.Spec{Name: spec.Name, Image: f.ref, Labels: map[string]string{deploy.LabelManaged: "true"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.c.Start(ctx(t), old); err != nil {
				t.Fatal(err)
			}
			res, err := f.c.RunOnce(ctx(t), spec)
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("RunOnce over a leftover = %+v, %v", res, err)
			}
			if _, err := f.c.Inspect(ctx(t), old); !errors.Is(err, deploy.ErrNotFound) {
				t.Errorf("the leftover: Inspect error = %v, want ErrNotFound", err)
			}
			gone(t, f, spec.Name)
		})

		t.Run("unmanaged-same-name", func(t *testing.T) {
			t.Parallel()
			spec := releaseOf(f, "users")
			theirs, err := f.c.Create(ctx(t), deploy.Spec{Name: spec.Name, Image: f.ref, Labels: map[string]string{"owner": "someone"}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.c.RunOnce(ctx(t), spec)
			if err == nil || !strings.Contains(err.Error(), spec.Name) || errors.Is(err, deploy.ErrNotFound) || errors.Is(err, deploy.ErrUnavailable) {
				t.Fatalf("RunOnce over a container not liftoff's: error = %v; want one naming %s", err, spec.Name)
			}
			t.Logf("refused: %v", err)
			if c, err := f.c.Inspect(ctx(t), spec.Name); err != nil || c.ID != theirs || c.Status != "created" {
				t.Errorf("their container = %+v, %v; want it untouched", c, err)
			}
		})

		t.Run("cancel", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			spec := releaseOf(f, "cancel", "TESTAPP_MARKER_FILE=/out/marker", "TESTAPP_RELEASE_SLEEP=1h")
			spec.Volumes = []string{dir + ":/out"}
			spec.Timeout = 10 * time.Minute
			rctx, cancel := context.WithCancel(ctx(t))
			defer cancel()
			run := runAsync(rctx, f, spec)
			run.waitFile(t, filepath.Join(dir, "marker"))
			cancel()
			// ctx(t) ends in 2 minutes: a run that ignored the
			// cancel would end then, with DeadlineExceeded.
			<-run.done
			if !errors.Is(run.err, context.Canceled) {
				t.Errorf("RunOnce cancelled = %+v, %v; want context.Canceled", run.res, run.err)
			}
			gone(t, f, spec.Name)
		})

		t.Run("start-failure", func(t *testing.T) {
			t.Parallel()
			// A directory mounted over the file /version: the engine
			// creates the container, and cannot start it.
			spec := releaseOf(f, "nostart")
			spec.Volumes = []string{t.TempDir() + ":/version"}
			res, err := f.c.RunOnce(ctx(t), spec)
			if err == nil {
				t.Fatalf("RunOnce of a container that cannot start = %+v, no error", res)
			}
			t.Logf("start failed: %v", err)
			gone(t, f, spec.Name)
		})

		t.Run("create-failure", func(t *testing.T) {
			t.Parallel()
			spec := releaseOf(f, "nonet")
			spec.Networks = []string{f.e.UniqueName(t, "missing")}
			if res, err := f.c.RunOnce(ctx(t), spec); err == nil {
				t.Fatalf("RunOnce on a missing network = %+v, no error", res)
			}
			gone(t, f, spec.Name)
			spec = releaseOf(f, "notimeout")
			spec.Timeout = 0
			if res, err := f.c.RunOnce(ctx(t), spec); err == nil {
				t.Fatalf("RunOnce without a timeout = %+v, no error", res)
			}
			gone(t, f, spec.Name)
		})
	})

	// Only the start that could not be made failed in the engine.
	for op, want := range map[string]float64{"start": 1, "run": 0, "logs": 0, "remove": 0, "inspect": 0} {
		if n := errorsTotal(t, f.m, op); n != want {
			t.Errorf("errors_total{op=%s} = %v, want %v", op, n, want)
		}
	}
}

// BenchmarkRunOnce measures what a release phase adds to a deploy when its
// command does nothing: create, start, wait, read the output, remove.
func BenchmarkRunOnce(b *testing.B) {
	f := newFixture(b, testenv.AppImage{Version: "bench"})
	spec := releaseOf(f, "bench")
	for b.Loop() {
		res, err := f.c.RunOnce(context.Background(), spec)
		if err != nil || res.ExitCode != 0 || len(res.Output) == 0 {
			b.Fatalf("RunOnce: %+v, %v", res, err)
		}
	}
}
