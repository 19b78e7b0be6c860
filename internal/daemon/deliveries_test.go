package daemon

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/history"
)

// A delivery that concerns a deployment goes to the recorder's queue, to be
// written to the history; one that concerns none is kept in memory at once.
// Both are listed.
func TestRecordDeliveryRoutes(t *testing.T) {
	ctx := context.Background()
	store, err := history.Open(ctx, filepath.Join(t.TempDir(), "liftoff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a := &Daemon{history: store, deliveries: history.NewRecorder(store, zerolog.Nop())}

	now := time.Now()
	for _, tt := range []struct {
		d        deploy.Delivery
		recorded bool
	}{
		{deploy.Delivery{ID: "queued", Source: "dockerhub", Image: "docker.io/acme/web", Tag: "staging", Received: now,
			Accepted: []string{"web-staging"}}, true},
		{deploy.Delivery{ID: "nobody", Source: "dockerhub", Image: "docker.io/acme/typo", Tag: "staging", Received: now,
			Ignored: []deployments.Ignored{{Tag: "staging", Reason: "no deployment for docker.io/acme/typo"}}}, false},
		{deploy.Delivery{ID: "tag-rule", Source: "dockerhub", Image: "docker.io/acme/web", Tag: "pr-7", Received: now,
			Ignored: []deployments.Ignored{{Deployment: "web-staging", Reason: `tag "pr-7" matches none of [staging]`}}}, true},
		{deploy.Delivery{ID: "signature", Source: "dockerhub", Image: "docker.io/acme/web", Tag: "sha256-ab.sig", Received: now,
			Ignored: []deployments.Ignored{{Tag: "sha256-ab.sig", Reason: "signature or attestation tag"}}}, false},
		{deploy.Delivery{ID: "pause", Source: "api", Image: "docker.io/acme/web", Actor: "ops", Received: now,
			Ignored: []deployments.Ignored{{Deployment: "web-staging", Reason: "pause"}}}, true},
	} {
		if got := concernsDeployment(tt.d); got != tt.recorded {
			t.Errorf("%s: concernsDeployment %v, want %v", tt.d.ID, got, tt.recorded)
		}
		a.recordDelivery(tt.d)
	}

	// Nothing is written yet: the two kept in memory are listed, the
	// three that concern a deployment wait in the recorder's queue.
	list, _, err := store.Deliveries(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"signature", "nobody"}) {
		t.Fatalf("deliveries listed before the recorder ran: %v, want signature, nobody", ids)
	}
	// The recorder writes the queue, in order, and ends.
	a.deliveries.Close()
	a.deliveries.Run()

	// All five are listed, newest first: a recorded one takes its place
	// when it is written, here after the kept ones.
	list, _, err = store.Deliveries(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"pause", "tag-rule", "queued", "signature", "nobody"}) {
		t.Errorf("deliveries listed: %v, want the three recorded, then the two kept, newest first", ids)
	}
}
