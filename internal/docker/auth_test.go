package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// fakeSource is a deploy.CredentialSource whose Fetch is FetchFn.
type fakeSource struct {
	FetchFn func(ctx context.Context, refused deploy.Auth) (deploy.Auth, error)
}

func (f *fakeSource) Fetch(ctx context.Context, refused deploy.Auth) (deploy.Auth, error) {
	return f.FetchFn(ctx, refused)
}

// withAuth retries once, with credentials fetched anew, only after a
// refusal of fetched credentials; its errors never show them.
func TestWithAuth(t *testing.T) {
	unauthorized := &transport.Error{StatusCode: http.StatusUnauthorized}
	tests := []struct {
		name      string
		errs      []error // what each call returns
		fetchErr  error   // of the second Fetch
		anonymous bool    // the source gives no credentials
		calls     int
		fetches   int
		want      string // in the error; "" for none
	}{
		{"ok", []error{nil}, nil, false, 1, 1, ""},
		{"401 then ok", []error{unauthorized, nil}, nil, false, 2, 2, ""},
		{"ECR's 403", []error{&transport.Error{StatusCode: http.StatusForbidden}, nil}, nil, false, 2, 2, ""},
		{"engine's words", []error{errors.New("Error response from daemon: unauthorized"), nil}, nil, false, 2, 2, ""},
		{"refused twice", []error{unauthorized, errors.New("denied: token-2 expired")}, nil, false, 2, 2, "denied: xxxxx expired"},
		{"not a refusal", []error{errors.New("manifest unknown")}, nil, false, 1, 1, "manifest unknown"},
		{"anonymous", []error{unauthorized}, nil, true, 1, 1, "401"},
		{"helper fails", []error{fmt.Errorf("token-1 refused: %w", unauthorized)}, errors.New("docker-credential-x failed"), false, 1, 2, "docker-credential-x failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fetches, calls := 0, 0
			src := &fakeSource{FetchFn: func(_ context.Context, refused deploy.Auth) (deploy.Auth, error) {
				fetches++
				if refused != (deploy.Auth{}) && refused.Password != fmt.Sprintf("token-%d", fetches-1) {
					t.Errorf("fetch %d: refused %+v", fetches, refused)
				}
				switch {
				case tt.anonymous:
					return deploy.Auth{}, nil
				case fetches > 1 && tt.fetchErr != nil:
					return deploy.Auth{}, tt.fetchErr
				}
				return deploy.Auth{Username: "AWS", Password: fmt.Sprintf("token-%d", fetches)}, nil
			}}
			err := withAuth(t.Context(), deploy.Auth{Source: src}, func(a deploy.Auth) error {
				calls++
				if !tt.anonymous && a.Password != fmt.Sprintf("token-%d", calls) {
					t.Errorf("call %d with %+v", calls, a)
				}
				return tt.errs[calls-1]
			})
			if calls != tt.calls || fetches != tt.fetches {
				t.Errorf("%d calls, %d fetches; want %d, %d", calls, fetches, tt.calls, tt.fetches)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "token-"):
				t.Errorf("error shows a token: %v", err)
			}
		})
	}
}

func TestEncodeAuthIdentityToken(t *testing.T) {
	h, err := encodeAuth(deploy.Auth{IdentityToken: "refresh"}, "ghcr.io/acme/web@sha256:"+strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil || ac.IdentityToken != "refresh" || ac.ServerAddress != "ghcr.io" || ac.Password != "" {
		t.Errorf("X-Registry-Auth = %s (%v)", b, err)
	}
	if h, err := encodeAuth(deploy.Auth{}, "not a ref!"); h != "" || err != nil {
		t.Errorf("anonymous: %q, %v", h, err)
	}
}
