package deployments

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// LocalEngine is the name of the engine docker_host (or DOCKER_HOST, or the
// local socket) reaches: the engine of every deployment that names none.
const LocalEngine = "local"

// Engine is one more Docker engine liftoff drives (engines.<name>): another
// host, reached over TCP with TLS or over SSH.
type Engine struct {
	// Host is the engine's address, as DOCKER_HOST: unix:///path,
	// tcp://host:2376, ssh://user@host.
	Host string `yaml:"host"`
	// TLSCA, TLSCert and TLSKey are PEM files (relative to the config's
	// directory) for a tcp:// engine that requires TLS: the CA that signed
	// the engine's certificate, and liftoff's client certificate and key.
	// TLSCA alone verifies the engine without a client certificate.
	TLSCA   string `yaml:"tls_ca"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Insecure accepts a tcp:// engine on another host without TLS. Its
	// Docker API calls (root on that host) and the registry passwords sent
	// with pulls then cross the network in the clear: liftoff refuses such
	// an engine unless this says so, and warns at every start-up.
	Insecure bool `yaml:"insecure"`
}

// PlainRemoteTCP tells whether host is a tcp:// (or http://) address of
// another machine: anything but a loopback IP or "localhost". Without TLS,
// such an engine is reached in the clear.
func PlainRemoteTCP(host string) bool {
	scheme, rest, ok := strings.Cut(host, "://")
	if !ok || (scheme != "tcp" && scheme != "http") {
		return false
	}
	rest, _, _ = strings.Cut(rest, "/")
	h := rest
	if hh, _, err := net.SplitHostPort(rest); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return false
	}
	ip, err := netip.ParseAddr(h)
	return err != nil || !ip.IsLoopback()
}

// plainTCPAdvice says how to fix an engine refused by PlainRemoteTCP.
const plainTCPAdvice = "Docker API calls (root on that host) and registry passwords would cross the network unencrypted: " +
	"set tls_ca (and tls_cert, tls_key) to the engine's TLS files, reach it over ssh://user@host, " +
	"or set insecure: true to accept the risk"

// EngineNames returns the names of every engine, LocalEngine first, then
// those of engines in order.
func (c *Config) EngineNames() []string {
	return append([]string{LocalEngine}, slices.Sorted(maps.Keys(c.Engines))...)
}

// EngineHost returns the address of the named engine: DockerHost for
// LocalEngine ("" meaning DOCKER_HOST or the local socket).
func (c *Config) EngineHost(name string) (Engine, bool) {
	if name == LocalEngine {
		return Engine{Host: c.DockerHost, Insecure: c.DockerHostInsecure}, true
	}
	e, ok := c.Engines[name]
	return e, ok
}

// validateEngines checks engines and resolves their TLS files against the
// config's directory.
func (c *Config) validateEngines(p *problems) {
	for _, name := range slices.Sorted(maps.Keys(c.Engines)) {
		e := c.Engines[name]
		ep := "engines." + name
		switch {
		case name == LocalEngine:
			p.addf(ep, "%q is the engine of docker_host: set docker_host instead", LocalEngine)
			continue
		case !validName(name, 1):
			p.addf(ep, "invalid engine name: want [a-zA-Z0-9][a-zA-Z0-9_.-]*")
		}
		if e.Host == "" {
			p.addf(ep+".host", "missing: want unix:///path, tcp://host:2376 or ssh://user@host")
		} else {
			checkDockerHost(p, ep+".host", e.Host)
		}
		tls := e.TLSCA != "" || e.TLSCert != "" || e.TLSKey != ""
		switch plain := PlainRemoteTCP(e.Host); {
		case plain && !tls && !e.Insecure:
			p.addf(ep+".host", "%s is plain TCP to another host: %s", p.quote(ep+".host", e.Host), plainTCPAdvice)
		case e.Insecure && (tls || !plain):
			p.addf(ep+".insecure", "applies only to a tcp:// engine on another host without TLS: remove it")
		}
		switch {
		case (e.TLSCert == "") != (e.TLSKey == ""):
			p.addf(ep+".tls_cert", "tls_cert and tls_key go together")
		case tls && !strings.HasPrefix(e.Host, "tcp://") && !strings.HasPrefix(e.Host, "https://"):
			p.addf(ep+".tls_ca", "TLS applies to tcp:// engines only")
		}
		for _, f := range []struct {
			key  string
			path *string
		}{{"tls_ca", &e.TLSCA}, {"tls_cert", &e.TLSCert}, {"tls_key", &e.TLSKey}} {
			if *f.path == "" {
				continue
			}
			*f.path = c.resolve(*f.path)
			if _, err := readSecretFile(*f.path); err != nil {
				p.addFile(ep+"."+f.key, err)
			}
		}
		c.Engines[name] = e
	}
}

// checkDockerHost checks a DOCKER_HOST-style address.
func checkDockerHost(p *problems, at, host string) {
	scheme, rest, ok := strings.Cut(host, "://")
	switch {
	case !ok:
		p.addf(at, "want scheme://address, e.g. unix:///var/run/docker.sock or tcp://host:2376")
	case scheme != "unix" && scheme != "tcp" && scheme != "ssh" && scheme != "npipe" && scheme != "http" && scheme != "https":
		p.addf(at, "unknown scheme: want unix, tcp, ssh, npipe, http or https")
	case rest == "":
		p.addf(at, "no address after %s://", scheme)
	}
}

// checkEngineRef checks a deployment's engine.
func (c *Config) checkEngineRef(p *problems, at, name string) {
	if name == LocalEngine {
		return
	}
	if _, ok := c.Engines[name]; !ok {
		p.addf(at, "unknown engine %s: want %s", p.quote(at, name), strings.Join(quoteAll(c.EngineNames()), ", "))
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
