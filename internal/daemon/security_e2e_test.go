package daemon_test

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestListenOverrideAndLog: Options.Listen (serve's --listen,
// $LIFTOFF_LISTEN, which liftoff's image sets to 0.0.0.0:8080) replaces
// the config's listen, at start-up and at every reload (which then does
// not warn that listen changed); the start-up log says, a line per
// listener, which address serves what.
func TestListenOverrideAndLog(t *testing.T) {
	eng := testenv.Engine(t)
	d := &daemon{t: t, eng: eng, reg: eng.Registry(t), results: make(chan deploy.Result, 64), logs: &testenv.SyncBuffer{}}
	d.prefix = eng.UniqueName(t, "listen")
	d.repo = "acme/" + d.prefix
	path := filepath.Join(t.TempDir(), "liftoff.yaml")
	config := strings.Replace(configHead, "listen: 127.0.0.1:0", "listen: \":0\"", 1) + `metrics_listen: 127.0.0.1:0
api_tokens:
  - {name: ops, token: listen-test-token-0123456789abcdef, scopes: [read]}
`
	writeDaemonConfig(t, d, path, config)
	d.launch(path, func(string) (string, bool) { return "", false }, liftoff.Options{Listen: "127.0.0.1:0"})
	if !strings.HasPrefix(d.app.Addr(), "127.0.0.1:") {
		t.Fatalf("listening on %s: the config's \":0\" was not replaced by Options.Listen", d.app.Addr())
	}
	if err := d.app.Reload(); err != nil {
		t.Fatal(err)
	}
	// Run logs the listeners as it starts: wait for its lines.
	type line struct {
		Message, Key, Address string
		Serves                []string
	}
	var lines map[string]line
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lines = map[string]line{}
		sc := bufio.NewScanner(strings.NewReader(d.logs.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "listening" {
				lines[l.Key] = l
			}
		}
		if len(lines) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the start-up log does not name both listeners:\n%s", d.logs)
		}
	}
	main, metrics := lines["listen"], lines["metrics_listen"]
	if main.Address != "http://"+d.app.Addr() || !slices.Contains(main.Serves, "/hooks/") || !slices.Contains(main.Serves, "/api/v1") ||
		slices.Contains(main.Serves, "/metrics") {
		t.Errorf("listen's line: %+v", main)
	}
	if !strings.HasPrefix(metrics.Address, "http://127.0.0.1:") || !slices.Equal(metrics.Serves, []string{"/metrics"}) {
		t.Errorf("metrics_listen's line: %+v", metrics)
	}
	if strings.Contains(d.logs.String(), "applies only after a restart") {
		t.Errorf("the reload took the override for a change of listen:\n%s", d.logs)
	}
}
