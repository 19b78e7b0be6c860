package deployments

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/distribution/reference"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// validateDeployments checks each deployment, normalizes its image, parses
// its tag rules and fills its defaults. It returns the normalized image of
// each deployment, "" where the image is invalid, for the indexes.
func (c *Config) validateDeployments(p *problems) []string {
	repos := make([]string, len(c.Deployments))
	names := map[string]int{}
	containers := map[string]int{}       // engine/container name → index
	published := map[string][]hostPort{} // by engine
	listens := c.listenAddrs()
	c.checkFrontDoor(p, listens)
	composes := map[[2]string]composeLoad{}
	for i := range c.Deployments {
		d := &c.Deployments[i]
		dp := fmt.Sprintf("deployments[%d]", i)
		d.path = dp
		np := dp + ".name"
		checkDeploymentName(p, np, d.Name)
		if j, dup := names[d.Name]; dup && d.Name != "" {
			p.addf(np, "duplicate of deployments[%d]", j)
		} else if d.Name != "" {
			names[d.Name] = i
		}

		c.applyCompose(p, dp, d, composes)
		repos[i] = normalizeImage(p, dp+".image", d)
		d.rules, d.rulesText = parseTagRules(p, dp, d.Tags)

		if d.Environment != "" {
			c.checkEnvironmentRef(p, dp+".environment", d.Environment)
		}
		checkEnvMap(p, dp+".env", d.Env)
		c.checkEnvFiles(p, dp+".env_files", d.EnvFiles)
		c.checkSecretFiles(p, dp+".secret_files", d.SecretFiles)

		cp := dp + ".container"
		if d.Container.Name != "" {
			checkContainerName(p, cp+".name", d.Container.Name)
		}
		strategyGiven := d.Strategy != ""
		// Only now: the container's name defaults to the deployment's,
		// which is checked above as such.
		d.fillDefaults()
		c.checkEngineRef(p, dp+".engine", d.Engine)
		// Names and host ports are the engine's: two hosts may each run
		// a "web" published on :80.
		if n := d.Container.Name; n != "" {
			if j, dup := containers[d.Engine+"/"+n]; dup {
				what := "container"
				if c.Deployments[j].Service != nil {
					what = "service"
				}
				on := ""
				if len(c.Engines) > 0 {
					on = fmt.Sprintf(" on engine %q", d.Engine)
				}
				p.addf(cp+".name", "%s is also the %s of deployments[%d]%s", p.quote(cp+".name", n), what, j, on)
			} else {
				containers[d.Engine+"/"+n] = i
			}
		}
		published[d.Engine] = checkContainer(p, cp, &d.Container, published[d.Engine])
		published[d.Engine] = c.checkProcesses(p, dp, d, containers, i, published[d.Engine], listens)

		for _, null := range []string{"proxy", "service"} {
			if c.nullPaths[dp+"."+null] {
				p.addf(dp+"."+null, "given with no value: remove it, or give its settings")
			}
		}
		if d.Proxy != nil {
			c.checkProxy(p, dp+".proxy", d, listens)
			if strategyGiven && d.Service == nil {
				p.addf(dp+".strategy", "a proxied deployment always starts the new container beside the old one and switches when it passed its gate: drop strategy")
			}
		}
		if d.Service != nil {
			c.checkService(p, dp+".service", d, strategyGiven)
		}
		c.checkPreviews(p, dp+".previews", d)

		switch d.Strategy {
		case StopFirst:
		case StartFirst:
			if len(d.Container.Ports) > 0 {
				p.addf(dp+".strategy", "start-first runs two containers at once, so it cannot publish ports (use networks and aliases)")
			}
		default:
			p.addf(dp+".strategy", "unknown strategy %s: want stop-first or start-first", p.quote(dp+".strategy", d.Strategy))
		}
		checkHealth(p, dp+".health", &d.Health)
		if d.Proxy == nil && strings.Contains(d.Health.URL, "{upstream}") {
			p.addf(dp+".health.url", "{upstream} is the address liftoff's proxy reaches the container at: the deployment has no proxy (use {container})")
		}
		if d.StopTimeout < 0 {
			p.addf(dp+".stop_timeout", "must be positive, e.g. 10s")
		}
		if d.MinImageAge < 0 {
			p.addf(dp+".min_image_age", "%s: must be positive, e.g. 10m (0 or absent: no cool-down)", d.MinImageAge)
		}
		checkRelease(p, dp+".release", &d.Release, c.nullPaths[dp+".release"])
	}
	c.checkFrontDoorRoutes(p)
	c.checkPreviewNames(p)
	return repos
}

func checkDeploymentName(p *problems, at, name string) {
	switch {
	case name == "":
		p.addf(at, "missing")
	case !validName(name, 2):
		p.addf(at, "invalid name %s: want [a-zA-Z0-9][a-zA-Z0-9_.-]+, as it names the container too", p.quote(at, name))
	case reservedSuffix(name):
		p.addf(at, "%s ends like the containers liftoff keeps or runs during a deploy (%s)", p.quote(at, name), strings.Join(reservedSuffixes(), ", "))
	}
}

// normalizeImage checks d.Image, a repository without tag or digest, and
// normalizes it (acme/web becomes docker.io/acme/web). It returns the
// normalized repository, or "" when the image is invalid.
func normalizeImage(p *problems, at string, d *Deployment) string {
	if d.Image == "" {
		p.addf(at, "missing: the repository, e.g. acme/web or ghcr.io/acme/web")
		return ""
	}
	named, err := imageref.ParseRepo(d.Image)
	if err != nil {
		p.addLib(at, "invalid image", err)
		return ""
	}
	if t, ok := named.(reference.Tagged); ok {
		p.addf(at, "%s has a tag: put %s in tags", p.quote(at, d.Image), p.quote(at, t.Tag()))
		return ""
	}
	if _, ok := named.(reference.Digested); ok {
		p.addf(at, "%s has a digest: liftoff resolves tags to digests itself; give the repository and tags", p.quote(at, d.Image))
		return ""
	}
	d.Image = named.Name()
	return d.Image
}

// parseTagRules parses the tag rules of the deployment at dp, and returns
// them with their text for Ignored reasons (a rule from ${VAR} is not
// shown there either).
func parseTagRules(p *problems, dp string, tags []string) ([]imageref.TagRule, string) {
	rules := make([]imageref.TagRule, 0, len(tags))
	if len(tags) == 0 {
		p.addf(dp+".tags", "no tag rules, so nothing would deploy it: e.g. [\"latest\"], [\"semver:^1\"], [\"glob:release-*\"]")
	}
	texts := make([]string, len(tags))
	for j, t := range tags {
		tp := fmt.Sprintf("%s.tags[%d]", dp, j)
		texts[j] = t
		if p.secret(tp) {
			texts[j] = "(from ${VAR})"
		}
		r, err := imageref.ParseTagRule(t)
		if err != nil {
			if p.secret(tp) {
				p.addf(tp, "invalid tag rule (the value comes from ${VAR} and is not shown)")
			} else {
				p.add(tp, err)
			}
			continue
		}
		rules = append(rules, r)
	}
	return rules, "[" + strings.Join(texts, " ") + "]"
}

// checkEnvironmentRef checks that a deployment's environment exists.
func (c *Config) checkEnvironmentRef(p *problems, at, name string) {
	if _, ok := c.Environments[name]; ok {
		return
	}
	have := strings.Join(slices.Sorted(maps.Keys(c.Environments)), ", ")
	if have == "" {
		have = "none"
	}
	p.addf(at, "unknown environment %s (have: %s)", p.quote(at, name), have)
}
