package deployments

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// fetch asks the credentials of repo's registry, as a pull would.
func fetch(t *testing.T, c *Config, repo string, refused Credentials) (Credentials, error) {
	t.Helper()
	_, cr, err := c.PullRepo(repo)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Source == nil {
		t.Fatalf("PullRepo(%q) = %+v: no source", repo, cr)
	}
	if cr.Username != "" || cr.Password != "" || cr.IdentityToken != "" {
		t.Fatalf("PullRepo(%q) ran the helper: %+v", repo, cr)
	}
	return cr.Source.Fetch(context.Background(), refused)
}

// A helper runs once per registry; a refusal runs it once more, however
// many callers were refused the same credentials; Docker Hub is asked
// for under Docker's key. Not parallel: the helper is on PATH.
func TestCredentialHelperCache(t *testing.T) {
	h := testenv.NewCredHelper(t, "test", "AWS", "token-1")
	c := mustParse(t, head+"registries: {ghcr.io: {credential_helper: test}, docker.io: {credential_helper: test}}\n")
	first := Credentials{Username: "AWS", Password: "token-1"}
	for range 3 {
		if got, err := fetch(t, c, "ghcr.io/acme/web", Credentials{}); err != nil || got != first {
			t.Fatalf("Fetch = %+v, %v; want %+v", got, err, first)
		}
	}
	if calls := h.Calls(); !slices.Equal(calls, []string{"ghcr.io"}) {
		t.Fatalf("helper asked %q, want once for ghcr.io", calls)
	}

	h.SetSecret("token-2") // the first one expired
	second := Credentials{Username: "AWS", Password: "token-2"}
	var wg sync.WaitGroup
	for range 4 { // four calls refused at once
		wg.Go(func() {
			if got, err := fetch(t, c, "ghcr.io/acme/web", first); err != nil || got != second {
				t.Errorf("Fetch after a refusal = %+v, %v; want %+v", got, err, second)
			}
		})
	}
	wg.Wait()
	if calls := h.Calls(); len(calls) != 2 {
		t.Errorf("helper asked %q, want once more after the refusal", calls)
	}

	// Kept helperMaxAge at most, refused or not.
	now := time.Now()
	c.helpers.now = func() time.Time { return now }
	now = now.Add(helperMaxAge - time.Second)
	if _, err := fetch(t, c, "ghcr.io/acme/web", Credentials{}); err != nil {
		t.Fatal(err)
	}
	if calls := h.Calls(); len(calls) != 2 {
		t.Errorf("helper asked %q before helperMaxAge", calls)
	}
	now = now.Add(time.Second)
	if _, err := fetch(t, c, "ghcr.io/acme/web", Credentials{}); err != nil {
		t.Fatal(err)
	}
	if calls := h.Calls(); len(calls) != 3 {
		t.Errorf("helper asked %q, want once more at helperMaxAge", calls)
	}

	if _, err := fetch(t, c, "acme/web", Credentials{}); err != nil {
		t.Fatal(err)
	}
	if calls := h.Calls(); calls[len(calls)-1] != "https://index.docker.io/v1/" {
		t.Errorf("docker.io asked as %q, want Docker's key https://index.docker.io/v1/", calls[len(calls)-1])
	}
}

func TestCredentialHelperIdentityToken(t *testing.T) {
	testenv.NewCredHelper(t, "test", "<token>", "refresh-token")
	c := mustParse(t, head+"registries: {ghcr.io: {credential_helper: test}}\n")
	got, err := fetch(t, c, "ghcr.io/acme/web", Credentials{})
	if want := (Credentials{IdentityToken: "refresh-token"}); err != nil || got != want {
		t.Errorf("Fetch = %+v, %v; want %+v", got, err, want)
	}
}

// A helper that fails is named with the host and its exit status, with a
// line of its stderr at most, redacted; never what it printed on stdout.
// A failure is not cached.
func TestCredentialHelperErrors(t *testing.T) {
	h := testenv.NewCredHelper(t, "test", "AWS", "FILESECRET-token")
	c := mustParse(t, head+"registries: {ghcr.io: {credential_helper: test}, quay.io: {credential_helper: nothere}}\n")

	h.Fail("error: token FILESECRET0123 expired\nsecond line\n")
	_, err := fetch(t, c, "ghcr.io/acme/web", Credentials{})
	want := "registries.ghcr.io.credential_helper: docker-credential-test get ghcr.io: exit status 3 (stderr: error: token [redacted] expired)"
	if err == nil || err.Error() != want {
		t.Errorf("failing helper: error = %v\nwant %s", err, want)
	}
	if err != nil {
		noLeak(t, err.Error())
	}

	h.Fail("")
	h.NotFound(true)
	_, err = fetch(t, c, "ghcr.io/acme/web", Credentials{})
	if err == nil || !strings.Contains(err.Error(), "registries.ghcr.io.credential_helper: docker-credential-test get ghcr.io: it has no credentials for this server") {
		t.Errorf("helper without credentials: error = %v", err)
	}

	h.NotFound(false)
	if got, err := fetch(t, c, "ghcr.io/acme/web", Credentials{}); err != nil || got.Password != "FILESECRET-token" {
		t.Errorf("after the failures: %v", err)
	}

	_, err = fetch(t, c, "quay.io/acme/web", Credentials{})
	if err == nil || !strings.Contains(err.Error(), "registries.quay.io.credential_helper: docker-credential-nothere get quay.io: not found on PATH") {
		t.Errorf("missing helper: error = %v", err)
	}
}

