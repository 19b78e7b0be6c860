package deployments

import (
	"fmt"
	"maps"
	"slices"

	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/distribution/reference"
)

// MinPollInterval is the shortest poll interval a config may set: below
// it a poll would be a load test of the registry.
const MinPollInterval = time.Second

// dockerHubPollWarning is the interval under which `liftoff validate`
// warns for Docker Hub, which limits requests per address.
const dockerHubPollWarning = time.Minute

// Poll makes liftoff ask the registry for new digests of the deployment's
// tags, for a host no webhook can reach (see the README's Polling).
type Poll struct {
	Interval time.Duration `yaml:"interval"` // at least MinPollInterval
}

// PollInterval is how often the deployment's tags are polled: its
// poll.interval, else its registry's poll_interval, else 0 (not polled).
func (d *Deployment) PollInterval() time.Duration { return d.pollEvery }

// validatePolls checks poll.interval and registries' poll_interval and
// resolves each deployment's interval. After validateDeployments: the
// images are normalized.
func (c *Config) validatePolls(p *problems) {
	for _, host := range slices.Sorted(maps.Keys(c.Registries)) {
		if r := c.Registries[host]; r.PollInterval != 0 && r.PollInterval < MinPollInterval {
			p.addf("registries."+host+".poll_interval", "%s: want 0 (no poll) or at least %s", r.PollInterval, MinPollInterval)
		}
	}
	for i := range c.Deployments {
		d := &c.Deployments[i]
		d.pollEvery = 0
		if d.Poll != nil {
			if d.Poll.Interval < MinPollInterval {
				p.addf(d.path+".poll.interval", "%s: want at least %s, e.g. 5m", d.Poll.Interval, MinPollInterval)
				continue
			}
			d.pollEvery = d.Poll.Interval
			continue
		}
		if r, ok := c.Registries[imageHost(d.Image)]; ok && r.PollInterval >= MinPollInterval {
			d.pollEvery = r.PollInterval
		}
	}
}

// imageHost is the registry host of a normalized image ("" if invalid).
func imageHost(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return ""
	}
	return reference.Domain(named)
}

// pollWarnings says which Docker Hub deployments poll more often than
// once a minute: its rate limits count requests per address.
func (c *Config) pollWarnings() []string {
	var out []string
	for i := range c.Deployments {
		d := &c.Deployments[i]
		if e := d.pollEvery; e > 0 && e < dockerHubPollWarning && imageHost(d.Image) == "docker.io" {
			out = append(out, fmt.Sprintf("%s (%s): polls docker.io every %s: Docker Hub rate-limits each address, poll every %s or more",
				d.path, d.Name, e, dockerHubPollWarning))
		}
	}
	return out
}

// TagRule is one parsed entry of a deployment's tags, for a poller that
// must pick a tag itself rather than test a pushed one.
type TagRule struct{ r tagRule }

// ParseTagRule parses an entry of tags: an exact tag, "glob:", "semver:"
// or "regexp:".
func ParseTagRule(s string) (TagRule, error) {
	r, err := parseTagRule(s)
	return TagRule{r}, err
}

// Exact returns the tag of an exact rule.
func (t TagRule) Exact() (string, bool) { return t.r.arg, t.r.kind == ruleExact }

// Semver tells whether the rule is a "semver:" constraint.
func (t TagRule) Semver() bool { return t.r.kind == ruleSemver }

// Match tells whether a push of tag satisfies the rule, as Config.Match
// decides it: signature and attestation tags never do.
func (t TagRule) Match(tag string) bool {
	if ValidateTag(tag) != nil || IsSignatureTag(tag) {
		return false
	}
	return t.r.match(tag, &tagVersion{tag: tag})
}

// Highest returns, of tags, the highest version a "semver:" rule allows
// (pre-releases only where the constraint allows them, as when matching
// a push), or "" if none does. Of two tags of one version ("1.2.0" and
// "v1.2.0") the first in tags wins.
func (t TagRule) Highest(tags []string) string {
	if t.r.kind != ruleSemver {
		return ""
	}
	var best string
	var bestV *semver.Version
	for _, tag := range tags {
		if IsSignatureTag(tag) || ValidateTag(tag) != nil {
			continue
		}
		tv := tagVersion{tag: tag}
		v := tv.get()
		if v == nil || !t.r.constraint.Check(v) {
			continue
		}
		if bestV == nil || v.GreaterThan(bestV) {
			best, bestV = tag, v
		}
	}
	return best
}

// String is the rule as written.
func (t TagRule) String() string {
	switch t.r.kind {
	case ruleGlob:
		return "glob:" + t.r.arg
	case ruleSemver:
		return "semver:" + t.r.arg
	case ruleRegexp:
		return "regexp:" + t.r.arg
	}
	return t.r.arg
}

// PollRules returns the deployment's parsed tag rules, its previews' rule
// last (nil when it is not polled): a tag that appears under the previews
// rule starts a preview as a pushed one does.
func (d *Deployment) PollRules() []TagRule {
	if d.pollEvery == 0 {
		return nil
	}
	out := make([]TagRule, len(d.rules), len(d.rules)+1)
	for i, r := range d.rules {
		out[i] = TagRule{r}
	}
	if d.Previews != nil && d.Previews.rule.kind != ruleExact {
		out = append(out, TagRule{d.Previews.rule})
	}
	return out
}
