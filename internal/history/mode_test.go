package history

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// TestFileModeIsPrivate: the history file liftoff creates, and the WAL and
// shared-memory files beside it, are readable by liftoff's user only
// (0600), whatever the umask would have given (0644 under the usual 022).
func TestFileModeIsPrivate(t *testing.T) {
	s, path := open(t)
	// A write, so that the WAL and its index exist while the store is open.
	if _, err := s.Accept(context.Background(), []deploy.Request{{Deployment: "web", Image: "docker.io/acme/web", Tag: "v1",
		Received: time.Unix(1, 0)}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", p, mode)
		}
	}
}
