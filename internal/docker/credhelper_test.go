package docker_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// expiringRegistry is a registry with basic auth ci/pa55word that also
// takes the token of the moment, as AWS/<token>: as ECR, whose tokens
// expire. An expired token is refused with 401, or with ECR's own 403
// "denied" when ecr is set.
type expiringRegistry struct {
	*testenv.Reg
	token atomic.Value // string
	ecr   atomic.Bool
}

func newExpiringRegistry(t *testing.T, e *testenv.Eng, token string) *expiringRegistry {
	r := &expiringRegistry{}
	r.token.Store(token)
	r.Reg = e.Registry(t, testenv.WithBasicAuth("ci", "pa55word"), testenv.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if u, p, ok := req.BasicAuth(); ok && u == "AWS" {
				switch {
				case p == r.token.Load():
					req.SetBasicAuth("ci", "pa55word")
				case r.ecr.Load():
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusForbidden)
					io.WriteString(w, `{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}`)
					return
				}
			}
			next.ServeHTTP(w, req)
		})
	}))
	return r
}

// expire makes the registry take token only, and the helper answer it.
func (r *expiringRegistry) expire(h *testenv.CredHelper, token string) {
	r.token.Store(token)
	h.SetSecret(token)
}

// helperFixture is a client of the engine, a registry whose token
// expires (token-1 now) and the fake docker-credential-test answering it.
type helperFixture struct {
	h    *testenv.CredHelper
	c    *docker.Client
	reg  *expiringRegistry
	repo string // acme/private on reg
}

func newHelperFixture(t *testing.T) *helperFixture {
	t.Helper()
	h := testenv.NewCredHelper(t, "test", "AWS", "token-1")
	c, _ := newClient(t)
	reg := newExpiringRegistry(t, testenv.Engine(t), "token-1")
	return &helperFixture{h: h, c: c, reg: reg, repo: reg.Host() + "/acme/private"}
}

// auth is the Auth a deploy of f.repo passes with setting
// ("credential_helper: test") as the registry's entry in the config.
func (f *helperFixture) auth(t *testing.T, setting string) deploy.Auth {
	t.Helper()
	yaml := "registries: {" + f.reg.Host() + ": {" + setting + "}}\n"
	cfg, err := deployments.Parse([]byte(yaml), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	_, cred, err := cfg.PullRepo(f.repo)
	if err != nil {
		t.Fatal(err)
	}
	return deploy.AuthOf(cred)
}

func noToken(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{"token-", "pa55word", "FILESECRET"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows a secret (%s): %v", s, err)
		}
	}
}

// Resolve, Pull and Tags with a credential helper's token, on the real engine:
// the helper runs once; after the token expires (401, or ECR's 403), the
// first call refused fetches a new one, once, and succeeds. Not parallel:
// the helper is on PATH.
func TestCredentialHelperResolveAndPull(t *testing.T) {
	f := newHelperFixture(t)
	h, c, reg, repo := f.h, f.c, f.reg, f.repo
	auth := f.auth(t, "credential_helper: test")
	calls := func(want int) {
		t.Helper()
		if got := len(h.Calls()); got != want {
			t.Errorf("helper ran %d times, want %d", got, want)
		}
	}
	pull := func(version string) {
		t.Helper()
		d := reg.Push(t, "acme/private", version, testenv.AppImage{Version: version})
		if err := c.Pull(ctx(t), repo+"@"+d, auth); err != nil {
			t.Fatalf("Pull of %s: %v", version, err)
		}
	}
	resolve := func(version string) {
		t.Helper()
		want := reg.Push(t, "acme/private", version, testenv.AppImage{Version: version})
		if got, err := c.Resolve(ctx(t), repo+":"+version, auth); err != nil || got != want {
			t.Fatalf("Resolve of %s = %s, %v; want %s", version, got, err, want)
		}
	}

	resolve("v1")
	pull("v1")
	calls(1) // cached

	reg.expire(h, "token-2")
	resolve("v2") // refused, fetched again, retried
	pull("v2")
	calls(2)

	reg.expire(h, "token-3")
	pull("v3") // through the engine
	calls(3)

	reg.expire(h, "token-4")
	if tags, err := c.Tags(ctx(t), repo, auth); err != nil || len(tags) != 3 { // a poll's listing
		t.Fatalf("Tags = %q, %v", tags, err)
	}
	calls(4)

	reg.ecr.Store(true)
	reg.expire(h, "token-5")
	resolve("v5") // 403 "denied: ... expired"
	reg.expire(h, "token-6")
	pull("v6")
	calls(6)

	// Refused again after the new token: that is the error, after one
	// fetch only.
	reg.ecr.Store(false)
	reg.token.Store("token-7") // the helper still answers token-6
	if _, err := c.Resolve(ctx(t), repo+":v1", auth); err == nil {
		t.Error("Resolve refused twice succeeded")
	} else {
		noToken(t, err)
	}
	calls(7)
	if err := c.Pull(ctx(t), repo+":v1", auth); err == nil {
		t.Error("Pull refused twice succeeded")
	} else {
		noToken(t, err)
	}
	calls(8)
}

// A helper that fails when the token expired gives an error that names
// it, the registry and its exit status, with no secret.
func TestCredentialHelperFailing(t *testing.T) {
	f := newHelperFixture(t)
	h, c, reg, repo := f.h, f.c, f.reg, f.repo
	d := reg.Push(t, "acme/private", "v1", testenv.AppImage{Version: "1"})
	auth := f.auth(t, "credential_helper: test")
	if _, err := c.Resolve(ctx(t), repo+":v1", auth); err != nil {
		t.Fatal(err)
	}

	reg.token.Store("token-2")
	h.Fail("aws: session FILESECRET0123456789 expired")
	want := "registries." + reg.Host() + ".credential_helper: docker-credential-test get " + reg.Host() + ": exit status 3 (stderr: aws: session [redacted] expired)"
	_, err := c.Resolve(ctx(t), repo+":v1", auth)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Resolve: error = %v\nwant it to contain %s", err, want)
	}
	if err != nil {
		noToken(t, err)
	}
	err = c.Pull(ctx(t), repo+"@"+d, auth)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Pull: error = %v\nwant it to contain %s", err, want)
	}
	if err != nil {
		noToken(t, err)
	}
}

// A docker_config whose credHelpers names the helper for the registry,
// on the real engine.
func TestDockerConfigPull(t *testing.T) {
	f := newHelperFixture(t)
	d := f.reg.Push(t, "acme/private", "v1", testenv.AppImage{Version: "1"})
	file := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(file, []byte(`{"credHelpers": {"`+f.reg.Host()+`": "test"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Pull(ctx(t), f.repo+"@"+d, f.auth(t, "docker_config: "+file)); err != nil {
		t.Fatalf("Pull: %v", err)
	}
}
