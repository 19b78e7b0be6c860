package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestShippedComposeFileStarts: the repository's docker-compose.yml runs
// liftoff with the config it mounts (deployments/ at /etc/liftoff) and the
// environment it sets, which points the local engine at the socket proxy
// over plain TCP on another host. liftoff refuses such an engine unless the
// config accepts it (docker_host_insecure), so the shipped pair must say
// so: started as the compose file starts it, liftoff must start, and warn.
// Nothing is dialled.
func TestShippedComposeFileStarts(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	svc, ok := file.Services["liftoff"]
	if !ok {
		t.Fatal("docker-compose.yml: no liftoff service")
	}

	// The config file, as the container sees it, found through the mount.
	var config string
	for i, a := range svc.Command {
		if a == "--config" && i+1 < len(svc.Command) {
			config = svc.Command[i+1]
		}
	}
	var path string
	for _, v := range svc.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		if rel, ok := strings.CutPrefix(config, dst+"/"); ok && strings.HasPrefix(src, "./") {
			path = filepath.Join("../..", src, rel)
		}
	}
	if path == "" {
		t.Fatalf("docker-compose.yml: the config %q of the liftoff service is on none of its volumes %q", config, svc.Volumes)
	}

	// The container's environment: what the compose file sets, with the
	// hook token the user must give.
	env := map[string]string{}
	for k, v := range svc.Environment {
		if strings.HasPrefix(v, "${") {
			v = "shipped-compose-hook-token-0123456789"
		}
		env[k] = v
	}
	host := env["DOCKER_HOST"]
	if !deployments.PlainRemoteTCP(host) {
		t.Fatalf("docker-compose.yml: DOCKER_HOST %q, want the socket proxy over tcp:// (this test checks that it is accepted)", host)
	}
	cfg, err := deployments.Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("%s with docker-compose.yml's environment: %v", path, err)
	}
	// Where the image would listen and keep its history: not this host's.
	cfg.Listen = "127.0.0.1:0"
	cfg.History = filepath.Join(t.TempDir(), "liftoff.db")
	t.Setenv("DOCKER_HOST", host)
	t.Setenv("DOCKER_CERT_PATH", "")

	logs := &testenv.SyncBuffer{}
	app, err := liftoff.New(cfg, liftoff.Options{Logger: zerolog.New(logs)})
	if err != nil {
		t.Fatalf("liftoff as docker-compose.yml starts it: %v", err)
	}
	app.Close()
	if !strings.Contains(logs.String(), "INSECURE ENGINE") {
		t.Errorf("no INSECURE ENGINE warning for the socket proxy %s; log:\n%s", host, logs.String())
	}
}
