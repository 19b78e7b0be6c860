package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/history"
)

// TestHistoryRetention: liftoff started on a history of 300 deliveries
// prunes it to history_retention in the background (max_deliveries: 100)
// and says how many rows each table holds in liftoff_history_rows. No
// engine is needed: the local one is a socket nobody listens on.
func TestHistoryRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "liftoff.db")
	ctx := context.Background()
	s, err := history.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var ds []deploy.Delivery
	for i := range 300 {
		ds = append(ds, deploy.Delivery{ID: fmt.Sprintf("d-%03d", i), Source: "dockerhub", Image: "docker.io/acme/web", Tag: "pr-1", Received: time.Now()})
	}
	if err := s.RecordDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cfg, err := deployments.Parse([]byte(`listen: 127.0.0.1:0
history: `+db+`
docker_host: unix://`+filepath.Join(dir, "nobody.sock")+`
history_retention: {deliveries: 30d, max_deliveries: 100, deploys: 10}
`), dir, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	pruned := make(chan struct{}, 16)
	app, err := liftoff.New(cfg, liftoff.Options{Logger: zerolog.Nop(), OnPrune: func() { pruned <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := app.Run(rctx); err != nil {
			t.Errorf("liftoff stopped with an error: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-pruned

	res, err := http.Get("http://" + app.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`liftoff_history_rows{table="deliveries"} 100`,
		`liftoff_history_rows{table="requests"} 0`,
		`liftoff_history_rows{table="deploys"} 0`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	<-done
	s, err = history.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rows, err := s.Rows(ctx); err != nil || rows["deliveries"] != 100 {
		t.Errorf("history after the prune: %v %v, want 100 deliveries", rows, err)
	}
}
