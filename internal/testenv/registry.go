package testenv

import (
	"context"
	"crypto/subtle"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Reg is an in-memory image registry served over plain HTTP on 127.0.0.1,
// which the Docker engine pulls from without TLS.
type Reg struct {
	srv         *httptest.Server
	handler     http.Handler // nil: the in-memory registry
	user, pass  string
	mw          []func(http.Handler) http.Handler
	beforeClose func(*Reg)
	closeOnce   sync.Once
}

// RegOption configures a registry made by Registry.
type RegOption func(*Reg)

// WithBasicAuth makes the registry require HTTP basic auth with user and
// pass on every request, as a private registry would.
func WithBasicAuth(user, pass string) RegOption {
	return func(r *Reg) { r.user, r.pass = user, pass }
}

// beforeClose makes Close call f first, while the registry still holds
// its port.
func beforeClose(f func(*Reg)) RegOption {
	return func(r *Reg) { r.beforeClose = f }
}

// WithHandler serves h instead of the in-memory registry: another
// registry's implementation, which then gets the same host, pushes and
// clean-up of the images the engine pulled from it.
func WithHandler(h http.Handler) RegOption {
	return func(r *Reg) { r.handler = h }
}

// WithMiddleware wraps the registry's handler in mw, to make it fail, hang
// or count requests. The first one given is the outermost.
func WithMiddleware(mw func(http.Handler) http.Handler) RegOption {
	return func(r *Reg) { r.mw = append(r.mw, mw) }
}

// Registry starts an in-memory registry on 127.0.0.1 and closes it when the
// test ends. Use Eng.Registry instead when the engine pulls from it, so that
// the pulled images are removed too.
func Registry(t testing.TB, opts ...RegOption) *Reg {
	t.Helper()
	r := &Reg{}
	for _, o := range opts {
		o(r)
	}
	h := r.handler
	if h == nil {
		// registry.Logger(nil) panics on the first request.
		h = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	}
	if r.user != "" {
		h = r.basicAuth(h)
	}
	for i := len(r.mw) - 1; i >= 0; i-- {
		h = r.mw[i](h)
	}
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.Close)
	return r
}

func (r *Reg) basicAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(r.user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(r.pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="testenv"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// Host returns the registry's "127.0.0.1:PORT".
func (r *Reg) Host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// Ref returns "HOST/repo:tag".
func (r *Reg) Ref(repo, tag string) string { return r.Host() + "/" + repo + ":" + tag }

// Close stops the registry; later requests are refused, as by a registry
// that is down. Requests in flight are cut off, so a handler that hangs
// must return when its request's context is done. Registry calls Close
// when the test ends.
func (r *Reg) Close() {
	r.closeOnce.Do(func() {
		if r.beforeClose != nil {
			r.beforeClose(r)
		}
		// Listener first: a client that retries at once (the Docker
		// engine does) must not get a new connection in after the old
		// ones were cut, or Close would wait for it forever.
		r.srv.Listener.Close()
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
}

// AppImage describes a test image: the test app, with /version holding
// Version, and an image config with Env and, if Healthcheck, a Docker
// HEALTHCHECK running "/app healthcheck" every 200ms.
type AppImage struct {
	Version     string
	Env         []string // image ENV, KEY=VALUE
	Labels      map[string]string
	Healthcheck bool
	// Created is the config's created time; zero leaves it out, as
	// reproducible builds do.
	Created time.Time
}

// Image builds the test app image for opts without pushing it.
func Image(t testing.TB, opts AppImage) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, appLayer(t, opts.Version))
	if err != nil {
		t.Fatalf("testenv: image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("testenv: image: %v", err)
	}
	cf = cf.DeepCopy()
	// Without os and architecture the engine refuses to run the image.
	cf.OS = "linux"
	cf.Architecture = "amd64"
	cf.Config.Entrypoint = []string{"/app"}
	cf.Config.ExposedPorts = map[string]struct{}{"8000/tcp": {}}
	cf.Config.Env = append([]string(nil), opts.Env...)
	cf.Config.Labels = opts.Labels
	if !opts.Created.IsZero() {
		cf.Created = v1.Time{Time: opts.Created}
	}
	if opts.Healthcheck {
		cf.Config.Healthcheck = &v1.HealthConfig{
			Test:     []string{"CMD", "/app", "healthcheck"},
			Interval: 200 * time.Millisecond,
			Timeout:  2 * time.Second,
			Retries:  2,
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("testenv: image: %v", err)
	}
	return img
}

// Push builds the test app image for opts, pushes it as HOST/repo:tag and
// returns its manifest digest ("sha256:...").
func (r *Reg) Push(t testing.TB, repo, tag string, opts AppImage) string {
	t.Helper()
	img := Image(t, opts)
	ref, err := name.NewTag(r.Ref(repo, tag))
	if err != nil {
		t.Fatalf("testenv: push: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := remote.Write(ref, img, r.remoteOptions(ctx)...); err != nil {
		t.Fatalf("testenv: push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("testenv: push %s: %v", ref, err)
	}
	return d.String()
}

// Delete removes the tag from the registry (the manifest stays reachable
// by digest), as when a tag is deleted after the webhook fired.
func (r *Reg) Delete(t testing.TB, repo, tag string) {
	t.Helper()
	ref, err := name.NewTag(r.Ref(repo, tag))
	if err != nil {
		t.Fatalf("testenv: delete: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := remote.Delete(ref, r.remoteOptions(ctx)...); err != nil {
		t.Fatalf("testenv: delete %s: %v", ref, err)
	}
}

func (r *Reg) remoteOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	if r.user != "" {
		opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: r.user, Password: r.pass})))
	}
	return opts
}
