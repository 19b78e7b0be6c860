package deployments

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Proxy is deployments[].proxy: liftoff's own front door for the
// deployment. liftoff listens on Listen and forwards HTTP to Port of the
// deployment's current container; a deploy starts the new container beside
// the old one, switches new requests to it once it passed its gate, lets
// the old one finish the requests it has (up to DrainTimeout), and only
// then stops it.
type Proxy struct {
	// Listen is where liftoff accepts the deployment's requests:
	// "127.0.0.1:8001", ":80".
	Listen string `yaml:"listen"`
	// Hosts, instead of Listen, has the front door (front_door) send the
	// requests for these Host names here: exact ("app.example.com") or
	// one label of wildcard ("*.example.com"; an exact host wins).
	Hosts []string `yaml:"hosts"`
	// PathPrefix narrows Hosts to the paths under it ("/api" takes /api
	// and /api/x, not /apix); the longest prefix wins. The path reaches
	// the container unchanged.
	PathPrefix string `yaml:"path_prefix"`
	// Port is the container's port the app listens on.
	Port int `yaml:"port"`
	// DrainTimeout bounds the wait for the old container's requests in
	// flight after the switch (DefaultDrainTimeout, 30s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// WaitTimeout bounds how long a request waits while no container is
	// ready (the first deploy, a deployment that is down) before it is
	// answered 503 (DefaultProxyWait, 30s).
	WaitTimeout time.Duration `yaml:"wait_timeout"`
	// MaxBodyBytes limits a request's body (DefaultProxyMaxBody, 100 MiB);
	// -1 for no limit. A larger body is answered 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// TrustForwarded keeps the X-Forwarded-For, -Proto and -Host a client
	// sends (set it when a TLS terminator of yours is the only client);
	// otherwise liftoff replaces them with what it saw.
	TrustForwarded bool `yaml:"trust_forwarded"`
	// Upstream is how liftoff reaches the containers: "loopback" (the
	// default) publishes Port of each container on a free 127.0.0.1 port;
	// "network" uses the container's address on its first network, for a
	// liftoff that runs in a container on that network.
	Upstream string `yaml:"upstream"`
	// Canary, if set, has a new container prove itself on a share of the
	// traffic, step by step, before it gets all of it (canary.go).
	Canary *Canary `yaml:"canary"`
}

// Proxy upstream modes.
const (
	UpstreamLoopback = "loopback"
	UpstreamNetwork  = "network"
)

// Proxy defaults.
const (
	DefaultDrainTimeout = 30 * time.Second
	DefaultProxyWait    = 30 * time.Second
	DefaultProxyMaxBody = 100 << 20
)

func (x *Proxy) fillDefaults() {
	if x.DrainTimeout == 0 {
		x.DrainTimeout = DefaultDrainTimeout
	}
	if x.WaitTimeout == 0 {
		x.WaitTimeout = DefaultProxyWait
	}
	if x.MaxBodyBytes == 0 {
		x.MaxBodyBytes = DefaultProxyMaxBody
	}
	if x.Upstream == "" {
		x.Upstream = UpstreamLoopback
	}
}

