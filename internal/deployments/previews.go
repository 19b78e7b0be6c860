package deployments

import (
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// Previews is deployments[].previews: a push of a tag its rule matches
// (a pull request's "pr-123") starts a container of its own beside the
// deployment's, with the same spec and environment, named
// "<deployment>-<tag>" and served by the front door at Host with {tag}
// replaced. A newer push of the tag replaces it, health-gated as any
// deploy; it is removed after TTL without a push, through the API, or as
// the oldest when Max previews run and another starts.
type Previews struct {
	// Tags is one tag rule, as in tags: "glob:pr-*", "regexp:^pr-[0-9]+$".
	Tags string `yaml:"tags"`
	// Host is the front door's Host for a preview: "{tag}.preview.example.com".
	// {tag} is the tag in lower case with "_" and "." as "-".
	Host string `yaml:"host"`
	// TTL is how long a preview runs after its last push.
	TTL time.Duration `yaml:"ttl"`
	// Max is how many previews of the deployment run at once.
	Max int `yaml:"max"`

	rule imageref.TagRule // parsed Tags
}

// checkPreviews checks deployments[].previews (after the proxy, whose port
// and settings a preview takes).
func (c *Config) checkPreviews(p *problems, at string, d *Deployment) {
	if c.nullPaths[at] {
		p.addf(at, "given with no value: remove it, or give its tags, host, ttl and max")
		return
	}
	v := d.Previews
	if v == nil {
		return
	}
	if v.Tags == "" {
		p.addf(at+".tags", "missing: one tag rule, e.g. \"glob:pr-*\"")
	} else if !strings.Contains(v.Tags, ":") && strings.ContainsAny(v.Tags, "*?[") {
		if p.secret(at + ".tags") {
			p.addf(at+".tags", "a pattern without glob: (from ${VAR}, not shown): write it glob:<pattern>, e.g. \"glob:pr-*\"")
		} else {
			p.addf(at+".tags", "%q is a pattern without its kind: write %q", v.Tags, "glob:"+v.Tags)
		}
	} else if r, err := imageref.ParseTagRule(v.Tags); err != nil {
		p.add(at+".tags", err)
	} else {
		v.rule = r
		if _, exact := r.Exact(); exact {
			p.addf(at+".tags", "%s names one tag: a preview rule needs glob:, regexp: or semver:, e.g. \"glob:pr-*\"", p.quote(at+".tags", v.Tags))
		}
		for _, m := range d.rules {
			if m.String() == r.String() {
				p.addf(at+".tags", "%s is also one of tags: a push it matches deploys the deployment itself", p.quote(at+".tags", v.Tags))
			}
		}
	}
	switch {
	case v.Host == "":
		p.addf(at+".host", "missing: the front door's host of a preview, with {tag}, e.g. \"{tag}.preview.example.com\"")
	case !strings.Contains(v.Host, "{tag}"):
		p.addf(at+".host", "%s has no {tag}: every preview needs a host of its own, e.g. \"{tag}.preview.example.com\"", p.quote(at+".host", v.Host))
	default:
		if msg := checkHost(strings.ReplaceAll(v.Host, "{tag}", "pr-1")); msg != "" {
			p.addf(at+".host", "%s: %s", p.quote(at+".host", v.Host), msg)
		} else if strings.HasPrefix(v.Host, "*.") {
			p.addf(at+".host", "%s: a preview's host is exact, not a wildcard", p.quote(at+".host", v.Host))
		}
	}
	if v.TTL <= 0 {
		p.addf(at+".ttl", "want how long a preview runs after its last push, e.g. 72h")
	}
	if v.Max < 1 {
		p.addf(at+".max", "want how many previews may run at once, 1 or more, e.g. 10")
	}
	if c.FrontDoor == nil {
		p.addf(at, "previews are served by the front door: add front_door (listen: \":443\" ...)")
	}
	if d.Proxy == nil {
		p.addf(at, "a preview is served on the deployment's proxy.port: give the deployment a proxy (hosts and port)")
	}
	if d.Service != nil {
		p.addf(at, "a Swarm service has no previews: drop previews or service")
	}
	if d.Compose != nil {
		p.addf(at, "a deployment from a compose service has no previews yet: drop previews or compose")
	}
}

// checkPreviewNames refuses a deployment whose name is one a preview of
// another would take.
func (c *Config) checkPreviewNames(p *problems) {
	for i := range c.Deployments {
		d := &c.Deployments[i]
		if pv := c.previewParent(d.Name); pv != nil {
			p.addf(d.path+".name", "%s is the name a preview of %s would take: rename one", p.quote(d.path+".name", d.Name), pv.Name)
		}
	}
}

// PreviewName is the name, of the preview and of its container, that a
// push of tag starts beside d: "<deployment>-<tag>". A tag is already a
// valid end of a container name.
func PreviewName(d *Deployment, tag string) string { return d.Name + "-" + tag }

// PreviewHost is the front door's Host of d's preview of tag.
func PreviewHost(d *Deployment, tag string) string {
	if d.Previews == nil {
		return ""
	}
	label := strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r == '_' || r == '.':
			return '-'
		}
		return r
	}, tag)
	label = strings.Trim(label, "-")
	return strings.ReplaceAll(d.Previews.Host, "{tag}", label)
}

