package history

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// The recorder writes what it queued, in order, once closed; past its
// queue it drops and says how many, once; after Close it records nothing.
func TestRecorderQueueDropsAndDrains(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "liftoff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var logs bytes.Buffer
	r := NewRecorder(s, zerolog.New(&logs))
	now := time.Now()
	for i := range recordQueue + 3 {
		r.Record(deploy.Delivery{ID: fmt.Sprintf("d%04d", i), Source: "dockerhub", Image: "docker.io/acme/web", Tag: "v1",
			Received: now, Accepted: []string{"web"}})
	}
	r.Close()
	r.Record(deploy.Delivery{ID: "late", Source: "dockerhub", Received: now, Accepted: []string{"web"}})
	r.Run() // writes the queue and returns: it is closed
	list, _, err := s.Deliveries(ctx, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1000 || list[0].ID != fmt.Sprintf("d%04d", recordQueue-1) {
		t.Fatalf("%d deliveries listed, the newest %q; want 1000, the newest d%04d", len(list), list[0].ID, recordQueue-1)
	}
	for _, d := range list {
		if d.ID == "late" {
			t.Error("a delivery recorded after Close was written")
		}
	}
	if n := strings.Count(logs.String(), "too many deliveries"); n != 1 || !strings.Contains(logs.String(), `"deliveries":3`) {
		t.Errorf("want one warning of 3 deliveries dropped, got %d:\n%s", n, logs.String())
	}
}
