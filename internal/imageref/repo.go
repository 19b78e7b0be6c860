// Package imageref holds image references as liftoff reads them:
// repository names (NormalizeRepo, ParseRepo, NormalizeHost), tags
// (ValidateTag, IsSignatureTag) and the tag rules of a deployment's tags
// (TagRule). It is a leaf: it reads no configuration and imports nothing
// of liftoff's, so that the webhook parsers and the config share one
// grammar and the fuzz targets of these grammars run in a small binary.
package imageref

import (
	"errors"
	"fmt"
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
	named, err := ParseRepo(s)
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

// ParseRepo parses s as a reference (a repository, with a tag or digest
// or neither) with its name normalized as NormalizeRepo does it, and
// refuses an upper-case namespace and a name of more than 255 characters.
// Whether a tag or digest is allowed is the caller's to decide.
func ParseRepo(s string) (reference.Named, error) {
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

// NormalizeHost returns the canonical form of a registry host[:port], as
// it appears in front of normalized repositories.
func NormalizeHost(h string) (string, error) {
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
