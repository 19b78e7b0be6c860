// Package deployments is liftoff's catalogue: the configuration file's schema,
// its loading and validation, environments and env layering, tag rules
// (parsed by imageref), and matching a pushed image and tag to the
// deployments it should update.
//
// It knows nothing of HTTP, Docker or SQL. A *Config comes from Load or
// Parse (or Default plus Validate), is immutable afterwards and safe for
// concurrent use: the daemon reloads by building a new one and swapping it.
//
// Secrets: hook and API tokens, values written as ${VAR}, the contents of
// env_files, secret_files, password_file and docker_config, and what
// credential helpers answer never appear in an error of this package.
// SecretKeys and BackupEnv tell callers which variables and values to
// redact.
package deployments

import (
	"regexp"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// Config is the whole configuration file, after ${VAR} expansion, defaults
// and validation. Treat a loaded *Config as immutable: a reload builds a new
// one and swaps it.
type Config struct {
	Listen     string `yaml:"listen"`
	DockerHost string `yaml:"docker_host"`
	// DockerHostInsecure is the insecure of the local engine (see
	// Engine.Insecure): it accepts docker_host (or DOCKER_HOST) as plain
	// tcp:// to another host, such as a socket proxy on a private network.
	DockerHostInsecure bool `yaml:"docker_host_insecure"`
	// Engines are more Docker engines, by name; docker_host is the one
	// named LocalEngine ("local"). A deployment runs on one (its Engine).
	Engines      map[string]Engine      `yaml:"engines"`
	Hooks        []Hook                 `yaml:"hooks"`
	Registries   map[string]Registry    `yaml:"registries"`
	Environments map[string]Environment `yaml:"environments"`
	Deployments  []Deployment           `yaml:"deployments"`

	// MetricsListen, if set, serves /metrics on its own address (and not on
	// Listen), e.g. to keep it off the internet-facing port.
	MetricsListen string `yaml:"metrics_listen"`
	// History is the SQLite file of the deploy journal and history
	// (default liftoff.db, relative to the working directory).
	History string `yaml:"history"`
	// HistoryRetention bounds the history file (see Retention).
	HistoryRetention Retention `yaml:"history_retention"`
	// TLSCert and TLSKey, both or neither, make Listen serve HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// HookRateLimit is how many /hooks requests a minute one client IP may
	// make: 0 means the default (DefaultHookRate, 120), -1 turns the limit
	// off. server.Options.HookRateLimit means the same.
	HookRateLimit int `yaml:"hook_rate_limit"`

	// FrontDoor, if set, is one address for the deployments whose proxy
	// names hosts (see FrontDoor).
	FrontDoor *FrontDoor `yaml:"front_door"`

	// APIListen, if set, is the only address the management API (/api/)
	// is served on; empty, it is served on Listen.
	APIListen string `yaml:"api_listen"`
	// APITokens are the callers of the management API. None: the API is
	// off. Their tokens are forgotten once hashed (see APIAuth).
	APITokens []APIToken `yaml:"api_tokens"`

	// Notifications are the receivers told of deploy outcomes (see
	// Notification). PublicURL is the status page's address as seen from
	// outside (https://liftoff.example.com), for links in them; "" for none.
	Notifications []Notification `yaml:"notifications"`
	PublicURL     string         `yaml:"public_url"`

	// path is the file the config came from ("" when parsed from bytes);
	// dir is the directory relative env_files, secret_files and
	// password_file are resolved against.
	path string
	dir  string
	// lookup is liftoff's own environment (os.LookupEnv in production): env
	// files may pass a variable through by naming it without a value.
	lookup func(string) (string, bool)
	// secretPaths are the field paths whose value came from ${VAR}, recorded
	// while loading so that errors and SecretKeys can hide them.
	secretPaths map[string]bool
	// expanded are the values ${VAR} brought into the file (SecretValues).
	expanded []string
	// nullPaths are the field paths given with no value (key:, ~, null),
	// which the decoder leaves as if they were absent.
	nullPaths map[string]bool

	// Set by Validate.
	hookSums        []hookSum        // sha256 of each hook token, never the token
	apiKeys         []apiKey         // sha256 of each API token and its principal
	tokensForgotten bool             // Hooks[i].Token, APITokens[i].Token were cleared once hashed (forgetTokens)
	byRepo          map[string][]int // normalized image → indexes in Deployments
	byName          map[string]int
	helpers         *helperCache // credential helpers' answers, by helper and registry
}

// Hook is one webhook sender: POST /hooks/{source}/{token}.
type Hook struct {
	Source string `yaml:"source"` // one of HookSources(): "dockerhub", "ghcr", ...
	Token  string `yaml:"token"`  // secret; never logged
	// Secret is the key the sender signs each body with (HMAC-SHA256):
	// GitHub's webhook secret for ghcr (X-Hub-Signature-256), the CI's
	// for generic (X-Liftoff-Signature-256). Required by those sources,
	// refused by the others. Usually ${VAR}; "" once loaded.
	Secret string `yaml:"secret"`
	// AuthHeader, when set, is the whole Authorization header the sender
	// must send ("Bearer ..."): distribution, harbor and ecr, whose
	// senders can add a static header but sign nothing. "" once loaded.
	AuthHeader string `yaml:"auth_header"`
}

// APIToken is one caller of the management API: Authorization: Bearer
// <Token> acts as Name, with Scopes (see Principal.Can).
type APIToken struct {
	Name   string   `yaml:"name"`   // the actor journaled for its actions
	Token  string   `yaml:"token"`  // secret, usually ${VAR}; "" once loaded
	Scopes []string `yaml:"scopes"` // read, admin, deploy:ENV, approve:ENV, deploy:*, approve:*
}

// Registry holds pull settings for one registry host ("docker.io",
// "ghcr.io", "127.0.0.1:5000").
type Registry struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"` // read at each pull; trailing newline trimmed
	// CredentialHelper names a Docker credential helper, run as
	// docker-credential-<name> get (ecr-login, gcloud, pass); its answer is
	// cached until the registry refuses it. DockerConfig is a Docker
	// config.json whose auths, credHelpers and credsStore are used as
	// docker pull would. At most one of them, or username and password_file.
	CredentialHelper string `yaml:"credential_helper"`
	DockerConfig     string `yaml:"docker_config"`
	// Mirror is a host[:port] or URL that images of this registry are pulled
	// from instead: with mirror 127.0.0.1:5000, docker.io/acme/web is pulled
	// as 127.0.0.1:5000/acme/web.
	Mirror string `yaml:"mirror"`
	// PollInterval, if set, polls every deployment of this registry that
	// has no poll of its own (see Poll).
	PollInterval time.Duration `yaml:"poll_interval"`

	mirrorHost string // Mirror reduced to host[:port], set by Validate
}

