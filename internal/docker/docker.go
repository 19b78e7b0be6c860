// Package docker implements deploy.Runtime against the Docker Engine API
// (github.com/moby/moby/client), and resolves tags to digests by asking the
// registry directly (go-containerregistry), without pulling. A Client
// drives one engine (see Engine): over a Unix socket, TCP with TLS, or
// SSH as the docker CLI does it (ssh.go).
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
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

var _ deploy.Runtime = (*Client)(nil)

// Client is a deploy.Runtime backed by one Docker engine. It is safe for
// concurrent use.
type Client struct {
	cli    *client.Client
	engine string // its name in the configuration: the engine label of its errors
	host   string // its address, for messages ("" is DOCKER_HOST or the local socket)
	errs   *prometheus.CounterVec
	log    zerolog.Logger
}

// ops are the values of the op label of liftoff_docker_errors_total.
var ops = []string{"ping", "resolve", "list_tags", "pull", "inspect", "create", "start", "stop", "rename", "remove", "connect", "image_inspect", "list", "run", "logs", "service"}

// Engine is one Docker engine to drive and how to reach it: docker_host
// (Name deployments.LocalEngine) or one of the config's engines.
type Engine struct {
	// Name is the engine's name in the configuration, and the engine
	// label of liftoff_docker_errors_total; "" is deployments.LocalEngine.
	Name string
	// Host is the engine's address, as DOCKER_HOST: unix:///path,
	// tcp://host:2376, ssh://[user@]host[:port]. For the local engine ""
	// means DOCKER_HOST or the local socket; the local engine alone also
	// reads DOCKER_CERT_PATH, DOCKER_TLS_VERIFY and DOCKER_API_VERSION,
	// as the docker CLI does.
	Host string
	// TLSCA, TLSCert and TLSKey are PEM files for a tcp:// engine that
	// requires TLS (TLS 1.2 at least): the CA that signed the engine's
	// certificate (without it, the system's roots), and the client
	// certificate and key the engine requires (--tlsverify).
	TLSCA, TLSCert, TLSKey string
	// Insecure accepts a tcp:// engine on another host without TLS (see
	// deployments.Engine.Insecure); Open refuses one otherwise.
	Insecure bool
}

// ErrPlainTCP is the error of Open for a tcp:// engine on another host
// without TLS and without Insecure.
var ErrPlainTCP = errors.New("plain tcp:// to another host without TLS")

// New connects to the local engine at host ("unix:///var/run/docker.sock",
// "tcp://10.0.0.2:2376", ...), or to DOCKER_HOST or the local socket when
// host is "": Open with Engine{Host: host}.
func New(host string, reg prometheus.Registerer, log zerolog.Logger) (*Client, error) {
	return Open(Engine{Host: host}, reg, log)
}

// Open connects to the engine e. Nothing is dialled yet: the API version
// is negotiated on first use, and an engine that does not answer is no
// error here (Ping tells). An ssh:// engine is reached as the docker CLI
// reaches it: each connection runs "ssh -- host docker system dial-stdio"
// and speaks HTTP over its standard input and output, so the ssh client's
// own configuration (~/.ssh/config, keys, known_hosts, agent) applies and
// the remote user must be allowed to use docker there. Engine and registry
// errors are counted in liftoff_docker_errors_total{engine,op} on reg,
// which may be nil; clients of several engines share the counter.
func Open(e Engine, reg prometheus.Registerer, log zerolog.Logger) (*Client, error) {
	if e.Name == "" {
		e.Name = deployments.LocalEngine
	}
	local := e.Name == deployments.LocalEngine
	host := e.Host
	if host == "" && local {
		host = os.Getenv(client.EnvOverrideHost)
	}
	var opts []client.Opt
	switch {
	case strings.HasPrefix(host, "ssh://"):
		if e.TLSCA != "" || e.TLSCert != "" || e.TLSKey != "" {
			return nil, fmt.Errorf("docker engine %q: TLS applies to tcp:// engines only", e.Name)
		}
		dial, err := sshDialer(host)
		if err != nil {
			return nil, fmt.Errorf("docker engine %q: %w", e.Name, err)
		}
		// The HTTP side is that of a local socket (no proxy, the
		// socket's Host header): dial-stdio connects to the remote
		// engine's socket.
		opts = append(opts, client.WithAPIVersionFromEnv(), client.WithHost("unix:///var/run/docker.sock"), client.WithDialContext(dial))
	case host == "" && !local:
		return nil, fmt.Errorf("docker engine %q: no host", e.Name)
	case deployments.PlainRemoteTCP(host) && !e.Insecure && e.TLSCA == "" && e.TLSCert == "" && e.TLSKey == "" &&
		!(local && os.Getenv(client.EnvOverrideCertPath) != ""):
		fix := "set its tls_ca (and tls_cert, tls_key), reach it over ssh://, or set insecure: true to accept the risk"
		if local {
			fix = "set DOCKER_CERT_PATH (and DOCKER_TLS_VERIFY=1) as for the docker CLI, reach it over ssh://, " +
				"or, on a private network only liftoff reaches (a socket proxy's), set docker_host_insecure: true to accept the risk"
		}
		return nil, fmt.Errorf("docker engine %q at %s: %w: Docker API calls (root on that host) and registry passwords would cross the network unencrypted; %s",
			e.Name, host, ErrPlainTCP, fix)
	default:
		if local {
			opts = append(opts, client.FromEnv)
		}
		if host != "" {
			opts = append(opts, client.WithHost(host))
		}
		if e.TLSCA != "" || e.TLSCert != "" || e.TLSKey != "" {
			opts = append(opts, client.WithTLSClientConfig(e.TLSCA, e.TLSCert, e.TLSKey))
		}
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for engine %q (%s): %w", e.Name, host, err)
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "liftoff",
		Name:      "docker_errors_total",
		Help:      "Errors from a Docker engine or an image registry, by engine and operation.",
	}, []string{"engine", "op"})
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
		errs.WithLabelValues(e.Name, op)
	}
	return &Client{cli: cli, engine: e.Name, host: host, errs: errs, log: log}, nil
}

// Host returns the engine's address: as configured, or the one the client
// found (DOCKER_HOST, the local socket).
func (c *Client) Host() string { return c.addr() }

// Engine returns the name of the client's engine.
func (c *Client) Engine() string { return c.engine }

// addr is the engine's address as configured, or the one the client
// found (DOCKER_HOST, the local socket).
func (c *Client) addr() string {
	if c.host != "" {
		return c.host
	}
	return c.cli.DaemonHost()
}

// Close releases the client's idle connections.
func (c *Client) Close() error { return c.cli.Close() }

// Ping tells whether the engine answers, and settles the API version.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return c.fail("ping", fmt.Errorf("ping docker engine %q at %s: %w", c.engine, c.addr(), engineErr(err)))
	}
	return nil
}

// fail counts err under op unless it is no engine failure: an ErrNotFound
// answer or the caller giving up. An engine or registry that cannot be
// reached counts.
func (c *Client) fail(op string, err error) error {
	if err != nil && !errors.Is(err, deploy.ErrNotFound) && !errors.Is(err, context.Canceled) {
		c.errs.WithLabelValues(c.engine, op).Inc()
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
	case client.IsErrConnectionFailed(err), isCommandFailure(err):
		return unavailable(err)
	}
	return err
}
