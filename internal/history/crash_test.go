package history

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// helperEnv names the history file TestHelperProcess journals into when the
// test binary runs as the child of TestJournalSurvivesSIGKILL.
const helperEnv = "LIFTOFF_HISTORY_HELPER_DB"

// TestHelperProcess is not a test: run as a child process, it journals a
// deploy up to its stop step, says so, and waits to be killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	r := record("dblood-production")
	id, err := s.Begin(ctx, r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for _, step := range []string{deploy.StepPull, deploy.StepPrepare, deploy.StepStop} {
		r.Step = step
		r.Digest, r.Previous, r.PrevID = "sha256:new", "sha256:old", "old-container"
		if err := s.Step(ctx, id, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
	// Never closed: the point is that nothing after Step's return is needed.
	fmt.Printf("journaled %d\n", id)
	time.Sleep(time.Minute)
	os.Exit(4) // not killed: the parent will say so
}

// TestJournalSurvivesSIGKILL kills a process right after it journaled a
// step, as a crash in the middle of a deploy would, and checks that the
// next start finds the deploy unfinished at that step.
func TestJournalSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "liftoff.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "journaled ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q, %v; stderr: %s", line, err, stderr.String())
	}
	var id int64
	fmt.Sscanf(line, "journaled %d", &id)

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code, no Close
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Fatalf("child was not killed: %v; stderr: %s", err, stderr.String())
	}
	// The commits are in the WAL, not yet in the main file: the reopen
	// below has to recover them from there.
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Logf("no WAL left behind: %v", err)
	}

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	rs, err := s.Unfinished(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("Unfinished after SIGKILL = %+v, want the one deploy", rs)
	}
	r := rs[0]
	if r.ID != id || r.Deployment != "dblood-production" || r.Step != deploy.StepStop ||
		r.Digest != "sha256:new" || r.Previous != "sha256:old" || r.PrevID != "old-container" || !r.Started.Equal(t0) {
		t.Errorf("recovered deploy = %+v", r)
	}
}
