package deployments

import (
	"errors"
	"fmt"
	"maps"
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
// the compose service's environment < environment.env < environment.env_files < d.env < d.env_files <
// d.secret_files. It goes on past an unreadable file, so that SecretKeys
// still sees the rest; the error names every file that failed.
func (c *Config) layers(d *Deployment, imageEnv []string) (map[string]envValue, error) {
	l := newLayers(len(imageEnv) + len(d.Env) + 8)
	for _, kv := range imageEnv {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			l.set(k, v, false, "image")
		}
	}
	if cm := d.Compose; cm != nil && cm.svc != nil {
		// The compose service's environment and env_file: a value from
		// a file or ${VAR} is secret.
		for k, v := range cm.svc.Env {
			l.set(k, v, cm.svc.Secret[k], "compose service "+cm.svc.Service)
		}
	}
	if e, ok := c.Environments[d.Environment]; ok && d.Environment != "" {
		c.addLayers(l, "environments."+d.Environment, e.Env, e.secretEnv, e.EnvFiles, nil)
	}
	dp := d.path
	if dp == "" {
		dp = "deployment " + d.Name
	}
	c.addLayers(l, dp, d.Env, d.secretEnv, d.EnvFiles, d.SecretFiles)
	return l.m, l.err()
}

// envLayers is an environment being built, layer upon layer.
type envLayers struct {
	m    map[string]envValue
	errs []error
}

func newLayers(n int) *envLayers { return &envLayers{m: make(map[string]envValue, n)} }

func (l *envLayers) set(k, v string, secret bool, from string) {
	old := l.m[k]
	l.m[k] = envValue{value: v, secret: secret || old.secret, from: from}
}

func (l *envLayers) err() error { return errors.Join(l.errs...) }

// lines returns the environment as sorted KEY=VALUE lines.
func (l *envLayers) lines() []string {
	out := make([]string, 0, len(l.m))
	for k, v := range l.m {
		out = append(out, k+"="+v.value)
	}
	slices.Sort(out)
	return out
}

// secretKeys returns the keys whose value came, in any layer, from a file
// or from ${VAR}.
func (l *envLayers) secretKeys() map[string]bool {
	out := map[string]bool{}
	for k, v := range l.m {
		if v.secret {
			out[k] = true
		}
	}
	return out
}

// addLayers adds the variables of one owner (an environment, a deployment,
// a backup), whose field path is at, in the order env < env_files <
// secret_files. Values from files and from ${VAR} (secretEnv) are secret.
// It goes on past a file that cannot be read, recording the error.
func (c *Config) addLayers(l *envLayers, at string, env map[string]string, secretEnv map[string]bool, envFiles []string, secretFiles map[string]string) {
	for k, v := range env {
		l.set(k, v, secretEnv[k], at+".env")
	}
	for i, f := range envFiles {
		from := fmt.Sprintf("%s.env_files[%d]", at, i)
		lines, err := c.readEnvFile(c.resolve(f))
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s: %w", from, err))
		}
		for _, kv := range lines {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				l.set(k, v, true, from)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(secretFiles)) {
		from := at + ".secret_files." + k
		v, err := readSecretFile(c.resolve(secretFiles[k]))
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s: %w", from, err))
			continue
		}
		l.set(k, v, true, from)
	}
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
	return (&envLayers{m: m}).lines(), nil
}

// SecretKeys returns the keys of d's environment whose value came, in any
// layer, from a file (env_files, secret_files) or from ${VAR}: their values
// must never be logged or shown, only their keys. Files are read now; one
// that cannot be read contributes no keys.
func (c *Config) SecretKeys(d *Deployment) map[string]bool {
	m, _ := c.layers(d, nil)
	keys := (&envLayers{m: m}).secretKeys()
	if d.processServices() {
		// Each process has its service's environment: the app's
		// secrets are those of every one.
		for _, u := range d.units {
			maps.Copy(keys, c.SecretKeys(u.Deployment))
		}
	}
	return keys
}

// SecretValues returns every value a ${VAR} brought into the config, of
// MinSecretLen characters or more: secrets wherever they appear, in an env
// value or expanded into a command's arguments (release.command,
// backup.command), so that output showing them is redacted too.
func (c *Config) SecretValues() []string { return slices.Clone(c.expanded) }

// MinSecretLen is the length, in characters, below which a secret value is
// not redacted from output: replacing every "1" or "on" would mangle the
// text and say which characters the secret is made of.
const MinSecretLen = 4

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
