package bench

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func needDockerCLI(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		tb.Skipf("SKIPPED, NO DOCKER CLI: this benchmark runs the docker command (%v)", err)
	}
}

// docker runs the docker CLI and returns how long it took.
func docker(tb testing.TB, args ...string) time.Duration {
	tb.Helper()
	start := time.Now()
	out, err := exec.Command("docker", args...).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		tb.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return took
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
