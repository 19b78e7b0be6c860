package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// withAuth calls call with auth's credentials, fetched from its Source
// when it has one. When the registry refuses fetched credentials (an
// expired token), it asks the Source for new ones, once, and calls once
// more: a second refusal is the error. Errors of call are redacted of the
// credentials it was given.
func withAuth(ctx context.Context, auth deploy.Auth, call func(deploy.Auth) error) error {
	if auth.Source == nil {
		return redact(call(auth), auth)
	}
	a, err := auth.Source.Fetch(ctx, deploy.Auth{})
	if err != nil {
		return err
	}
	err = redact(call(a), a)
	if err == nil || a == (deploy.Auth{}) || !refused(err) {
		return err
	}
	if a, err = auth.Source.Fetch(ctx, a); err != nil {
		return err
	}
	return redact(call(a), a)
}

// fetchAuth returns auth's credentials, from its Source when it has one.
func fetchAuth(ctx context.Context, auth deploy.Auth) (deploy.Auth, error) {
	if auth.Source == nil {
		return auth, nil
	}
	return auth.Source.Fetch(ctx, deploy.Auth{})
}

// refused tells whether the registry refused the credentials: 401, or
// 403 (ECR's answer to an expired token), from the registry itself or in
// the engine's words ("unauthorized", "denied: ...").
func refused(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden
	}
	if cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"unauthorized", "authentication required", "access denied", "denied:"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// encodeAuth builds the X-Registry-Auth header for ref's registry:
// base64url of a JSON AuthConfig; "" when anonymous.
func encodeAuth(a deploy.Auth, ref string) (string, error) {
	if a == (deploy.Auth{}) {
		return "", nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(registry.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		IdentityToken: a.IdentityToken,
		ServerAddress: r.Context().RegistryStr(),
	})
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// redact keeps a password or token out of an error message, whatever a
// library put into it. The error chain is kept.
func redact(err error, a deploy.Auth) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range []string{a.Password, a.IdentityToken} {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return redacted{err: err, msg: msg}
}

type redacted struct {
	err error
	msg string
}

func (e redacted) Error() string { return e.msg }
func (e redacted) Unwrap() error { return e.err }
