package deployments

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/distribution/reference"
)

// maxName is the longest repository name, registry host included.
const maxName = 255

// NormalizeRepo returns the canonical repository name: "acme/web" →
// "docker.io/acme/web", "library/nginx" and "nginx" → "docker.io/library/nginx".
// Docker Hub's other host names (index.docker.io, registry-1.docker.io)
// become docker.io. A tag or digest in s is an error.
func NormalizeRepo(s string) (string, error) {
	named, err := parseRepo(s)
	if err != nil {
		return "", err
	}
	if t, ok := named.(reference.Tagged); ok {
		return "", fmt.Errorf("repository %q has a tag (%s): give the repository alone", s, t.Tag())
	}
	if _, ok := named.(reference.Digested); ok {
		return "", fmt.Errorf("repository %q has a digest: give the repository alone", s)
	}
	return named.Name(), nil
}

func parseRepo(s string) (reference.Named, error) {
	if len(s) > 2*maxName {
		// Not quoted: it may be anything a sender put there.
		return nil, fmt.Errorf("repository name is %d characters long, at most %d are allowed", len(s), maxName)
	}
	if rest, ok := strings.CutPrefix(s, "registry-1.docker.io/"); ok {
		// Docker Hub's registry API host; the reference library only
		// knows the legacy index.docker.io.
		s = "docker.io/" + rest
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid repository %q: %w", s, err)
	}
	if d := reference.Domain(named); !isHost(d) {
		// The reference library takes an upper-case first component for a
		// host; liftoff wants a '.', a ':' or localhost in a host, as
		// Docker does, so this is an upper-case namespace.
		return nil, fmt.Errorf("invalid repository %q: %s is not a registry host and a namespace must be lowercase", s, d)
	}
	if n := len(named.Name()); n > maxName {
		return nil, fmt.Errorf("repository %q is %d characters long as %s, at most %d are allowed", s, n, named.Name(), maxName)
	}
	return named, nil
}

// normalizeHost returns the canonical form of a registry host[:port], as
// it appears in front of normalized repositories.
func normalizeHost(h string) (string, error) {
	switch h {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "docker.io", nil
	}
	// A host is what the reference grammar takes as the domain of h/x;
	// anything else ("myregistry") would be a Docker Hub namespace.
	named, err := reference.ParseNormalizedNamed(h + "/x")
	if err != nil || reference.Domain(named) != h || !isHost(h) {
		return "", errors.New("not a registry host[:port]: it needs a '.' or a ':port', or to be localhost")
	}
	return h, nil
}

// isHost tells whether the first component of a name is a registry host
// rather than a namespace.
func isHost(s string) bool {
	return s == "localhost" || strings.ContainsAny(s, ".:")
}

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
	return normalizeHost(m)
}

// PullRepo returns the repository to pull repo from (its registry's mirror,
// if any: docker.io/acme/web → 127.0.0.1:5000/acme/web) and the credentials
// for it (password_file read now, so a rotated password applies at once).
//
// Through a mirror, the credentials are those of the mirror's own entry in
// registries, if it has one, else none: the upstream registry's password
// is never sent to another host.
func (c *Config) PullRepo(repo string) (string, Credentials, error) {
	named, err := parseRepo(repo)
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
