package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"
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

// Runtime is what the engine needs of a container runtime. The docker package
// implements it against the Docker Engine API; unit tests use fakes.
//
// Every method takes a context and must return promptly when it is done.
type Runtime interface {
	// Ping tells whether the engine answers.
	Ping(ctx context.Context) error
	// Resolve returns the digest ("sha256:...") that ref ("host/repo:tag")
	// points to in its registry now, without pulling. A tag or repository
	// the registry does not know is ErrNotFound.
	Resolve(ctx context.Context, ref string, auth Auth) (string, error)
	// Pull fetches ref ("host/repo@sha256:...") fully.
	Pull(ctx context.Context, ref string, auth Auth) error
	// ImageEnv returns the ENV of a pulled image as KEY=VALUE lines.
	ImageEnv(ctx context.Context, ref string) ([]string, error)
	// Inspect returns the container with that name or id, or ErrNotFound.
	Inspect(ctx context.Context, nameOrID string) (Container, error)
	// Create creates (does not start) a container from spec, connected to
	// all of spec.Networks with spec.Aliases, and returns its id.
	Create(ctx context.Context, spec Spec) (string, error)
	Start(ctx context.Context, id string) error
	// Stop stops a container with its stop signal, killing it after grace.
	// Stopping a stopped container is not an error.
	Stop(ctx context.Context, id string, grace time.Duration) error
	Rename(ctx context.Context, id, name string) error
	// SetAliases gives a container aliases on each of the networks it is
	// connected to (by reconnecting it), so that Docker's DNS starts
	// sending the aliases' traffic to it.
	SetAliases(ctx context.Context, id string, networks, aliases []string) error
	// Drain takes a running container out of Docker's DNS (its aliases)
	// on every network where it has aliases, keeping its address there,
	// so that its connections carry on and clients that resolved it before
	// still reach it. It returns the networks drained and those where the
	// engine cannot keep an address (no user-configured subnet): there the
	// container keeps its aliases. A container that does not run is left
	// alone.
	Drain(ctx context.Context, id string) (drained, kept []string, err error)
	// Remove removes a container (forcefully, with its anonymous volumes).
	// Removing a container that is gone is not an error.
	Remove(ctx context.Context, id string) error
	// RunOnce runs a one-off container as `docker run --rm` would: it
	// creates spec.Name from spec.Image (a container of that name left
	// behind is removed first, if liftoff's; one that is not liftoff's is
	// an error, and left alone), starts it, waits for it to exit, bounded
	// by spec.Timeout (then kills it: TimedOut), and removes it, whatever
	// happened, before it returns. An error means the engine failed (the
	// command may not have run); a command that ran and failed is a
	// result with its ExitCode. If ctx ends first, the container is
	// killed and removed, and the error is ctx's.
	RunOnce(ctx context.Context, spec OneOff) (OneOffResult, error)
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
// anonymous.
type Auth struct {
	Username string
	Password string
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
}

// Healthcheck is a Docker health check: Test is ["CMD", args...] or
// ["CMD-SHELL", command].
type Healthcheck struct {
	Test     []string
	Interval time.Duration
	Timeout  time.Duration
	Retries  int
}

// unknownEngine is an engine the config names that liftoff was not started
// with: engines apply at start-up only.
type unknownEngine string

func (u unknownEngine) err() error {
	return fmt.Errorf("engine %q was added to the configuration after liftoff started: restart liftoff to use it", string(u))
}

func (u unknownEngine) Ping(context.Context) error { return u.err() }
func (u unknownEngine) Resolve(context.Context, string, Auth) (string, error) {
	return "", u.err()
}
func (u unknownEngine) Pull(context.Context, string, Auth) error { return u.err() }
func (u unknownEngine) ImageEnv(context.Context, string) ([]string, error) {
	return nil, u.err()
}
func (u unknownEngine) Inspect(context.Context, string) (Container, error) {
	return Container{}, u.err()
}
func (u unknownEngine) Create(context.Context, Spec) (string, error)      { return "", u.err() }
func (u unknownEngine) Start(context.Context, string) error               { return u.err() }
func (u unknownEngine) Stop(context.Context, string, time.Duration) error { return u.err() }
func (u unknownEngine) Rename(context.Context, string, string) error      { return u.err() }
func (u unknownEngine) SetAliases(context.Context, string, []string, []string) error {
	return u.err()
}
func (u unknownEngine) Drain(context.Context, string) ([]string, []string, error) {
	return nil, nil, u.err()
}
func (u unknownEngine) Remove(context.Context, string) error { return u.err() }
func (u unknownEngine) RunOnce(context.Context, OneOff) (OneOffResult, error) {
	return OneOffResult{}, u.err()
}
