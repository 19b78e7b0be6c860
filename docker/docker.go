// Package docker implements deploy.Runtime against the Docker Engine API
// (github.com/moby/moby/client), and resolves tags to digests by asking the
// registry directly (go-containerregistry), without pulling.
//
// The engine may be old: Debian's docker.io speaks API 1.41, which the
// client negotiates down to. Two things of that API shape this package:
// a container can be attached to one network only at create, so the others
// are connected after create and before start; and an image pull answers
// 200 before it has done anything, so its progress stream is read to the
// end and an error in it is the pull's error.
package docker

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/deploy"
)

var _ deploy.Runtime = (*Client)(nil)

// Client is a deploy.Runtime backed by one Docker engine. It is safe for
// concurrent use.
type Client struct {
	cli  *client.Client
	errs *prometheus.CounterVec
	log  zerolog.Logger
}

// ops are the values of the op label of liftoff_docker_errors_total.
var ops = []string{"ping", "resolve", "pull", "inspect", "create", "start", "stop", "rename", "remove", "connect", "image_inspect", "list", "run", "logs"}

// New connects to the engine at host ("unix:///var/run/docker.sock",
// "tcp://10.0.0.2:2376", ...), or to DOCKER_HOST or the local socket when
// host is "". The API version is negotiated on first use. Engine and
// registry errors are counted in liftoff_docker_errors_total{op} on reg,
// which may be nil.
func New(host string, reg prometheus.Registerer, log zerolog.Logger) (*Client, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w", host, err)
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "liftoff",
		Name:      "docker_errors_total",
		Help:      "Errors from the Docker engine or an image registry, by operation.",
	}, []string{"op"})
	if reg != nil {
		if err := reg.Register(errs); err != nil {
			// Several engines driven by one daemon share the counter.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				cli.Close()
				return nil, fmt.Errorf("register docker metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				cli.Close()
				return nil, fmt.Errorf("register docker metrics: %w", err)
			}
			errs = existing
		}
	}
	for _, op := range ops {
		errs.WithLabelValues(op)
	}
	return &Client{cli: cli, errs: errs, log: log}, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() error { return c.cli.Close() }

// Ping tells whether the engine answers, and settles the API version.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return c.fail("ping", fmt.Errorf("ping docker engine %s: %w", c.cli.DaemonHost(), engineErr(err)))
	}
	return nil
}

// fail counts err under op unless it is no engine failure: an ErrNotFound
// answer or the caller giving up. An engine or registry that cannot be
// reached counts.
func (c *Client) fail(op string, err error) error {
	if err != nil && !errors.Is(err, deploy.ErrNotFound) && !errors.Is(err, context.Canceled) {
		c.errs.WithLabelValues(op).Inc()
	}
	return err
}

// marked gives err a deploy sentinel (ErrNotFound, ErrUnavailable) while
// keeping its message and the original error in the chain.
type marked struct{ kind, err error }

func (e marked) Error() string   { return e.err.Error() }
func (e marked) Unwrap() []error { return []error{e.kind, e.err} }

func notFound(err error) error    { return marked{deploy.ErrNotFound, err} }
func unavailable(err error) error { return marked{deploy.ErrUnavailable, err} }

// engineErr marks the engine's "no such object" as deploy.ErrNotFound and
// an engine that cannot be reached as deploy.ErrUnavailable.
func engineErr(err error) error {
	switch {
	case cerrdefs.IsNotFound(err):
		return notFound(err)
	case client.IsErrConnectionFailed(err):
		return unavailable(err)
	}
	return err
}
