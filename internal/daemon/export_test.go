package daemon

import (
	"net"

	"github.com/prometheus/client_golang/prometheus"
)

// What the end-to-end tests (package daemon_test) read of a Daemon.

// Registry is the registry of the daemon's metrics.
func (a *Daemon) Registry() *prometheus.Registry { return a.registry }

// ProxyAddr is the address of the front door of deployment.
func (a *Daemon) ProxyAddr(deployment string) net.Addr { return a.proxy.Addr(deployment) }

// APIAddr is the address of api_listen.
func (a *Daemon) APIAddr() string { return a.apiLn.Addr().String() }
