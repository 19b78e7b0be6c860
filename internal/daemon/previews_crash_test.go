package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestCrashDuringPreview: liftoff SIGKILLed during a preview's first
// deploy (its container created but not started; started and not yet past
// its gate) starts again with no container of the preview left unrouted:
// the repair undoes the interrupted deploy, the push is deployed again,
// and the front door serves the preview at its host; the deployment's own
// container is untouched throughout.
func TestCrashDuringPreview(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	eng := testenv.Engine(t)
	reg := eng.Registry(t)
	repo := "acme/" + eng.UniqueName(t, "pvcrash")
	reg.Push(t, repo, "v1", testenv.AppImage{Version: "v1"})
	reg.Push(t, repo, "pr-1", testenv.AppImage{Version: "p1"})
	for _, tc := range []struct {
		step   string
		during bool
	}{
		{deploy.StepStart, false},
		{deploy.StepGate, true},
	} {
		t.Run(fmt.Sprintf("%s/during=%v", tc.step, tc.during), func(t *testing.T) {
			t.Parallel()
			e := testenv.Engine(t)
			name := e.UniqueName(t, "pvcrash")
			preview := name + "-pr-1"
			door := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
			lines := "    proxy: {hosts: [app.crash.test], port: 8000, drain_timeout: 5s}\n" +
				"    previews: {tags: \"glob:pr-*\", host: \"{tag}.crash.test\", ttl: 1h, max: 3}\n" +
				fmt.Sprintf("front_door: {listen: %q}\n", door)
			dir := t.TempDir()
			db, path := filepath.Join(dir, "liftoff.db"), filepath.Join(dir, "liftoff.yaml")
			if err := os.WriteFile(path, []byte(fmt.Sprintf(crashConfig, name, reg.Host(), repo, db, lines)), 0o600); err != nil {
				t.Fatal(err)
			}
			d := startCrashDaemon(t, path, liftoff.Options{})
			d.hook(t, repo, "v1")
			if r := d.next(t); r.Outcome != deploy.Succeeded {
				t.Fatalf("deploy of v1: %s %v", r.Outcome, r.Err)
			}
			main := e.ContainerID(t, name)
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}

			died := runCrashChild(t, path, preview, tc.step, tc.during, nil, func(base string) {
				crashHook(t, base, repo, "pr-1", true)
			})
			if want := map[bool]string{false: "at ", true: "during "}[tc.during] + tc.step; died != want {
				t.Fatalf("the child died %q, want %q", died, want)
			}
			t.Logf("left by the crash: %v", containerStates(t, e, preview))

			startCrashDaemon(t, path, liftoff.Options{})
			waitSettled(t, db)
			eventually(t, "the preview served at its host after the restart", func() bool {
				st, v := doorGet(t, door, "pr-1.crash.test")
				return st == 200 && v == "p1"
			})
			if got := containerStates(t, e, preview); !slices.Equal(got, []string{preview + " running"}) {
				t.Errorf("the preview's containers after the restart: %v, want only %s running", got, preview)
			}
			if got := containerStates(t, e, name); !slices.Equal(got, []string{name + " running"}) || e.ContainerID(t, name) != main {
				t.Errorf("the deployment's container after the restart: %v, want the v1 one untouched", got)
			}
			if st, v := doorGet(t, door, "app.crash.test"); st != 200 || v != "v1" {
				t.Errorf("the deployment's host: %d %q, want v1", st, v)
			}
		})
	}
}
