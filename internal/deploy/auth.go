package deploy

import (
	"context"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// CredentialSource gives a registry's credentials when a call needs them.
// A runtime asks it again, once, when the registry refuses what it gave
// (401, or 403 as an expired ECR token gets), and retries the call once.
type CredentialSource interface {
	// Fetch returns the credentials to send. refused, when not zero, are
	// those the registry just refused: it returns others, fetched anew
	// unless another caller has done so already. Safe to repeat and to
	// call concurrently. Its errors hold no secret.
	Fetch(ctx context.Context, refused Auth) (Auth, error)
}

// AuthOf turns a registry's credentials from the config
// (deployments.Config.PullRepo) into what Resolve and Pull take. Those of
// a credential helper or a Docker config.json stay a source, asked at
// each call.
func AuthOf(c deployments.Credentials) Auth {
	if c.Source != nil {
		return Auth{Source: configSource{c.Source}}
	}
	return Auth{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken}
}

var _ CredentialSource = configSource{}

// configSource is a CredentialSource over the config's.
type configSource struct{ s *deployments.CredentialSource }

func (c configSource) Fetch(ctx context.Context, refused Auth) (Auth, error) {
	got, err := c.s.Fetch(ctx, deployments.Credentials{Username: refused.Username, Password: refused.Password, IdentityToken: refused.IdentityToken})
	if err != nil {
		return Auth{}, err
	}
	return Auth{Username: got.Username, Password: got.Password, IdentityToken: got.IdentityToken}, nil
}