// previewHostProblem says why PreviewHost(d, tag) is no host name a
// preview can be served and certified at ("" if it is one): a long tag
// makes a label (between dots) longer than 63 characters. Such a tag
// starts no preview rather than one cut to a host another tag may share.
func previewHostProblem(d *Deployment, tag string) string {
	h := PreviewHost(d, tag)
	if msg := checkHost(h); msg != "" {
		return fmt.Sprintf("tag %q starts no preview: its host %q is %s; push a shorter tag", tag, h, msg)
	}
	return ""
}

// previewMatches tells whether a push of tag starts a preview of d: its
// previews rule matches and its own tags do not.
//
// A tag ending as a set-aside name (pr-1.liftoff-next) never does: its
// preview would be named as the next (or previous) container of another
// preview's deploy (web-pr-1.liftoff-next), which that deploy and its
// repair take for their own.
func (d *Deployment) previewMatches(tag string, v *imageref.TagVersion) bool {
	if strings.HasSuffix(tag, ".liftoff-next") || strings.HasSuffix(tag, ".liftoff-prev") || d.Previews == nil {
		return false
	}
	if _, exact := d.Previews.rule.Exact(); exact {
		return false
	}
	return d.Previews.rule.MatchValid(v) && !d.matches(v)
}

// Preview returns the deployment a push of tag starts as a preview of d,
// or nil when d's previews do not take tag. It is a copy of d named
// PreviewName, routed by the front door at PreviewHost only, without d's
// network aliases, published ports, poll and promote_from, and with
// PreviewOf set: a preview never runs the environment's backup.
func (d *Deployment) Preview(tag string) *Deployment {
	if tv := imageref.NewTagVersion(tag); imageref.ValidateTag(tag) != nil || !d.previewMatches(tag, &tv) || previewHostProblem(d, tag) != "" {
		return nil
	}
	pv := *d
	pv.Name = PreviewName(d, tag)
	pv.Container = d.Container
	pv.Container.Name = pv.Name
	pv.Container.Aliases = nil
	pv.Container.Ports = nil
	px := *d.Proxy
	px.Listen, px.Hosts, px.PathPrefix = "", []string{PreviewHost(d, tag)}, ""
	pv.Proxy = &px
	pv.Poll, pv.pollEvery, pv.PromoteFrom = nil, 0, Promotion{}
	pv.Previews = nil
	pv.Tags = []string{tag}
	pv.rules = []imageref.TagRule{imageref.ExactTagRule(tag)}
	pv.rulesText = "[" + tag + "]"
	pv.PreviewOf, pv.PreviewTag = d.Name, tag
	return &pv
}

// previewParent returns the deployment whose preview name is name, if a
// preview rule takes the rest of it as a tag.
func (c *Config) previewParent(name string) *Deployment {
	for i := range c.Deployments {
		d := &c.Deployments[i]
		if d.Previews == nil || d.Name == name {
			continue
		}
		tag, ok := strings.CutPrefix(name, d.Name+"-")
		if !ok || imageref.ValidateTag(tag) != nil {
			continue
		}
		if tv := imageref.NewTagVersion(tag); d.previewMatches(tag, &tv) && previewHostProblem(d, tag) == "" {
			return d
		}
	}
	return nil
}

// previewByName is the preview named name, or nil.
func (c *Config) previewByName(name string) *Deployment {
	d := c.previewParent(name)
	if d == nil {
		return nil
	}
	return d.Preview(strings.TrimPrefix(name, d.Name+"-"))
}

// WithPreviews lists the deployments that have previews.
func (c *Config) WithPreviews() []*Deployment {
	var out []*Deployment
	for i := range c.Deployments {
		if c.Deployments[i].Previews != nil {
			out = append(out, &c.Deployments[i])
		}
	}
	return out
}

// FrontDoorTLS tells whether the front door serves HTTPS (a preview's URL
// is https:// then).
func (c *Config) FrontDoorTLS() bool { return c.FrontDoor != nil && c.FrontDoor.TLS != nil }

// PreviewsOf returns the deployments of repo (normalized, as for Match)
// whose previews rule takes tag: those a preview of repo:tag may run for.
// A deployment whose own tags take tag is not among them.
func (c *Config) PreviewsOf(repo, tag string) []*Deployment {
	if imageref.ValidateTag(tag) != nil {
		return nil
	}
	var out []*Deployment
	v := imageref.NewTagVersion(tag)
	for _, i := range c.byRepo[repo] {
		if d := &c.Deployments[i]; d.previewMatches(tag, &v) {
			out = append(out, d)
		}
	}
	return out
}
