package docker

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

func TestRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    container.RestartPolicy
		wantErr bool
	}{
		{"", container.RestartPolicy{Name: "no"}, false},
		{"no", container.RestartPolicy{Name: "no"}, false},
		{"always", container.RestartPolicy{Name: "always"}, false},
		{"unless-stopped", container.RestartPolicy{Name: "unless-stopped"}, false},
		{"on-failure", container.RestartPolicy{Name: "on-failure"}, false},
		{"on-failure:5", container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 5}, false},
		{"on-failure:x", container.RestartPolicy{}, true},
		{"on-failure:-1", container.RestartPolicy{}, true},
		{"always:3", container.RestartPolicy{}, true},
		{"sometimes", container.RestartPolicy{}, true},
	} {
		got, err := restartPolicy(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("restartPolicy(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && got != tc.want {
			t.Errorf("restartPolicy(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestPorts(t *testing.T) {
	set, m, err := ports([]string{"127.0.0.1:8001:8000", "9000/udp", "[::1]:8443:443", "7000-7001:7000-7001"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]network.PortBinding{
		"8000/tcp": {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8001"}},
		"9000/udp": {{}},
		"443/tcp":  {{HostIP: netip.MustParseAddr("::1"), HostPort: "8443"}},
		"7000/tcp": {{HostPort: "7000"}},
		"7001/tcp": {{HostPort: "7001"}},
	}
	if len(set) != len(want) || len(m) != len(want) {
		t.Errorf("got %d exposed, %d bound; want %d", len(set), len(m), len(want))
	}
	for p, bs := range want {
		port := network.MustParsePort(p)
		if _, ok := set[port]; !ok {
			t.Errorf("%s not exposed", p)
		}
		if got := m[port]; len(got) != len(bs) || got[0] != bs[0] {
			t.Errorf("bindings of %s = %+v, want %+v", p, got, bs)
		}
	}
	for _, bad := range []string{"abc", "1.2.3:80:80", "80/xyz", "8000:9000-9001"} {
		if _, _, err := ports([]string{bad}); err == nil {
			t.Errorf("ports(%q) gave no error", bad)
		}
	}
}

func TestContainerConfig(t *testing.T) {
	cfg, host, nw, err := containerConfig(deploy.Spec{
		Name:     "web",
		Image:    "127.0.0.1:5000/acme/web@sha256:abc",
		Env:      []string{"A=1"},
		Cmd:      []string{"serve"},
		Volumes:  []string{"/srv/data:/data:ro", "cache:/cache", "/scratch"},
		Networks: []string{"front", "back"},
		Aliases:  []string{"web"},
		Restart:  "on-failure:3",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Image == "" || len(cfg.Cmd) != 1 || len(cfg.Env) != 1 {
		t.Errorf("config = %+v", cfg)
	}
	if _, ok := cfg.Volumes["/scratch"]; !ok || len(host.Binds) != 2 {
		t.Errorf("volumes = %v, binds = %v", cfg.Volumes, host.Binds)
	}
	if host.NetworkMode != "front" || len(nw.EndpointsConfig) != 1 || nw.EndpointsConfig["front"].Aliases[0] != "web" {
		t.Errorf("network mode %q, endpoints %+v: want only front at create", host.NetworkMode, nw.EndpointsConfig)
	}
	if host.RestartPolicy.MaximumRetryCount != 3 {
		t.Errorf("restart = %+v", host.RestartPolicy)
	}

	cfg, host, nw, err = containerConfig(deploy.Spec{Name: "web", Image: "x"})
	if err != nil || nw != nil || host.NetworkMode != "" || cfg.Cmd != nil {
		t.Errorf("minimal spec: %+v %+v %+v %v", cfg, host, nw, err)
	}
	for _, bad := range []deploy.Spec{
		{Name: "web"},
		{Name: "web", Image: "x", Aliases: []string{"a"}},
		{Name: "web", Image: "x", Restart: "sometimes"},
		{Name: "web", Image: "x", Ports: []string{"x"}},
		{Name: "web", Image: "x", Volumes: []string{""}},
		{Name: "web", Image: "x", Healthcheck: &deploy.Healthcheck{}},
	} {
		if _, _, _, err := containerConfig(bad); err == nil {
			t.Errorf("containerConfig(%+v) gave no error", bad)
		}
	}
}

func TestReadPullStream(t *testing.T) {
	ok := `{"status":"Pulling from acme/web","id":"v1"}
{"status":"Download complete","progressDetail":{},"id":"abc"}
{"status":"Status: Downloaded newer image for x"}
`
	if err := readPullStream(strings.NewReader(ok)); err != nil {
		t.Errorf("clean stream: %v", err)
	}
	failed := `{"status":"Pulling fs layer","id":"abc"}
{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}
{"status":"never read"}
`
	if err := readPullStream(strings.NewReader(failed)); err == nil || err.Error() != "unexpected EOF" {
		t.Errorf("stream with an error: %v, want unexpected EOF", err)
	}
	if err := readPullStream(strings.NewReader(`{"error":"old style"}`)); err == nil || err.Error() != "old style" {
		t.Errorf("stream with an old-style error: %v", err)
	}
	missing := `{"errorDetail":{"message":"manifest for x not found: manifest unknown: manifest unknown"},"error":"..."}`
	if err := readPullStream(strings.NewReader(missing)); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("stream with manifest unknown: %v, want ErrNotFound", err)
	}
	down := `{"errorDetail":{"message":"Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused"}}`
	if err := readPullStream(strings.NewReader(down)); !errors.Is(err, deploy.ErrUnavailable) || errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("stream with connection refused: %v, want ErrUnavailable", err)
	}
	if err := readPullStream(strings.NewReader(`{"status":"cut`)); err == nil {
		t.Error("truncated stream gave no error")
	}
}

func TestRedact(t *testing.T) {
	base := errors.New("GET https://ci:hunter2@r.example/v2/: denied for hunter2")
	err := redact(base, deploy.Auth{Username: "ci", Password: "hunter2"})
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, base) {
		t.Errorf("redact = %q (is base: %v)", err, errors.Is(err, base))
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.1.2.3:80": true, "localhost:5000": true, "[::1]:5000": true,
		"localhost": true, "10.0.0.1:5000": false, "index.docker.io": false, "ghcr.io": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
