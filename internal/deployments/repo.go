package deployments

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/distribution/reference"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// mirrorHost reduces a mirror setting (host[:port] or http(s)://host[:port])
// to the host[:port] that goes in front of a repository: whether the engine
// speaks HTTP or HTTPS to it is the engine's insecure-registries setting.
func mirrorHost(m string) (string, error) {
	if strings.Contains(m, "://") {
		u, err := url.Parse(m)
		if err != nil {
			return "", err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", fmt.Errorf("scheme %q: want http or https", u.Scheme)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return "", errors.New("only scheme://host[:port] is allowed: images are pulled as host[:port]/repository")
		}
		m = u.Host
	}
	return imageref.NormalizeHost(m)
}

// PullRepo returns the repository to pull repo from (its registry's mirror,
// if any: docker.io/acme/web → 127.0.0.1:5000/acme/web) and the credentials
// for it (password_file read now, so a rotated password applies at once).
//
// Through a mirror, the credentials are those of the mirror's own entry in
// registries, if it has one, else none: the upstream registry's password
// is never sent to another host.
func (c *Config) PullRepo(repo string) (string, Credentials, error) {
	named, err := imageref.ParseRepo(repo)
	if err != nil {
		return "", Credentials{}, err
	}
	if _, ok := named.(reference.Tagged); ok {
		return "", Credentials{}, fmt.Errorf("repository %q has a tag", repo)
	}
	if _, ok := named.(reference.Digested); ok {
		return "", Credentials{}, fmt.Errorf("repository %q has a digest", repo)
	}
	host := reference.Domain(named)
	if r, ok := c.Registries[host]; ok && r.Mirror != "" {
		m := r.mirrorHost
		if m == "" { // not validated
			if m, err = mirrorHost(r.Mirror); err != nil {
				return "", Credentials{}, fmt.Errorf("registries.%s.mirror: %w", host, err)
			}
		}
		// The path keeps docker.io's library/: docker.io/library/nginx
		// is m/library/nginx, as pull-through caches expect.
		creds, err := c.credentials(m)
		return m + "/" + reference.Path(named), creds, err
	}
	creds, err := c.credentials(host)
	return named.Name(), creds, err
}

func (c *Config) credentials(host string) (Credentials, error) {
	r, ok := c.Registries[host]
	if ok && (r.CredentialHelper != "" || r.DockerConfig != "") {
		return Credentials{Source: c.credentialSource(host, r)}, nil // fetched at the call
	}
	if !ok || r.Username == "" && r.PasswordFile == "" {
		return Credentials{}, nil
	}
	pw, err := readSecretFile(c.resolve(r.PasswordFile))
	if err != nil {
		return Credentials{}, fmt.Errorf("registries.%s.password_file: %w", host, err)
	}
	return Credentials{Username: r.Username, Password: pw}, nil
}