// A docker_config is used as docker pull uses it: credHelpers, then
// credsStore, then auths (base64 or not, identity tokens, keys with a
// scheme); a host it has nothing for is anonymous. It is read at each call.
func TestDockerConfigCredentials(t *testing.T) {
	h := testenv.NewCredHelper(t, "test", "AWS", "helper-token")
	dir := t.TempDir()
	write(t, dir, "helpers.json", `{"credHelpers": {"ghcr.io": "test", "https://index.docker.io/v1/": "test"}}`)
	write(t, dir, "store.json", `{"credsStore": "test", "auths": {"ghcr.io": {}}}`)
	auth := base64.StdEncoding.EncodeToString([]byte("hub:hub-pass"))
	write(t, dir, "auths.json", `{"auths": {
		"https://index.docker.io/v1/": {"auth": "`+auth+`"},
		"https://ghcr.io": {"username": "bot", "password": "ghcr-pass"},
		"quay.io": {"identitytoken": "quay-token"}}}`)
	config := func(file string) string {
		reg := "{docker_config: " + filepath.Join(dir, file) + "}"
		return head + "registries: {docker.io: " + reg + ", ghcr.io: " + reg + ", quay.io: " + reg + "}\n"
	}
	tests := []struct {
		file, repo string
		want       Credentials
	}{
		{"helpers.json", "ghcr.io/acme/web", Credentials{Username: "AWS", Password: "helper-token"}},
		{"helpers.json", "acme/web", Credentials{Username: "AWS", Password: "helper-token"}},
		{"helpers.json", "quay.io/acme/web", Credentials{}}, // no entry: anonymous
		{"store.json", "quay.io/acme/web", Credentials{Username: "AWS", Password: "helper-token"}},
		{"auths.json", "acme/web", Credentials{Username: "hub", Password: "hub-pass"}},
		{"auths.json", "ghcr.io/acme/web", Credentials{Username: "bot", Password: "ghcr-pass"}},
		{"auths.json", "quay.io/acme/web", Credentials{IdentityToken: "quay-token"}},
	}
	for _, tt := range tests {
		c := mustParse(t, config(tt.file))
		if got, err := fetch(t, c, tt.repo, Credentials{}); err != nil || got != tt.want {
			t.Errorf("%s, %s: Fetch = %+v, %v; want %+v", tt.file, tt.repo, got, err, tt.want)
		}
	}
	if calls := h.Calls(); !slices.Equal(calls, []string{"ghcr.io", "https://index.docker.io/v1/", "quay.io"}) {
		t.Errorf("helper asked for %q", calls)
	}

	// credsStore without credentials for the host: anonymous, as docker pull.
	h.NotFound(true)
	c := mustParse(t, config("store.json"))
	if got, err := fetch(t, c, "ghcr.io/acme/web", Credentials{}); err != nil || got != (Credentials{}) {
		t.Errorf("credsStore without credentials: %+v, %v; want anonymous", got, err)
	}

	// Read at each call: a new login applies at once; a broken file is an
	// error naming the field, not showing the content.
	c = mustParse(t, config("auths.json"))
	write(t, dir, "auths.json", `{"auths": {"quay.io": {"username": "new", "password": "new-pass"}}}`)
	if got, err := fetch(t, c, "quay.io/acme/web", Credentials{}); err != nil || got.Password != "new-pass" {
		t.Errorf("after a new login: %+v, %v", got, err)
	}
	write(t, dir, "auths.json", `{"auths": {"quay.io": {"auth": "FILESECRET!"}}}`)
	_, err := fetch(t, c, "quay.io/acme/web", Credentials{})
	if err == nil || !strings.Contains(err.Error(), "registries.quay.io.docker_config: ") {
		t.Errorf("broken config.json: error = %v", err)
	} else {
		noLeak(t, err.Error())
	}
}

