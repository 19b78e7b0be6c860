package deployments

import (
	"fmt"
	"maps"
	"slices"

	"time"

	"github.com/distribution/reference"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
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

// PollRules returns the deployment's parsed tag rules, its previews' rule
// last (nil when it is not polled): a tag that appears under the previews
// rule starts a preview as a pushed one does.
func (d *Deployment) PollRules() []imageref.TagRule {
	if d.pollEvery == 0 {
		return nil
	}
	out := make([]imageref.TagRule, len(d.rules), len(d.rules)+1)
	copy(out, d.rules)
	if d.Previews != nil {
		if _, exact := d.Previews.rule.Exact(); !exact {
			out = append(out, d.Previews.rule)
		}
	}
	return out
}