// Environment is a named set of variables shared by deployments
// (staging, production), and the policy their final environment must obey.
type Environment struct {
	Env      map[string]string `yaml:"env"`
	EnvFiles []string          `yaml:"env_files"`

	// Require lists variables that must be set and non-empty.
	Require []string `yaml:"require"`
	// Forbid lists, per variable, values that must never ship.
	Forbid map[string][]string `yaml:"forbid"`
	// ForbidPatterns lists, per variable, Go regexps (unanchored unless
	// written with ^ and $) its value must not match.
	ForbidPatterns map[string][]string `yaml:"forbid_patterns"`

	// Approval, when required, holds each push to a deployment of the
	// environment until a caller with approve:<environment> approves it.
	Approval Approval `yaml:"approval"`

	// Backup, if set, runs before each deploy of a deployment of the
	// environment (before its release, or its swap), in a one-off
	// container with its own environment (see Backup, BackupFor).
	Backup *Backup `yaml:"backup"`

	patterns  map[string][]*regexp.Regexp // compiled ForbidPatterns, set by Validate
	secretEnv map[string]bool             // keys of Env written with ${VAR}
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
	// SecretFiles maps a variable to a file whose content (trailing newline
	// trimmed) is its value, as with Docker or Kubernetes secrets mounted as
	// files. Read at each deploy.
	SecretFiles map[string]string `yaml:"secret_files"`
	Container   Container         `yaml:"container"`
	// Compose, if set, reads the container spec (and the image's
	// repository, the stop timeout and an environment under liftoff's)
	// from a service of a compose file instead of Container.
	Compose *Compose `yaml:"compose"`

	// StopTimeout is how long a stop waits before killing (default 10s).
	StopTimeout time.Duration `yaml:"stop_timeout"`

	// Strategy is how the old container makes way for the new one:
	// StopFirst (the default) or StartFirst.
	Strategy string `yaml:"strategy"`
	// Health is the gate a new container must pass before the previous one
	// is removed.
	Health Health `yaml:"health"`

	// Release is the command run once from the new image before anything
	// is stopped or started (migrations, say); none when its Command is
	// empty.
	Release Release `yaml:"release"`
	// PromoteFrom names another deployment: a digest deploys here only if
	// a deploy of it has succeeded there (production runs only what
	// staging proved); otherwise the deploy is refused. By default only
	// digests are compared, so the other deployment may be of any
	// environment, this one's too (a canary), and of another repository
	// holding the same images (a copy between registries keeps the
	// digest). With match: revision, an image deploys if one with the
	// same revision label succeeded there (two images of one commit).
	PromoteFrom Promotion `yaml:"promote_from"`

	// Engine names the engine the deployment runs on: LocalEngine
	// ("local", the default) or one of Config.Engines.
	Engine string `yaml:"engine"`
	// Proxy, if set, makes liftoff the deployment's front door (see Proxy).
	Proxy *Proxy `yaml:"proxy"`
	// Service, if set, makes the deployment a Docker Swarm service on its
	// engine instead of a container (see Service).
	Service *Service `yaml:"service"`
	// Poll, if set, asks the registry for new digests (see Poll).
	Poll *Poll `yaml:"poll"`
	// MinImageAge, if set, makes a pushed digest younger than this wait
	// until it is this old before it deploys: a cool-down, so that an
	// image pulled back or replaced soon after its push never reaches the
	// deployment. Its age is from the image config's created time, or
	// from when liftoff first saw the digest where created is missing.
	MinImageAge time.Duration `yaml:"min_image_age"`

	// Processes, if set, make the deployment an app of several processes
	// run from its image with its environment (see Process); Order is the
	// order they are swapped in (default: by name, web last).
	Processes map[string]Process `yaml:"processes"`
	Order     []string           `yaml:"order"`
	// Previews, if set, starts a container per pushed tag its rule
	// matches, beside the deployment's (see Previews).
	Previews *Previews `yaml:"previews"`

	// PreviewOf and PreviewTag are set on the deployment Preview returns:
	// the deployment it previews and the tag. Never in the file.
	PreviewOf  string `yaml:"-"`
	PreviewTag string `yaml:"-"`

	// Set by Validate.
	pollEvery time.Duration      // Poll.Interval, or the registry's poll_interval
	rules     []imageref.TagRule // parsed Tags
	rulesText string             // "[staging glob:release-*]", for Ignored reasons
	path      string             // "deployments[3]", for errors
	secretEnv map[string]bool    // keys of Env written with ${VAR}
	units     []Unit             // the processes' containers, in swap order
}

