// Package deployments is liftoff's catalogue: the configuration file's schema,
// its loading and validation, environments and env layering, tag rules, and
// matching a pushed image and tag to the deployments it should update.
//
// It knows nothing of HTTP, Docker or SQL.
package deployments

import "time"

// Config is the whole configuration file, after ${VAR} expansion, defaults
// and validation. Treat a loaded *Config as immutable: a reload builds a new
// one and swaps it.
type Config struct {
	Listen       string                 `yaml:"listen"`
	DockerHost   string                 `yaml:"docker_host"`
	Hooks        []Hook                 `yaml:"hooks"`
	Registries   map[string]Registry    `yaml:"registries"`
	Environments map[string]Environment `yaml:"environments"`
	Deployments  []Deployment           `yaml:"deployments"`

	// path is the file the config came from ("" when parsed from bytes);
	// relative env_files and password_file are resolved against its directory.
	path string
}

// Hook is one webhook sender: POST /hooks/{source}/{token}.
type Hook struct {
	Source string `yaml:"source"` // "dockerhub"
	Token  string `yaml:"token"`  // secret; never logged
}

// Registry holds pull settings for one registry host ("docker.io",
// "ghcr.io", "127.0.0.1:5000").
type Registry struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// Mirror is a host[:port] or URL that images of this registry are pulled
	// from instead: with mirror 127.0.0.1:5000, docker.io/acme/web is pulled
	// as 127.0.0.1:5000/acme/web.
	Mirror string `yaml:"mirror"`
}

// Environment is a named set of variables shared by deployments
// (staging, production).
type Environment struct {
	Env      map[string]string `yaml:"env"`
	EnvFiles []string          `yaml:"env_files"`
}

// Deployment is one target: an image, the tags that deploy it, and the
// container it runs as.
type Deployment struct {
	Name        string            `yaml:"name"`
	Image       string            `yaml:"image"` // normalized by Validate: docker.io/acme/web
	Tags        []string          `yaml:"tags"`  // exact, "glob:", "semver:", "regexp:"
	Environment string            `yaml:"environment"`
	Env         map[string]string `yaml:"env"`
	EnvFiles    []string          `yaml:"env_files"`
	Container   Container         `yaml:"container"`

	// StopTimeout is how long a stop waits before killing (default 10s).
	StopTimeout time.Duration `yaml:"stop_timeout"`

	rules []tagRule // parsed Tags, set by Validate
}

// Container is the spec of the container a deployment runs as.
type Container struct {
	Name             string            `yaml:"name"` // default: the deployment name
	Ports            []string          `yaml:"ports"`
	Volumes          []string          `yaml:"volumes"`
	Networks         []string          `yaml:"networks"`
	Aliases          []string          `yaml:"aliases"`
	Restart          string            `yaml:"restart"`
	Command          []string          `yaml:"command"`
	Labels           map[string]string `yaml:"labels"`
	ReplaceUnmanaged bool              `yaml:"replace_unmanaged"`
}

// Credentials authenticate pulls from one registry. The zero value means
// anonymous.
type Credentials struct {
	Username string
	Password string // secret
}

// MatchResult says which deployments a push updates and why the others
// do not.
type MatchResult struct {
	Accepted []*Deployment
	Ignored  []Ignored
}

// Ignored explains why a push does not deploy a deployment (or is not
// deployable at all, with Tag set instead).
type Ignored struct {
	Deployment string `json:"deployment,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Reason     string `json:"reason"`
}
