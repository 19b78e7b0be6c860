package deployments

import (
	"slices"
	"strings"
	"unicode"
)

// How promote_from matches an image with what succeeded in the other
// deployment.
const (
	// MatchDigest: the same digest (one image, promoted as it is).
	MatchDigest = "digest"
	// MatchRevision: an image of the same source revision, by a label of
	// the image config (two images built from one commit: Dockerfile for
	// production, dev.Dockerfile for staging).
	MatchRevision = "revision"
)

// DefaultRevisionLabel is the label promote_from's match: revision reads
// by default: the OCI one, which docker/metadata-action writes and
// `docker build --label org.opencontainers.image.revision=$GIT_SHA` sets.
const DefaultRevisionLabel = "org.opencontainers.image.revision"

// Promotion is deployments[].promote_from: another deployment whose
// success an image needs before it deploys here. Written as that
// deployment's name (match: digest), or as {deployment, match, label}.
type Promotion struct {
	Deployment string `yaml:"deployment"`
	// Match is MatchDigest ("" too) or MatchRevision.
	Match string `yaml:"match"`
	// Label is the revision label with MatchRevision
	// (DefaultRevisionLabel when empty); with MatchDigest it must be empty.
	Label string `yaml:"label"`

	long bool // written as a mapping: errors name promote_from.deployment
}

// UnmarshalYAML reads the name alone or the mapping, keeping the
// decoder's strictness (unknown keys) and its line-numbered type errors.
func (p *Promotion) UnmarshalYAML(unmarshal func(any) error) error {
	var name string
	if err := unmarshal(&name); err == nil {
		*p = Promotion{Deployment: name}
		return nil
	}
	// Named so that yaml's type errors say "into deployments.Promotion".
	type Promotion struct {
		Deployment string `yaml:"deployment"`
		Match      string `yaml:"match"`
		Label      string `yaml:"label"`
	}
	var raw Promotion
	err := unmarshal(&raw)
	// After a type error the file is refused anyway: no second error
	// about a deployment that may be the one that failed.
	p.Deployment, p.Match, p.Label, p.long = raw.Deployment, raw.Match, raw.Label, err == nil
	return err
}

// ByRevision tells whether images are matched by their revision label.
func (p Promotion) ByRevision() bool { return p.Match == MatchRevision }

// RevisionLabel is the label a revision match reads.
func (p Promotion) RevisionLabel() string {
	if p.Label == "" {
		return DefaultRevisionLabel
	}
	return p.Label
}

// RevisionLabels returns the labels whose values each deploy records, so
// that a deployment promoting from it by revision can find them:
// DefaultRevisionLabel and the label of every promote_from that matches
// by revision, each once.
func (c *Config) RevisionLabels() []string {
	out := []string{DefaultRevisionLabel}
	for i := range c.Deployments {
		p := c.Deployments[i].PromoteFrom
		if p.ByRevision() && !slices.Contains(out, p.RevisionLabel()) {
			out = append(out, p.RevisionLabel())
		}
	}
	return out
}

// checkPromotion checks promote_from's match and label; at is
// deployments[i].promote_from.
func checkPromotion(p *problems, at string, pr *Promotion) {
	switch {
	case pr.long && pr.Deployment == "":
		p.addf(at+".deployment", "missing: the deployment whose success an image needs, e.g. its staging one")
	}
	switch pr.Match {
	case "", MatchDigest:
		if pr.Label != "" {
			p.addf(at+".label", "only with match: revision (the label that holds an image's source revision)")
		}
	case MatchRevision:
		if l := pr.Label; l != "" && (len(l) > 255 || strings.IndexFunc(l, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '=' }) >= 0) {
			p.addf(at+".label", "%s: want a label key such as %s", p.quote(at+".label", l), DefaultRevisionLabel)
		}
	default:
		p.addf(at+".match", "%s: want digest (the same image) or revision (an image built from the same commit, by its %s label)",
			p.quote(at+".match", pr.Match), DefaultRevisionLabel)
	}
}
