package deploy

import (
	"errors"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// ErrNotFound is returned by Runtime methods when the container, image or tag
// does not exist.
var ErrNotFound = errors.New("not found")

// ErrUnavailable is wrapped by Runtime errors that mean the engine (or the
// registry) could not be reached at all: the engine retries those with
// backoff.
var ErrUnavailable = errors.New("unavailable")

// Labels liftoff puts on every container it creates. A container without
// LabelManaged was not created by liftoff and is not touched unless the
// deployment says replace_unmanaged.
const (
	LabelManaged     = "liftoff.managed"
	LabelDeployment  = "liftoff.deployment"
	LabelEnvironment = "liftoff.environment"
	LabelImage       = "liftoff.image"
	LabelTag         = "liftoff.tag"
	LabelDigest      = "liftoff.digest"
)

// Runtime is a container engine as the Engine holds it (Options.Runtime
// and Options.Engines): the parts that its callers need, each declared
// where it is used. The docker package implements all of them against the
// Docker Engine API; unit tests use fakes.
//
//   - Pinger (reconcile.go): Watch asks whether the engine answers;
//   - Images (steps.go): the deploy steps resolve a tag and pull;
//   - Containers (repair.go): what reconcile, repair, the health gate and
//     the rollback do to existing containers;
//   - Swapper (strategy.go): Containers plus what a swap needs to create
//     and publish the new container;
//   - OneOffs (release.go): backups and release commands;
//   - Services (service.go), for Swarm services, is optional: a runtime
//     may implement it beside Runtime.
//
// Every method takes a context and must return promptly when it is done.
type Runtime interface {
	Pinger
	Images
	Swapper
	OneOffs
}

// OneOff is a one-off container: a backup or release command.
type OneOff struct {
	Name     string
	Image    string   // a reference that is pulled already
	Cmd      []string // run after the image's entrypoint, as docker run IMAGE CMD...
	Env      []string // KEY=VALUE
	Labels   map[string]string
	Volumes  []string // docker run -v syntax
	Networks []string // joined without aliases; no ports are published
	// Timeout bounds the run from its start; the container is killed when
	// it runs out. It must be positive.
	Timeout time.Duration
	// OutputLimit is how many bytes of its output (stdout and stderr
	// interleaved) to keep: the last ones.
	OutputLimit int
}

// OneOffResult is how a one-off container ended.
type OneOffResult struct {
	ExitCode int
	TimedOut bool   // killed at its Timeout
	Output   []byte // the last OutputLimit bytes of stdout and stderr
}

// Auth holds registry credentials for Resolve and Pull; the zero value is
// anonymous. AuthOf makes it from the config's.
type Auth struct {
	Username string
	Password string // secret
	// IdentityToken is a secret the registry's token service takes in
	// place of a password (Docker's identitytoken).
	IdentityToken string
	// Source, when set, is asked for the credentials at each call instead
	// of the fields above (a credential helper's, cached).
	Source CredentialSource
}

// Container is what the engine knows of a container.
type Container struct {
	ID           string
	Name         string // without the leading slash
	Image        string // the reference it was created from
	Labels       map[string]string
	Running      bool
	Status       string // "created", "running", "exited", ...
	ExitCode     int
	RestartCount int
	StartedAt    time.Time
	Health       string // "", "starting", "healthy", "unhealthy"
	IP           string // address on its first network, "" if none
	// Published maps each published container port ("8000/tcp") to the
	// host address of its first binding ("127.0.0.1:49153"; an unspecified
	// host IP is given as 127.0.0.1). A container that does not run
	// publishes nothing.
	Published map[string]string
}

// Managed tells whether liftoff created the container.
func (c Container) Managed() bool { return c.Labels[LabelManaged] == "true" }

// Spec is a container to create.
type Spec struct {
	Name     string
	Image    string   // pinned reference: host/repo@sha256:...
	Env      []string // KEY=VALUE, final (layered) environment
	Cmd      []string // empty: the image's
	Labels   map[string]string
	Ports    []string // docker run -p syntax: [ip:][hostPort:]containerPort[/proto]
	Volumes  []string // docker run -v syntax: src:dst[:opts]
	Networks []string
	Aliases  []string // network aliases on every network in Networks
	Restart  string   // "", "no", "always", "unless-stopped", "on-failure[:N]"
	// Healthcheck, if set, replaces the image's HEALTHCHECK.
	Healthcheck *Healthcheck
	// Settings are the rest of docker run's (limits, logging, user...).
	// The container carries them, so a rollback or repair that renames it
	// back keeps them.
	Settings deployments.Settings
}

// Healthcheck is a Docker health check: Test is ["CMD", args...] or
// ["CMD-SHELL", command].
type Healthcheck struct {
	Test     []string
	Interval time.Duration
	Timeout  time.Duration
	Retries  int
}
