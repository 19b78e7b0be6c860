package deployments

import (
	"strings"
	"testing"
)

func TestPullRepo(t *testing.T) {
	c := mustParse(t, head+`
registries:
  docker.io: {mirror: "http://127.0.0.1:5000", username: hub, password_file: password}
  127.0.0.1:5000: {username: mirror, password_file: password}
  ghcr.io: {username: bot, password_file: password}
  quay.io: {mirror: "https://cache.example.com:8443/"}
`)
	pw := "FILESECRET-password" // \r\n trimmed
	tests := []struct {
		repo, want string
		creds      Credentials
	}{
		{"docker.io/acme/web", "127.0.0.1:5000/acme/web", Credentials{Username: "mirror", Password: pw}},
		{"docker.io/library/nginx", "127.0.0.1:5000/library/nginx", Credentials{Username: "mirror", Password: pw}},
		{"nginx", "127.0.0.1:5000/library/nginx", Credentials{Username: "mirror", Password: pw}},
		{"ghcr.io/acme/web", "ghcr.io/acme/web", Credentials{Username: "bot", Password: pw}},
		// The mirror has no entry: quay's credentials (none here) are never sent to it.
		{"quay.io/acme/web", "cache.example.com:8443/acme/web", Credentials{}},
		{"127.0.0.1:5000/x", "127.0.0.1:5000/x", Credentials{Username: "mirror", Password: pw}},
		{"example.com/x", "example.com/x", Credentials{}},
	}
	for _, tt := range tests {
		got, creds, err := c.PullRepo(tt.repo)
		if err != nil || got != tt.want || creds != tt.creds {
			t.Errorf("PullRepo(%q) = %q, %+v, %v; want %q, %+v", tt.repo, got, creds, err, tt.want, tt.creds)
		}
	}
	for _, bad := range []string{"acme/web:latest", "Acme/web", ""} {
		if _, _, err := c.PullRepo(bad); err == nil {
			t.Errorf("PullRepo(%q): no error", bad)
		}
	}
}

// The mirror's credentials, not the upstream's, and a password read at
// each call: a rotated file applies to the next pull.
func TestPullRepoUpstreamCredentialsStayHome(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "hub", "hub-password\n")
	write(t, dir, "liftoff.yaml", head+`
registries:
  docker.io: {mirror: "127.0.0.1:5000", username: hub, password_file: hub}
  ghcr.io: {username: bot, password_file: hub}
`)
	c, err := Load(dir+"/liftoff.yaml", lookupMap(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if repo, creds, err := c.PullRepo("docker.io/acme/web"); err != nil || repo != "127.0.0.1:5000/acme/web" || creds != (Credentials{}) {
		t.Errorf("through the mirror: %q %+v %v", repo, creds, err)
	}
	write(t, dir, "hub", "rotated\n")
	if _, creds, err := c.PullRepo("ghcr.io/acme/web"); err != nil || creds.Password != "rotated" {
		t.Errorf("password not read at call time: %+v %v", creds, err)
	}
	remove(t, dir, "hub")
	_, _, err = c.PullRepo("ghcr.io/acme/web")
	if err == nil || !strings.Contains(err.Error(), "registries.ghcr.io.password_file") {
		t.Errorf("missing password file: %v", err)
	}
}
