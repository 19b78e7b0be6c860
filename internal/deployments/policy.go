package deployments

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// policyError is a violation: its text names the variable and the rule,
// never the value, and it wraps ErrPolicy.
type policyError struct{ msg string }

func (e *policyError) Error() string { return e.msg }
func (e *policyError) Unwrap() error { return ErrPolicy }

type violation struct {
	key string
	err error
}

// check returns the violations of env against e's policy. With final
// false, env is only what the config sets (the image's ENV is unknown), so
// a missing required key is not a violation yet.
func (e *Environment) check(name string, env func(string) (string, bool), final bool) []violation {
	var out []violation
	add := func(k, format string, args ...any) {
		out = append(out, violation{k, &policyError{k + ": " + fmt.Sprintf(format, args...)}})
	}
	for _, k := range e.Require {
		v, ok := env(k)
		switch {
		case !ok && final:
			add(k, "required in %s but not set", name)
		case ok && v == "":
			add(k, "required in %s but empty", name)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.Forbid)) {
		if v, ok := env(k); ok && slices.Contains(e.Forbid[k], v) {
			add(k, "value is forbidden in %s", name)
		}
	}
	patterns := e.patterns
	if patterns == nil && len(e.ForbidPatterns) > 0 {
		// Not validated: compile now rather than skip the rule.
		patterns = map[string][]*regexp.Regexp{}
		for k, ps := range e.ForbidPatterns {
			for _, p := range ps {
				re, err := regexp.Compile(p)
				if err != nil {
					add(k, "invalid forbidden pattern in %s", name)
					continue
				}
				patterns[k] = append(patterns[k], re)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(patterns)) {
		v, ok := env(k)
		if !ok {
			continue
		}
		for _, re := range patterns[k] {
			if re.MatchString(v) {
				add(k, "matches forbidden pattern %s in %s", re, name)
			}
		}
	}
	return out
}

// CheckPolicy checks d's final environment (KEY=VALUE lines, image ENV
// included, as Env returns them) against the policy of d's environment.
// Every violation wraps ErrPolicy and names the key and the rule, never the
// value. A deployment without environment has no policy.
func (c *Config) CheckPolicy(d *Deployment, env []string) error {
	e, ok := c.Environments[d.Environment]
	if !ok || d.Environment == "" {
		return nil
	}
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v // later wins, as in Docker
	}
	var errs []error
	for _, v := range e.check(d.Environment, func(k string) (string, bool) {
		s, ok := m[k]
		return s, ok
	}, true) {
		errs = append(errs, v.err)
	}
	return errors.Join(errs...)
}

// checkConfigPolicies reports, at load, violations that the config alone
// makes certain: what the config sets overrides the image's ENV, so a
// forbidden value there fails every deploy. The error names the field
// that sets the variable.
func (c *Config) checkConfigPolicies(p *problems) {
	for i := range c.Deployments {
		d := &c.Deployments[i]
		e, ok := c.Environments[d.Environment]
		if !ok || d.Environment == "" {
			continue
		}
		m, _ := c.layers(d, nil) // unreadable files are reported already
		for _, v := range e.check(d.Environment, func(k string) (string, bool) {
			s, ok := m[k]
			return s.value, ok
		}, false) {
			p.add(m[v.key].from, v.err)
		}
	}
}

// ValidatePolicies returns warnings about what cannot be checked without
// the image: required variables that no layer of the config sets, so that
// only the image's ENV can (checked at each deploy); and about registry
// credentials that cannot work yet (registryWarnings). `liftoff validate`
// prints them; they do not make the config invalid. Polls of Docker Hub
// more often than once a minute are warned of too.
func (c *Config) ValidatePolicies() []string {
	out := c.registryWarnings()
	for i := range c.Deployments {
		d := &c.Deployments[i]
		e, ok := c.Environments[d.Environment]
		if !ok || d.Environment == "" || len(e.Require) == 0 {
			continue
		}
		m, _ := c.layers(d, nil)
		for _, k := range e.Require {
			if _, ok := m[k]; !ok {
				out = append(out, fmt.Sprintf("%s (%s): %s is required in %s but no layer of the config sets it: only the image's ENV can, or every deploy is refused",
					d.path, d.Name, k, d.Environment))
			}
		}
	}
	return append(out, c.pollWarnings()...)
}
