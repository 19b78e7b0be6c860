package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// bins holds the binaries built once per test process (go build is slow on
// two cores) in a directory TestMain removes.
var bins struct {
	dir string

	mu    sync.Mutex
	built map[string]string // by key
	errs  map[string]error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "liftoff-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds pkg (an import path of this module) once per process, with
// env added to the go command's environment.
func binary(tb testing.TB, key, pkg string, env ...string) string {
	tb.Helper()
	bins.mu.Lock()
	defer bins.mu.Unlock()
	if p, ok := bins.built[key]; ok {
		return p
	}
	if err, ok := bins.errs[key]; ok {
		tb.Fatalf("build %s: %v", pkg, err)
	}
	out := filepath.Join(bins.dir, key)
	cmd := exec.Command(goCommand(), "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	msg, err := cmd.CombinedOutput()
	if bins.built == nil {
		bins.built, bins.errs = map[string]string{}, map[string]error{}
	}
	if err != nil {
		bins.errs[key] = fmt.Errorf("%s: %v\n%s", cmd, err, msg)
		tb.Fatal(bins.errs[key])
	}
	tb.Logf("built %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	bins.built[key] = out
	return out
}

// goCommand is the go command: go test puts its own GOROOT/bin first on
// the PATH of the tests it runs.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// liftoffBinary is the daemon users run.
func liftoffBinary(tb testing.TB) string {
	return binary(tb, "liftoff", "github.com/liftoff-deploy/liftoff/cmd/liftoff")
}

// pollclientBinary is bench/pollclient for the machine the benchmark runs
// on, or (inContainer) static for the linux/amd64 test images.
func pollclientBinary(tb testing.TB, inContainer bool) string {
	if inContainer || runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		return binary(tb, "pollclient-linux-amd64", "github.com/liftoff-deploy/liftoff/bench/pollclient",
			"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	}
	return binary(tb, "pollclient", "github.com/liftoff-deploy/liftoff/bench/pollclient")
}