func TestValidateCredentialSources(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "ok.json", `{"auths": {"ghcr.io": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("u:p"))+`"}}}`)
	write(t, dir, "syntax.json", `{"auths": {"ghcr.io": {"auth": "FILESECRET"`)
	write(t, dir, "type.json", `{"auths": {"ghcr.io": {"auth": 42}}}`)
	write(t, dir, "base64.json", `{"auths": {"ghcr.io": {"auth": "FILESECRET!!"}}}`)
	write(t, dir, "userpass.json", `{"auths": {"ghcr.io": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("FILESECRET"))+`"}}}`)
	if err := os.Mkdir(filepath.Join(dir, "docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "docker"), "config.json", `{"credsStore": "pass"}`)
	write(t, dir, "badhelper.json", `{"credHelpers": {"ghcr.io": "../../tmp/x"}, "credsStore": "/bin/sh"}`)
	file := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name, registry string
		want           []string // each must appear in the error; none: valid
	}{
		{"helper", "{credential_helper: ecr-login}", nil},
		{"docker_config", "{docker_config: " + file("ok.json") + "}", nil},
		{"docker_config directory", "{docker_config: " + file("docker") + "}", nil},
		{"helper and username", "{credential_helper: pass, username: ci, password_file: hub-password}",
			[]string{"registries.ghcr.io.credential_helper: give credentials in one way: username and password_file, credential_helper or docker_config"}},
		{"helper and docker_config", "{credential_helper: pass, docker_config: " + file("ok.json") + "}",
			[]string{"registries.ghcr.io.docker_config: give credentials in one way"}},
		{"username and docker_config", "{username: ci, docker_config: " + file("ok.json") + "}",
			[]string{"registries.ghcr.io: username and password_file go together", "registries.ghcr.io.docker_config: give credentials in one way"}},
		{"helper path", "{credential_helper: ../bin/evil}",
			[]string{`registries.ghcr.io.credential_helper: "../bin/evil": want the name of docker-credential-<name>`}},
		{"helper option", "{credential_helper: -rf}", []string{`registries.ghcr.io.credential_helper: "-rf": want the name`}},
		{"helper full name", "{credential_helper: docker-credential-pass}",
			[]string{`registries.ghcr.io.credential_helper: "docker-credential-pass": give the name after docker-credential-: "pass"`}},
		{"docker_config missing", "{docker_config: " + file("nope.json") + "}",
			[]string{"registries.ghcr.io.docker_config: open " + file("nope.json") + ": no such file"}},
		{"docker_config syntax", "{docker_config: " + file("syntax.json") + "}",
			[]string{"registries.ghcr.io.docker_config: " + file("syntax.json") + ": not a Docker config.json: the JSON ends early"}},
		{"docker_config type", "{docker_config: " + file("type.json") + "}",
			[]string{"registries.ghcr.io.docker_config: " + file("type.json") + ": not a Docker config.json: auths.auth is not a string"}},
		{"docker_config base64", "{docker_config: " + file("base64.json") + "}",
			[]string{"registries.ghcr.io.docker_config: " + file("base64.json") + ": an auth of auths is not base64"}},
		{"docker_config user:password", "{docker_config: " + file("userpass.json") + "}",
			[]string{"an auth of auths is not base64 of user:password"}},
		{"docker_config helpers", "{docker_config: " + file("badhelper.json") + "}",
			[]string{`registries.ghcr.io.docker_config: credHelpers names "../../tmp/x": want the name`,
				`registries.ghcr.io.docker_config: credsStore "/bin/sh": want the name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseString(t, head+"registries: {ghcr.io: "+tt.registry+"}\n")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
			noLeak(t, err.Error())
		})
	}
}

// A helper missing from PATH, or a docker_config with nothing for its
// host, is a warning of `liftoff validate`, not an error: it may be
// installed or logged in later.
func TestCredentialWarnings(t *testing.T) {
	testenv.NewCredHelper(t, "test", "AWS", "token")
	dir := t.TempDir()
	write(t, dir, "store.json", `{"credsStore": "gone"}`)
	write(t, dir, "empty.json", `{"auths": {"quay.io": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("u:p"))+`"}}}`)
	c := mustParse(t, head+`registries:
  ghcr.io: {credential_helper: test}
  quay.io: {credential_helper: nothere}
  docker.io: {docker_config: `+filepath.Join(dir, "store.json")+`}
  example.com: {docker_config: `+filepath.Join(dir, "empty.json")+`}
`)
	want := []string{
		"registries.docker.io.docker_config: docker-credential-gone is not on PATH: pulls from docker.io fail until it is installed",
		"registries.example.com.docker_config: has no credentials for example.com (no auths or credHelpers entry, no credsStore): its pulls are anonymous",
		"registries.quay.io.credential_helper: docker-credential-nothere is not on PATH: pulls from quay.io fail until it is installed",
	}
	if got := c.ValidatePolicies(); !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
