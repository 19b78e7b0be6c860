package daemon_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestInsecureEngineAtStartUp: a plain tcp:// engine on another host is a
// config error naming the engine and the fix; with insecure: true liftoff
// starts and warns about it; a plain tcp:// docker_host to another host
// stops the start. Nothing is dialled: 192.0.2.1 is a documentation
// address.
func TestInsecureEngineAtStartUp(t *testing.T) {
	dir := t.TempDir()
	head := "listen: 127.0.0.1:0\nhistory: " + filepath.Join(dir, "liftoff.db") + "\n"
	none := func(string) (string, bool) { return "", false }

	_, err := deployments.Parse([]byte(head+"engines: {far: {host: \"tcp://192.0.2.1:2375\"}}\n"), dir, none)
	if err == nil || !strings.Contains(err.Error(), "engines.far.host:") || !strings.Contains(err.Error(), "insecure: true") {
		t.Fatalf("plain tcp:// engine: %v, want an error at engines.far.host saying how to fix it", err)
	}

	cfg, err := deployments.Parse([]byte(head+"engines: {far: {host: \"tcp://192.0.2.1:2375\", insecure: true}}\n"), dir, none)
	if err != nil {
		t.Fatalf("insecure: true: %v", err)
	}
	logs := &testenv.SyncBuffer{}
	app, err := liftoff.New(cfg, liftoff.Options{Logger: zerolog.New(logs)})
	if err != nil {
		t.Fatalf("start with an insecure engine: %v", err)
	}
	app.Close()
	warned := false
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["level"] == "warn" && e["engine"] == "far" &&
			strings.HasPrefix(e["message"].(string), "INSECURE ENGINE") && e["host"] == "tcp://192.0.2.1:2375" {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no start-up warning for the insecure engine far; log:\n%s", logs.String())
	}

	cfg, err = deployments.Parse([]byte(head+"docker_host: tcp://192.0.2.1:2375\n"), dir, none)
	if err != nil {
		t.Fatalf("docker_host: %v", err)
	}
	t.Setenv("DOCKER_CERT_PATH", "")
	if app, err := liftoff.New(cfg, liftoff.Options{Logger: zerolog.Nop()}); !errors.Is(err, docker.ErrPlainTCP) ||
		!strings.Contains(err.Error(), "docker_host") || !strings.Contains(err.Error(), "docker_host_insecure: true") {
		if err == nil {
			app.Close()
		}
		t.Errorf("start with a plain tcp:// docker_host: %v, want ErrPlainTCP naming docker_host and the fix", err)
	}

	// A socket proxy on a private network: docker_host_insecure accepts it, loudly.
	cfg, err = deployments.Parse([]byte(head+"docker_host: tcp://192.0.2.1:2375\ndocker_host_insecure: true\n"), dir, none)
	if err != nil {
		t.Fatalf("docker_host_insecure: %v", err)
	}
	logs = &testenv.SyncBuffer{}
	app, err = liftoff.New(cfg, liftoff.Options{Logger: zerolog.New(logs)})
	if err != nil {
		t.Fatalf("start with docker_host_insecure: %v", err)
	}
	app.Close()
	if !strings.Contains(logs.String(), `"engine":"local","host":"tcp://192.0.2.1:2375","message":"INSECURE ENGINE`) {
		t.Errorf("no start-up warning for the insecure docker_host; log:\n%s", logs.String())
	}
}
