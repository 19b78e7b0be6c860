package deployments

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// checkPromotions checks deployments[].promote_from: it names another
// configured deployment, and following promote_from from any deployment
// never comes back to it — in a cycle no deployment could ever deploy,
// each waiting for a digest to succeed in the one before; and its match
// and label (checkPromotion). The other deployment may be of any
// environment, this one's too: a canary proving digests for the production
// deployment of its own environment is as sound as staging proving them.
// It runs after index, on byName.
func (c *Config) checkPromotions(p *problems) {
	// next[i] is the deployment i promotes from, -1 for none (or one that
	// is reported here already).
	next := make([]int, len(c.Deployments))
	for i := range c.Deployments {
		d := &c.Deployments[i]
		next[i] = -1
		checkPromotion(p, d.path+".promote_from", &d.PromoteFrom)
		from := d.PromoteFrom.Deployment
		if from == "" {
			continue
		}
		at := d.path + ".promote_from"
		if d.PromoteFrom.long {
			at += ".deployment"
		}
		j, ok := c.byName[from]
		switch {
		case from == d.Name:
			// Shown as the name is: hidden when it or promote_from came
			// from ${VAR}.
			name := p.quote(d.path+".name", d.Name)
			if p.secret(at) {
				name = p.quote(at, from)
			}
			p.addf(at, "%s is this deployment's own name: promote from another deployment, e.g. its staging one", name)
		case !ok:
			p.addf(at, "unknown deployment %s (have: %s)", p.quote(at, from), c.deploymentNames(p))
		default:
			next[i] = j
		}
	}

	// Each deployment has at most one promote_from: walk each chain once,
	// and a chain that comes back to a deployment on it is a cycle.
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(c.Deployments))
	for i := range c.Deployments {
		var path []int
		k := i
		for k >= 0 && state[k] == unseen {
			state[k] = onPath
			path = append(path, k)
			k = next[k]
		}
		if k >= 0 && state[k] == onPath {
			c.reportCycle(p, path[slices.Index(path, k):])
		}
		for _, j := range path {
			state[j] = done
		}
	}
}

// reportCycle reports a promote_from cycle once, at its first deployment
// in the file, naming each deployment in order.
func (c *Config) reportCycle(p *problems, cycle []int) {
	first := slices.Index(cycle, slices.Min(cycle))
	cycle = slices.Concat(cycle[first:], cycle[:first])
	parts := make([]string, len(cycle))
	for n, i := range cycle {
		d := &c.Deployments[i]
		from := &c.Deployments[cycle[(n+1)%len(cycle)]]
		parts[n] = p.quote(d.path+".name", d.Name) + " promotes from " + p.quote(from.path+".name", from.Name)
	}
	p.addf(c.Deployments[cycle[0]].path+".promote_from",
		"promote_from goes round in a cycle (%s): none of them could ever deploy, as each deploys only a digest that succeeded first in the one it promotes from",
		strings.Join(parts, ", "))
}

// deploymentNames lists the deployments' names for an error, sorted; a
// name from ${VAR} is not shown.
func (c *Config) deploymentNames(p *problems) string {
	var names []string
	hidden := 0
	for _, name := range slices.Sorted(maps.Keys(c.byName)) {
		if p.secret(c.Deployments[c.byName[name]].path + ".name") {
			hidden++
			continue
		}
		names = append(names, name)
	}
	if hidden > 0 {
		names = append(names, fmt.Sprintf("%d named by ${VAR}", hidden))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