// Deploy strategies.
const (
	StopFirst  = "stop-first"  // stop the old container, then start the new one
	StartFirst = "start-first" // start the new one beside the old (no published ports)
)

// Health is the gate a new container must pass before the previous one is
// removed: keep running without a restart for MinUptime, become healthy if
// it has a HEALTHCHECK (the image's or Cmd), and answer URL if set, all
// within Timeout (the "Health gate" step of "How a deploy goes" in the
// README).
type Health struct {
	// Cmd is a HEALTHCHECK for a container whose image has none, as
	// Docker's Test: ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]; a
	// plain command (["curl", "-f", ...]) gets "CMD" put in front.
	Cmd []string `yaml:"cmd"`
	// URL is probed by liftoff until it answers 2xx/3xx; "{container}"
	// stands for the container's IP address.
	URL       string        `yaml:"url"`
	Timeout   time.Duration `yaml:"timeout"`    // for the whole gate (default 60s)
	MinUptime time.Duration `yaml:"min_uptime"` // must stay running this long (default 3s)
	Interval  time.Duration `yaml:"interval"`   // between Cmd runs (default 2s when Cmd is set)
	Retries   int           `yaml:"retries"`    // failed Cmd runs before unhealthy (default 3 when Cmd is set)
}

// Container is the spec of the container a deployment runs as.
type Container struct {
	Name             string            `yaml:"name"`    // default: the deployment name
	Ports            []string          `yaml:"ports"`   // docker run -p: [ip:][hostPort:]containerPort[/proto]
	Volumes          []string          `yaml:"volumes"` // docker run -v: src:dst[:opts]
	Networks         []string          `yaml:"networks"`
	Aliases          []string          `yaml:"aliases"` // on every network in Networks
	Restart          string            `yaml:"restart"` // "" (engine default: no), no, always, unless-stopped, on-failure[:N]
	Command          []string          `yaml:"command"`
	Labels           map[string]string `yaml:"labels"`
	ReplaceUnmanaged bool              `yaml:"replace_unmanaged"`

	// The settings below are docker run's, with Compose's names; Validate
	// parses them into Settings (see settings.go).
	Memory            string            `yaml:"memory"`             // --memory: 512m, 2g
	MemoryReservation string            `yaml:"memory_reservation"` // --memory-reservation
	CPUs              float64           `yaml:"cpus"`               // --cpus: 1.5
	PidsLimit         int64             `yaml:"pids_limit"`         // --pids-limit; -1: unlimited
	ShmSize           string            `yaml:"shm_size"`           // --shm-size
	Logging           *Logging          `yaml:"logging"`            // default: json-file, max-size 10m, max-file 3
	User              string            `yaml:"user"`               // --user: user[:group]
	WorkingDir        string            `yaml:"working_dir"`        // --workdir
	StopSignal        string            `yaml:"stop_signal"`        // --stop-signal
	Entrypoint        []string          `yaml:"entrypoint"`         // --entrypoint, as a list
	Init              bool              `yaml:"init"`               // --init
	ReadOnly          bool              `yaml:"read_only"`          // --read-only
	Tmpfs             []string          `yaml:"tmpfs"`              // --tmpfs: /path[:options]
	CapAdd            []string          `yaml:"cap_add"`            // --cap-add: NET_ADMIN, ALL
	CapDrop           []string          `yaml:"cap_drop"`           // --cap-drop
	SecurityOpt       []string          `yaml:"security_opt"`       // --security-opt
	ExtraHosts        []string          `yaml:"extra_hosts"`        // --add-host: host:ip
	Ulimits           map[string]string `yaml:"ulimits"`            // --ulimit: nofile: "1024:2048"

	settings    Settings     // parsed by Validate
	healthcheck *Healthcheck // a compose service's, set by Validate
}

// Credentials authenticate pulls from one registry. The zero value means
// anonymous.
type Credentials struct {
	Username string
	Password string // secret
	// IdentityToken is a secret the registry's token service takes in
	// place of a password (Docker's identitytoken).
	IdentityToken string
	// Source, when not nil, is where the credentials come from at each
	// call (credential_helper, docker_config), and the fields above are
	// empty: see CredentialSource.Fetch.
	Source *CredentialSource
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
