package deployments

import "errors"

// STUB: the signatures below are the package's contract with server, deploy
// and cmd; the bodies are being written. Replace this file.

var errTODO = errors.New("not implemented yet")

type tagRule interface{ match(tag string) bool }

// Default returns a config with every default set and nothing deployed.
func Default() *Config { return &Config{Listen: ":8080"} }

// Load reads, expands (${VAR} via lookup), decodes strictly, defaults and
// validates the file at path. lookup is os.LookupEnv in production.
func Load(path string, lookup func(string) (string, bool)) (*Config, error) { return nil, errTODO }

// Parse is Load on bytes; dir resolves relative file paths in the config.
func Parse(data []byte, dir string, lookup func(string) (string, bool)) (*Config, error) {
	return nil, errTODO
}

// Validate checks the whole config; every error names its field, e.g.
// "deployments[1].tags[0]: ...". All errors are reported, joined.
func (c *Config) Validate() error { return errTODO }

// Match returns the deployments that a push of repo:tag updates (repo already
// normalized, e.g. docker.io/acme/web) and why the others of that repo do not.
func (c *Config) Match(repo, tag string) MatchResult { return MatchResult{} }

// Deployment returns the deployment with that name, or nil.
func (c *Config) Deployment(name string) *Deployment { return nil }

// Env returns the final environment of d's container as sorted KEY=VALUE
// lines: image ENV < environment.env < environment.env_files < d.env <
// d.env_files. Files are read now, so a changed file applies to the next
// deploy. Errors never contain values.
func (c *Config) Env(d *Deployment, imageEnv []string) ([]string, error) { return nil, errTODO }

// PullRepo returns the repository to pull repo from (its registry's mirror,
// if any: docker.io/acme/web → 127.0.0.1:5000/acme/web) and the credentials
// for it (password_file read now).
func (c *Config) PullRepo(repo string) (string, Credentials, error) { return "", Credentials{}, errTODO }

// HookAuth tells, in constant time, whether token is the token of a hook of
// that source.
func (c *Config) HookAuth(source, token string) bool { return false }

// ContainerName is the container's name: container.name or the deployment's.
func (d *Deployment) ContainerName() string { return d.Name }

// NormalizeRepo returns the canonical repository name: "acme/web" →
// "docker.io/acme/web", "library/nginx" and "nginx" → "docker.io/library/nginx".
// A tag or digest in s is an error.
func NormalizeRepo(s string) (string, error) { return "", errTODO }

// ValidateTag checks the tag grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func ValidateTag(tag string) error { return errTODO }

// IsSignatureTag tells whether tag is a signature or attestation tag
// (sha256-<hex>, *.sig, *.att): valid, never deployable.
func IsSignatureTag(tag string) bool { return false }