// checkProxy checks a deployment's proxy and fills its defaults. listens
// holds the addresses of liftoff's other listeners and of the proxies
// checked before, by the field that has them.
func (c *Config) checkProxy(p *problems, at string, d *Deployment, listens map[string]string) {
	x := d.Proxy
	x.fillDefaults()
	host, port, err := net.SplitHostPort(x.Listen)
	for j, h := range x.Hosts {
		if msg := checkHost(h); msg != "" {
			p.addf(fmt.Sprintf("%s.hosts[%d]", at, j), "%s: %s", p.quote(fmt.Sprintf("%s.hosts[%d]", at, j), h), msg)
		}
	}
	switch pp := x.PathPrefix; {
	case pp == "":
	case len(x.Hosts) == 0:
		p.addf(at+".path_prefix", "a path prefix narrows hosts: give hosts too")
	case !strings.HasPrefix(pp, "/") || strings.ContainsAny(pp, "?#* "):
		p.addf(at+".path_prefix", "%s: want a plain path starting with /, e.g. /api", p.quote(at+".path_prefix", pp))
	}
	switch {
	case len(x.Hosts) > 0 && x.Listen != "":
		p.addf(at+".listen", "give listen (an address of its own) or hosts (on the front door), not both")
	case len(x.Hosts) > 0:
	case x.Listen == "":
		p.addf(at+".listen", "missing: want [host]:port, e.g. \"127.0.0.1:8001\" or \":80\", or hosts on the front door")
	case err != nil || port == "":
		p.addf(at+".listen", "%s: want [host]:port, e.g. \"127.0.0.1:8001\" or \":80\"", p.quote(at+".listen", x.Listen))
	default:
		// Port 0 is a free port of the system's choosing: never the same.
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.addf(at+".listen", "port %s: want 1 to 65535", port)
		} else if other, dup := listens[net.JoinHostPort(host, port)]; dup && n != 0 {
			p.addf(at+".listen", "%s is also %s", x.Listen, other)
		} else if n != 0 {
			listens[net.JoinHostPort(host, port)] = at + ".listen"
		}
	}
	if x.Port < 1 || x.Port > 65535 {
		p.addf(at+".port", "want the container's port the app listens on, 1 to 65535")
	}
	if x.DrainTimeout < 0 {
		p.addf(at+".drain_timeout", "must be positive, e.g. 30s")
	}
	if x.WaitTimeout < 0 {
		p.addf(at+".wait_timeout", "must be positive, e.g. 30s")
	}
	if x.MaxBodyBytes < -1 {
		p.addf(at+".max_body_bytes", "want a size in bytes, or -1 for no limit")
	}
	switch x.Upstream {
	case UpstreamLoopback:
	case UpstreamNetwork:
		if len(d.Container.Networks) == 0 {
			p.addf(at+".upstream", "network needs container.networks: liftoff reaches the container at its address on the first")
		}
	default:
		p.addf(at+".upstream", "unknown upstream %s: want loopback or network", p.quote(at+".upstream", x.Upstream))
	}
	if u, err := url.Parse(d.Health.URL); err == nil && d.Health.URL != "" && port != "" {
		uhost, uport := u.Hostname(), u.Port()
		if uport == "" && u.Scheme == "http" {
			uport = "80"
		}
		loop := uhost == "localhost" || uhost == "::1" || strings.HasPrefix(uhost, "127.")
		if uport == port && (uhost == host || loop && (host == "" || host == "0.0.0.0" || host == "::" || strings.HasPrefix(host, "127."))) {
			p.addf(d.path+".health.url", "is the proxy's own address: the gate would probe the container that serves now, not the new one; use http://{upstream}/... (the new container, as the proxy reaches it)")
		}
	}
	if x.Canary != nil || c.nullPaths[at+".canary"] {
		checkCanary(p, at+".canary", d, x.Canary == nil)
	}
	if len(d.Container.Ports) > 0 {
		p.addf(at, "a proxied deployment runs two containers at once during a deploy, so container.ports must be empty: liftoff reaches port %d itself", x.Port)
	}
}

// listenAddrs returns liftoff's own listeners, by the field that has them,
// for the proxies' addresses to be compared with.
func (c *Config) listenAddrs() map[string]string {
	m := map[string]string{}
	for _, l := range []struct{ key, addr string }{{"listen", c.Listen}, {"api_listen", c.APIListen}, {"metrics_listen", c.MetricsListen}} {
		if host, port, err := net.SplitHostPort(l.addr); err == nil && port != "0" {
			m[net.JoinHostPort(host, port)] = l.key
		}
	}
	return m
}

// ProxyRoutes lists the deployments that have a proxy, and the unit of
// an app's process that has one ("dblood/web.1"): the front door knows
// each by its name.
func (c *Config) ProxyRoutes() []*Deployment {
	var out []*Deployment
	for i := range c.Deployments {
		d := &c.Deployments[i]
		if d.Proxy != nil {
			out = append(out, d)
		}
		for _, u := range d.units {
			if u.Deployment.Proxy != nil {
				out = append(out, u.Deployment)
			}
		}
	}
	return out
}
