package imageref

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

// TagRule is one parsed entry of a deployment's tags: an exact tag, or
// "glob:", "semver:" or "regexp:" and its pattern. It is compiled once, at
// the config's Validate, so that matching a push costs no parsing. It
// serves a pushed tag (MatchValid), and a poller that must pick a tag
// itself rather than test a pushed one (Match, Highest).
type TagRule struct {
	kind       int
	arg        string // the text after the prefix
	constraint *semver.Constraints
	re         *regexp.Regexp
}

// ParseTagRule parses an entry of tags: an exact tag, "glob:", "semver:"
// or "regexp:". An exact rule must be a valid tag and no signature or
// attestation tag.
func ParseTagRule(s string) (TagRule, error) {
	kind, arg, ok := strings.Cut(s, ":")
	if !ok {
		if err := ValidateTag(s); err != nil {
			return TagRule{}, err
		}
		if IsSignatureTag(s) {
			// Such a rule could never deploy anything.
			return TagRule{}, fmt.Errorf("%q is a signature or attestation tag, which is never deployed", s)
		}
		return TagRule{kind: ruleExact, arg: s}, nil
	}
	if arg == "" {
		return TagRule{}, fmt.Errorf("%q: nothing after %q", s, kind+":")
	}
	switch kind {
	case "glob":
		// path.Match checks the whole pattern even when the name fails.
		if _, err := path.Match(arg, ""); err != nil {
			return TagRule{}, fmt.Errorf("invalid glob %q: %w", arg, err)
		}
		return TagRule{kind: ruleGlob, arg: arg}, nil
	case "semver":
		c, err := semver.NewConstraint(arg)
		if err != nil {
			return TagRule{}, fmt.Errorf("invalid semver constraint %q: %w", arg, err)
		}
		return TagRule{kind: ruleSemver, arg: arg, constraint: c}, nil
	case "regexp":
		re, err := regexp.Compile(arg)
		if err != nil {
			return TagRule{}, fmt.Errorf("invalid regexp %q: %w", arg, err)
		}
		return TagRule{kind: ruleRegexp, arg: arg, re: re}, nil
	}
	return TagRule{}, fmt.Errorf("unknown rule %q: want an exact tag or one of glob:, semver:, regexp: before it", kind+":")
}

// ExactTagRule returns the exact rule for tag, unchecked: the caller has
// validated tag (a preview's rule, the tag it was started for).
func ExactTagRule(tag string) TagRule { return TagRule{kind: ruleExact, arg: tag} }

// Exact returns the tag of an exact rule.
func (r TagRule) Exact() (string, bool) { return r.arg, r.kind == ruleExact }

// Semver tells whether the rule is a "semver:" constraint.
func (r TagRule) Semver() bool { return r.kind == ruleSemver }

// TagVersion is a tag whose version is parsed at most once per push,
// however many semver rules look at it. Make one with NewTagVersion.
type TagVersion struct {
	tag    string
	parsed bool
	v      *semver.Version
}

// NewTagVersion returns tag, its version not parsed yet.
func NewTagVersion(tag string) TagVersion { return TagVersion{tag: tag} }

func (t *TagVersion) get() *semver.Version {
	if !t.parsed {
		t.parsed = true
		// Strict: only full X.Y.Z[-pre] versions, with an optional v.
		// Floating tags like "1" or "1.4" move with every release and
		// would each redeploy what their full version already did.
		t.v, _ = semver.StrictNewVersion(strings.TrimPrefix(t.tag, "v"))
	}
	return t.v
}

// MatchValid tells whether the tag of v satisfies the rule, with no check
// of the tag itself: the caller has already refused invalid tags and
// signature and attestation tags (see Match).
func (r TagRule) MatchValid(v *TagVersion) bool {
	tag := v.tag
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

// Match tells whether a push of tag satisfies the rule, as deployments'
// Config.Match decides it: signature and attestation tags never do.
func (r TagRule) Match(tag string) bool {
	if ValidateTag(tag) != nil || IsSignatureTag(tag) {
		return false
	}
	return r.MatchValid(&TagVersion{tag: tag})
}

// Highest returns, of tags, the highest version a "semver:" rule allows
// (pre-releases only where the constraint allows them, as when matching
// a push), or "" if none does. Of two tags of one version ("1.2.0" and
// "v1.2.0") the first in tags wins.
func (r TagRule) Highest(tags []string) string {
	if r.kind != ruleSemver {
		return ""
	}
	var best string
	var bestV *semver.Version
	for _, tag := range tags {
		if IsSignatureTag(tag) || ValidateTag(tag) != nil {
			continue
		}
		tv := TagVersion{tag: tag}
		v := tv.get()
		if v == nil || !r.constraint.Check(v) {
			continue
		}
		if bestV == nil || v.GreaterThan(bestV) {
			best, bestV = tag, v
		}
	}
	return best
}

// String is the rule as written. Two rules are the same rule when their
// Strings are equal: an exact tag has no ':'.
func (r TagRule) String() string {
	switch r.kind {
	case ruleGlob:
		return "glob:" + r.arg
	case ruleSemver:
		return "semver:" + r.arg
	case ruleRegexp:
		return "regexp:" + r.arg
	}
	return r.arg
}

// MatchTag tells whether tag satisfies the rule (as written in a
// deployment's tags). Signature and attestation tags never do.
func MatchTag(rule, tag string) (bool, error) {
	r, err := ParseTagRule(rule)
	if err != nil {
		return false, err
	}
	if IsSignatureTag(tag) || ValidateTag(tag) != nil {
		return false, nil
	}
	return r.MatchValid(&TagVersion{tag: tag}), nil
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
