package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// Resolve returns the digest ref's tag points to now, asking the registry
// with a HEAD request (a GET when the registry's HEAD answer lacks the
// digest) and pulling nothing. A tag or repository the registry does not
// know is deploy.ErrNotFound; a registry that cannot be reached is
// deploy.ErrUnavailable.
func (c *Client) Resolve(ctx context.Context, ref string, auth deploy.Auth) (string, error) {
	rl := &rateLimit{}
	var digest string
	err := withAuth(ctx, auth, func(a deploy.Auth) (err error) {
		digest, err = c.resolve(ctx, ref, a, rl)
		return err
	})
	err = rl.wrap(err) // a 429, with its Retry-After, for a poller
	if errors.Is(err, deploy.ErrNotFound) {
		// The registry's words for it ("404 Not Found (HEAD responses have
		// no body...)") say less than this.
		return "", fmt.Errorf("resolve %s: %w: the registry has no such tag or repository", ref, deploy.ErrNotFound)
	}
	if err != nil {
		return "", c.fail("resolve", redact(fmt.Errorf("resolve %s: %w", ref, err), auth))
	}
	return digest, nil
}

func (c *Client) resolve(ctx context.Context, ref string, auth deploy.Auth, rl *rateLimit) (string, error) {
	r, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(authenticator(auth)),
		remote.WithUserAgent("liftoff"),
		// go-containerregistry retries 5xx answers and flakes after
		// 1s+3s+9s by default; a deploy waiting on a webhook wants an
		// answer sooner.
		remote.WithRetryBackoff(remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
	}
	opts = append(opts, rl.options()...)
	desc, err := remote.Head(r, opts...)
	if err == nil {
		return desc.Digest.String(), nil
	}
	if err := registryErr(ctx, err); definitive(err) || rl.limited() || ctx.Err() != nil || errors.Is(err, deploy.ErrUnavailable) {
		return "", err
	}
	// Some registries answer HEAD without Docker-Content-Digest, or not
	// at all; GET tells the digest (of the manifest it returns).
	c.log.Debug().Err(err).Str("ref", ref).Msg("HEAD manifest failed, trying GET")
	got, err := remote.Get(r, opts...)
	if err != nil {
		return "", registryErr(ctx, err)
	}
	return got.Digest.String(), nil
}

// parseRef parses an image reference; registries on loopback addresses are
// spoken to over plain HTTP, as the engine does by default.
func parseRef(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if isLoopback(r.Context().RegistryStr()) {
		return name.ParseReference(ref, name.Insecure)
	}
	return r, nil
}

func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func authenticator(a deploy.Auth) authn.Authenticator {
	if a == (deploy.Auth{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken})
}

// definitive tells whether a failed HEAD is the registry's final word, which
// a GET would only repeat.
func definitive(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	switch te.StatusCode {
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

// registryErr marks the registry's "no such tag or repository" as
// deploy.ErrNotFound, and a registry that cannot be reached (or says it is
// unavailable) as deploy.ErrUnavailable.
func registryErr(ctx context.Context, err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		var op *net.OpError
		var dns *net.DNSError
		if ctx.Err() == nil && (errors.As(err, &op) || errors.As(err, &dns)) {
			return unavailable(err)
		}
		return err
	}
	switch te.StatusCode {
	case http.StatusNotFound:
		return notFound(err)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return unavailable(err)
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
			return notFound(err)
		}
	}
	return err
}

// unreachable are what the engine says, in words only, when it cannot
// reach a registry.
var unreachable = []string{"connection refused", "no such host", "i/o timeout", "network is unreachable", "TLS handshake timeout", "connection reset by peer"}

// pullErr marks an engine's pull error as deploy.ErrNotFound or
// deploy.ErrUnavailable where its code or words say so.
func pullErr(err error, code int) error {
	msg := err.Error()
	switch {
	case code == http.StatusNotFound || strings.Contains(msg, "manifest unknown") || strings.Contains(msg, "not found"):
		return notFound(err)
	case slices.ContainsFunc(unreachable, func(s string) bool { return strings.Contains(msg, s) }):
		return unavailable(err)
	}
	return err
}

// Pull fetches ref ("host/repo@sha256:...") into the engine. It returns only
// when the engine has finished: the pull's progress stream is read to its
// end, and an error reported in it (the HTTP status is 200 regardless) is
// returned. When ctx ends first, the pull is abandoned.
func (c *Client) Pull(ctx context.Context, ref string, auth deploy.Auth) error {
	err := withAuth(ctx, auth, func(a deploy.Auth) error { return c.pull(ctx, ref, a) })
	if err != nil {
		return c.fail("pull", redact(fmt.Errorf("pull %s: %w", ref, err), auth))
	}
	return nil
}

func (c *Client) pull(ctx context.Context, ref string, auth deploy.Auth) error {
	var opts client.ImagePullOptions
	var err error
	if opts.RegistryAuth, err = encodeAuth(auth, ref); err != nil {
		return err
	}
	start := time.Now()
	stream, err := c.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		if cerrdefs.IsNotFound(err) || client.IsErrConnectionFailed(err) || ctx.Err() != nil {
			return engineErr(err)
		}
		// Errors found before the stream starts come as an HTTP error.
		return pullErr(err, 0)
	}
	defer stream.Close()
	// Closing the stream is what unblocks a read of a hung pull.
	stop := context.AfterFunc(ctx, func() { stream.Close() })
	defer stop()
	if err := readPullStream(stream); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
		return err
	}
	c.log.Debug().Str("ref", ref).Dur("took", time.Since(start)).Msg("pulled image")
	return nil
}

// pullMessage is one line of the engine's pull progress. Engines send the
// error twice, as "error" (older) and as "errorDetail".
type pullMessage struct {
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errorDetail"`
}

func readPullStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m pullMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read pull progress: %w", err)
		}
		msg := m.Error
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			msg = m.ErrorDetail.Message
		}
		if msg != "" {
			code := 0
			if m.ErrorDetail != nil {
				code = m.ErrorDetail.Code
			}
			return pullErr(errors.New(msg), code)
		}
	}
}

// ImageEnv returns the ENV of a pulled image as KEY=VALUE lines; an image
// the engine does not have is deploy.ErrNotFound.
func (c *Client) ImageEnv(ctx context.Context, ref string) ([]string, error) {
	res, err := c.cli.ImageInspect(ctx, ref)
	if err != nil {
		return nil, c.fail("image_inspect", fmt.Errorf("inspect image %s: %w", ref, engineErr(err)))
	}
	if res.Config == nil {
		return nil, nil
	}
	return res.Config.Env, nil
}
