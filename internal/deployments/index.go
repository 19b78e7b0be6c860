package deployments

// index builds the lookups of Match and Deployment: the deployments of each
// normalized image, in file order, and each deployment by name (the first
// of a duplicated name). repos[i] is the normalized image of Deployments[i],
// "" when it is invalid, as validateDeployments returns them.
func (c *Config) index(repos []string) {
	c.byRepo = map[string][]int{}
	c.byName = map[string]int{}
	for i := range c.Deployments {
		name := c.Deployments[i].Name
		if _, dup := c.byName[name]; !dup && name != "" {
			c.byName[name] = i
		}
		if repos[i] != "" {
			c.byRepo[repos[i]] = append(c.byRepo[repos[i]], i)
		}
	}
}
