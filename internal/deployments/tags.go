package deployments

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Kinds of tag rule, by prefix: none (exact), "glob:", "semver:", "regexp:".
const (
	ruleExact = iota
	ruleGlob
	ruleSemver
	ruleRegexp
)

// tagRule is one parsed entry of a deployment's tags, compiled once at
// Validate so that matching a push costs no parsing.
type tagRule struct {
	kind       int
	arg        string // the text after the prefix
	constraint *semver.Constraints
	re         *regexp.Regexp
}

func parseTagRule(s string) (tagRule, error) {
	kind, arg, ok := strings.Cut(s, ":")
	if !ok {
		if err := ValidateTag(s); err != nil {
			return tagRule{}, err
		}
		if IsSignatureTag(s) {
			// Such a rule could never deploy anything.
			return tagRule{}, fmt.Errorf("%q is a signature or attestation tag, which is never deployed", s)
		}
		return tagRule{kind: ruleExact, arg: s}, nil
	}
	if arg == "" {
		return tagRule{}, fmt.Errorf("%q: nothing after %q", s, kind+":")
	}
	switch kind {
	case "glob":
		// path.Match checks the whole pattern even when the name fails.
		if _, err := path.Match(arg, ""); err != nil {
			return tagRule{}, fmt.Errorf("invalid glob %q: %w", arg, err)
		}
		return tagRule{kind: ruleGlob, arg: arg}, nil
	case "semver":
		c, err := semver.NewConstraint(arg)
		if err != nil {
			return tagRule{}, fmt.Errorf("invalid semver constraint %q: %w", arg, err)
		}
		return tagRule{kind: ruleSemver, arg: arg, constraint: c}, nil
	case "regexp":
		re, err := regexp.Compile(arg)
		if err != nil {
			return tagRule{}, fmt.Errorf("invalid regexp %q: %w", arg, err)
		}
		return tagRule{kind: ruleRegexp, arg: arg, re: re}, nil
	}
	return tagRule{}, fmt.Errorf("unknown rule %q: want an exact tag or one of glob:, semver:, regexp: before it", kind+":")
}

// tagVersion parses a tag as a version at most once per push, however
// many semver rules look at it.
type tagVersion struct {
	tag    string
	parsed bool
	v      *semver.Version
}

func (t *tagVersion) get() *semver.Version {
	if !t.parsed {
		t.parsed = true
		// Strict: only full X.Y.Z[-pre] versions, with an optional v.
		// Floating tags like "1" or "1.4" move with every release and
		// would each redeploy what their full version already did.
		t.v, _ = semver.StrictNewVersion(strings.TrimPrefix(t.tag, "v"))
	}
	return t.v
}

func (r *tagRule) match(tag string, v *tagVersion) bool {
	switch r.kind {
	case ruleExact:
		return tag == r.arg
	case ruleGlob:
		ok, _ := path.Match(r.arg, tag)
		return ok
	case ruleSemver:
		ver := v.get()
		return ver != nil && r.constraint.Check(ver)
	case ruleRegexp:
		return r.re.MatchString(tag)
	}
	return false
}

// MatchTag tells whether tag satisfies the rule (as written in a
// deployment's tags). Signature and attestation tags never do.
func MatchTag(rule, tag string) (bool, error) {
	r, err := parseTagRule(rule)
	if err != nil {
		return false, err
	}
	if IsSignatureTag(tag) || ValidateTag(tag) != nil {
		return false, nil
	}
	return r.match(tag, &tagVersion{tag: tag}), nil
}

// maxTag is the longest tag the distribution spec allows.
const maxTag = 128

// ValidateTag checks the tag grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func ValidateTag(tag string) error {
	switch {
	case tag == "":
		return errors.New("empty tag")
	case len(tag) > maxTag:
		// Not quoted: it may be anything a sender put there.
		return fmt.Errorf("tag is %d characters long, at most %d are allowed", len(tag), maxTag)
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' ||
			i > 0 && (c == '.' || c == '-')
		if !ok {
			return fmt.Errorf("invalid tag %q: want [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag)
		}
	}
	return nil
}

// IsSignatureTag tells whether tag is a signature or attestation tag
// (sha256-<hex>, *.sig, *.att): valid, never deployable. Cosign and the
// OCI referrers fallback push these next to the image; deploying one would
// run something that is not an image.
func IsSignatureTag(tag string) bool {
	if strings.HasSuffix(tag, ".sig") || strings.HasSuffix(tag, ".att") {
		return true
	}
	rest, ok := strings.CutPrefix(tag, "sha256-")
	if !ok || len(rest) < 64 {
		return false
	}
	for i := 0; i < 64; i++ {
		c := rest[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	// sha256-<hex> alone (referrers) or with a suffix (.sbom, ...).
	return len(rest) == 64 || rest[64] == '.'
}
