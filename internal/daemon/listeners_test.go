package daemon_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestStartUpLogsTheFrontDoors: the start-up log says which address serves
// what, the front door's and each proxy's own listen included, so that an
// operator sees every port liftoff opened.
func TestStartUpLogsTheFrontDoors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := "listen: 127.0.0.1:0\nhistory: " + filepath.Join(dir, "liftoff.db") + `
front_door: {listen: "127.0.0.1:0"}
deployments:
  - {name: shop, image: acme/shop, tags: [latest], proxy: {hosts: [shop.example.com], port: 8000}}
  - {name: own, image: acme/own, tags: [latest], proxy: {listen: "127.0.0.1:0", port: 8000}}
`
	cfg, err := deployments.Parse([]byte(config), dir, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	app, err := liftoff.New(cfg, liftoff.Options{Logger: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run logs its listeners, then stops at once
	if err := app.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	app.Close()
	seen := map[string]string{}
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["message"] == "listening" {
			key, _ := e["key"].(string)
			addr, _ := e["address"].(string)
			seen[key] = addr
		}
	}
	for _, key := range []string{"listen", "front_door.listen", "deployments[1].proxy.listen"} {
		if !strings.HasPrefix(seen[key], "http://127.0.0.1:") || strings.HasSuffix(seen[key], ":0") {
			t.Errorf("no start-up line for %s (got %q); log:\n%s", key, seen[key], logs.String())
		}
	}
}
