package deployments

import (
	"strconv"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// Match returns the deployments that a push of repo:tag updates (repo already
// normalized, e.g. docker.io/acme/web) and why the others of that repo do not.
// It runs on every webhook: rules are compiled, nothing is read from disk.
func (c *Config) Match(repo, tag string) MatchResult {
	if err := imageref.ValidateTag(tag); err != nil {
		return MatchResult{Ignored: []Ignored{{Tag: tag, Reason: err.Error()}}}
	}
	if imageref.IsSignatureTag(tag) {
		return MatchResult{Ignored: []Ignored{{Tag: tag, Reason: "signature/attestation tags are not deployed"}}}
	}
	idx := c.byRepo[repo]
	if len(idx) == 0 {
		return MatchResult{Ignored: []Ignored{{Tag: tag, Reason: "no deployment for " + repo}}}
	}
	var res MatchResult
	v := imageref.NewTagVersion(tag)
	for _, i := range idx {
		d := &c.Deployments[i]
		if d.matches(&v) {
			res.Accepted = append(res.Accepted, d)
		} else if d.previewMatches(tag, &v) {
			if msg := previewHostProblem(d, tag); msg != "" {
				res.Ignored = append(res.Ignored, Ignored{Deployment: d.Name, Reason: msg})
			} else {
				res.Accepted = append(res.Accepted, d.Preview(tag))
			}
		} else {
			res.Ignored = append(res.Ignored, Ignored{
				Deployment: d.Name,
				Reason:     "tag " + strconv.Quote(tag) + " matches none of " + d.rulesText,
			})
		}
	}
	return res
}

func (d *Deployment) matches(v *imageref.TagVersion) bool {
	for i := range d.rules {
		if d.rules[i].MatchValid(v) {
			return true
		}
	}
	return false
}

// Deployment returns the deployment with that name, or nil. A preview's
// name ("web-pr-123", see Preview) gives the preview, a new copy at each
// call.
func (c *Config) Deployment(name string) *Deployment {
	if i, ok := c.byName[name]; ok {
		return &c.Deployments[i]
	}
	return c.previewByName(name)
}

// All returns every deployment, in the file's order.
func (c *Config) All() []*Deployment {
	out := make([]*Deployment, len(c.Deployments))
	for i := range c.Deployments {
		out[i] = &c.Deployments[i]
	}
	return out
}

// ContainerName is the container's name: container.name or the deployment's.
func (d *Deployment) ContainerName() string {
	if d.Container.Name != "" {
		return d.Container.Name
	}
	return d.Name
}

// Path is the file the config was loaded from ("" when parsed from bytes).
func (c *Config) Path() string { return c.path }
