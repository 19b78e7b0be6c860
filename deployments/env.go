package deployments

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// envValue is one variable of a layered environment.
type envValue struct {
	value  string
	secret bool   // set by a file or ${VAR} in any layer
	from   string // the field path of the layer that set it last
}

// layers builds d's environment, later layers winning: image ENV <
// environment.env < environment.env_files < d.env < d.env_files <
// d.secret_files. It goes on past an unreadable file, so that SecretKeys
// still sees the rest; the error names every file that failed.
func (c *Config) layers(d *Deployment, imageEnv []string) (map[string]envValue, error) {
	m := make(map[string]envValue, len(imageEnv)+len(d.Env)+8)
	set := func(k, v string, secret bool, from string) {
		old := m[k]
		m[k] = envValue{value: v, secret: secret || old.secret, from: from}
	}
	var errs []error
	setLines := func(lines []string, from string) {
		for _, kv := range lines {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				set(k, v, true, from)
			}
		}
	}

	for _, kv := range imageEnv {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			set(k, v, false, "image")
		}
	}
	if e, ok := c.Environments[d.Environment]; ok && d.Environment != "" {
		ep := "environments." + d.Environment
		for k, v := range e.Env {
			set(k, v, e.secretEnv[k], ep+".env")
		}
		for i, f := range e.EnvFiles {
			from := fmt.Sprintf("%s.env_files[%d]", ep, i)
			lines, err := c.readEnvFile(c.resolve(f))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", from, err))
			}
			setLines(lines, from)
		}
	}
	dp := d.path
	if dp == "" {
		dp = "deployment " + d.Name
	}
	for k, v := range d.Env {
		set(k, v, d.secretEnv[k], dp+".env")
	}
	for i, f := range d.EnvFiles {
		from := fmt.Sprintf("%s.env_files[%d]", dp, i)
		lines, err := c.readEnvFile(c.resolve(f))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", from, err))
		}
		setLines(lines, from)
	}
	for k, f := range d.SecretFiles {
		from := dp + ".secret_files." + k
		v, err := readSecretFile(c.resolve(f))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", from, err))
			continue
		}
		set(k, v, true, from)
	}
	return m, errors.Join(errs...)
}

// Env returns the final environment of d's container as sorted KEY=VALUE
// lines: image ENV < environment.env < environment.env_files < d.env <
// d.env_files < d.secret_files. Files are read now, so a changed file
// applies to the next deploy. Errors never contain values.
func (c *Config) Env(d *Deployment, imageEnv []string) ([]string, error) {
	m, err := c.layers(d, imageEnv)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v.value)
	}
	slices.Sort(out)
	return out, nil
}

// SecretKeys returns the keys of d's environment whose value came, in any
// layer, from a file (env_files, secret_files) or from ${VAR}: their values
// must never be logged or shown, only their keys. Files are read now; one
// that cannot be read contributes no keys.
func (c *Config) SecretKeys(d *Deployment) map[string]bool {
	m, _ := c.layers(d, nil)
	out := map[string]bool{}
	for k, v := range m {
		if v.secret {
			out[k] = true
		}
	}
	return out
}

// resolve makes a path of the config absolute against the config's
// directory, as a user reading the file expects.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if c.dir == "" {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	return filepath.Join(c.dir, p)
}

// validEnvKey tells whether k is a portable variable name.
func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
