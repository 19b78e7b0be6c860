package deployments

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// validateEnvironments checks each environment and compiles its
// forbid_patterns.
func (c *Config) validateEnvironments(p *problems) {
	for _, name := range slices.Sorted(maps.Keys(c.Environments)) {
		e := c.Environments[name]
		c.validateEnvironment(p, name, &e)
		c.Environments[name] = e
	}
}

func (c *Config) validateEnvironment(p *problems, name string, e *Environment) {
	ep := "environments." + name
	if !validName(name, 1) {
		p.addf(ep, "invalid environment name %q: want [A-Za-z0-9][A-Za-z0-9_.-]*", name)
	}
	checkEnvMap(p, ep+".env", e.Env)
	c.checkEnvFiles(p, ep+".env_files", e.EnvFiles)
	for i, k := range e.Require {
		if !validEnvKey(k) {
			rp := fmt.Sprintf("%s.require[%d]", ep, i)
			p.addf(rp, "invalid variable name %s: want [A-Za-z_][A-Za-z0-9_]*", p.quote(rp, k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.Forbid)) {
		fp := ep + ".forbid." + k
		switch {
		case !validEnvKey(k):
			p.addf(ep+".forbid", "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
		case len(e.Forbid[k]) == 0:
			p.addf(fp, "no values: list the values that must never ship")
		}
	}
	e.patterns = compilePatterns(p, ep+".forbid_patterns", e.ForbidPatterns)
	checkApproval(p, ep+".approval", &e.Approval)
	switch {
	case e.Backup != nil:
		c.checkBackup(p, ep+".backup", e.Backup)
	case c.nullPaths[ep+".backup"]:
		// Decoded as if absent; a backup believed configured must not
		// silently not run.
		p.addf(ep+".backup", "empty: give at least its command, or leave backup out")
	}
}

// compilePatterns checks and compiles forbid_patterns. It returns nil when
// no pattern compiles.
func compilePatterns(p *problems, at string, patterns map[string][]string) map[string][]*regexp.Regexp {
	var compiled map[string][]*regexp.Regexp
	for _, k := range slices.Sorted(maps.Keys(patterns)) {
		if !validEnvKey(k) {
			p.addf(at, "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
		}
		if len(patterns[k]) == 0 {
			p.addf(at+"."+k, "no patterns")
		}
		for i, pat := range patterns[k] {
			pp := fmt.Sprintf("%s.%s[%d]", at, k, i)
			re, err := regexp.Compile(pat)
			if err != nil {
				p.addLib(pp, "invalid regexp", err)
				continue
			}
			if compiled == nil {
				compiled = map[string][]*regexp.Regexp{}
			}
			compiled[k] = append(compiled[k], re)
		}
	}
	return compiled
}

// The env layers below are shared by environments and deployments.

func checkEnvMap(p *problems, at string, env map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !validEnvKey(k) {
			p.addf(at, "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
		} else if strings.IndexByte(env[k], 0) >= 0 {
			p.addf(at+"."+k, "contains a NUL byte, which no environment variable can hold")
		}
	}
}

func (c *Config) checkEnvFiles(p *problems, at string, files []string) {
	for i, f := range files {
		fp := fmt.Sprintf("%s[%d]", at, i)
		if f == "" {
			p.addf(fp, "missing file name")
			continue
		}
		if _, err := c.readEnvFile(c.resolve(f)); err != nil {
			p.addFile(fp, err)
		}
	}
}

// checkSecretFiles checks that each secret file can be read now; it is
// read again at each deploy.
func (c *Config) checkSecretFiles(p *problems, at string, files map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(files)) {
		sp := at + "." + k
		if !validEnvKey(k) {
			p.addf(at, "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
		}
		if files[k] == "" {
			p.addf(sp, "missing file name")
		} else if _, err := readSecretFile(c.resolve(files[k])); err != nil {
			p.addFile(sp, err)
		}
	}
}
