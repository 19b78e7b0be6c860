package deployments

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Finding is one risky thing a valid config does: the field, what is
// risky, and why. Audit lists them; none is an error (liftoff runs), each
// is a choice to make knowingly.
type Finding struct {
	Field string
	Risk  string
	Why   string
}

func (f Finding) String() string { return f.Field + ": " + f.Risk + ": " + f.Why }

// Audit returns what a loaded config exposes or turns off that a careful
// operator would want to know about, in the order of the file. It reads
// the config only: it contacts nothing, and never quotes a secret (a
// notification URL, a token).
func (c *Config) Audit() []Finding {
	var fs []Finding
	add := func(field, risk, why string) { fs = append(fs, Finding{field, risk, why}) }

	apiOn := c.APIEnabled()
	apiAddr, apiField := c.Listen, "listen"
	if c.APIListen != "" {
		apiAddr, apiField = c.APIListen, "api_listen"
	}
	switch {
	case apiOn && everyInterface(apiAddr) && c.TLSCert == "":
		add(apiField, "the management API and the status page are served on every interface, over plain HTTP",
			"API tokens and session cookies cross the network in the clear, and anyone who reaches "+apiAddr+" can try tokens; "+
				"put the API on a loopback or private address (api_listen: 127.0.0.1:8081) or behind TLS (tls_cert, tls_key)")
	case apiOn && everyInterface(apiAddr):
		add(apiField, "the management API and the status page are served on every interface",
			"anyone who reaches "+apiAddr+" can try tokens; keep the API on a loopback or private address (api_listen) unless it must be public")
	}
	if m := c.MetricsListen; (m == "" && everyInterface(c.Listen)) || (m != "" && everyInterface(m)) {
		field, addr := "listen", c.Listen
		if m != "" {
			field, addr = "metrics_listen", m
		}
		add(field, "/metrics is served on every interface, without authentication",
			"it names every deployment, image, tag and digest, and the engines' errors, to anyone who reaches "+addr+"; "+
				"set metrics_listen to a loopback or private address")
	}

	switch {
	case c.DockerHostInsecure:
		add("docker_host_insecure", "the local engine may be reached over plain TCP, without TLS",
			"if docker_host (or DOCKER_HOST) is tcp:// to another host, every Docker API call and the registry passwords cross that network in the clear; keep it to a private network only liftoff reaches (a socket proxy's)")
	case PlainRemoteTCP(c.DockerHost):
		add("docker_host", "plain tcp:// to another host",
			"liftoff refuses to start on it unless DOCKER_CERT_PATH gives it TLS: without, Docker API calls (root on that host) and registry passwords cross the network in the clear")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Engines)) {
		if e := c.Engines[name]; e.Insecure {
			add("engines."+name+".insecure", "a Docker engine reached over plain TCP, without TLS",
				"every Docker API call (root on that host) and the registry passwords sent with pulls cross the network in the clear; "+
					"set tls_ca, tls_cert and tls_key, or reach it over ssh://")
		}
	}

	for i, t := range c.APITokens {
		if slices.Contains(t.Scopes, scopeAdmin) {
			add(fmt.Sprintf("api_tokens[%d].scopes", i), fmt.Sprintf("token %q has admin", t.Name),
				"it may deploy, roll back, approve and read every environment's backup and release output; give it only the scopes it needs (read, deploy:<env>, approve:<env>, logs:<env>)")
		}
		for _, s := range t.Scopes {
			if verb, env, _ := strings.Cut(s, ":"); env == anyEnvironment && verb != "" {
				add(fmt.Sprintf("api_tokens[%d].scopes", i), fmt.Sprintf("token %q has %s", t.Name, s),
					"it applies to every environment, production included, and to environments added later; name the environments instead")
			}
		}
	}

	if c.HookRateLimit < 0 {
		add("hook_rate_limit", "the rate limit of /hooks is off (-1)",
			"a client (or a leaked hook token) may send deliveries as fast as it can, each resolved in the registry; leave it out for the default, 120 a minute per client")
	}
	for i, h := range c.Hooks {
		needsAuth := h.Source == "distribution" || h.Source == "harbor" || h.Source == "ecr"
		if needsAuth && i < len(c.hookSums) && !c.hookSums[i].check.hasAuth {
			add(fmt.Sprintf("hooks[%d].auth_header", i), "the "+h.Source+" hook has no auth_header",
				"its URL token alone lets anyone who learns the URL (a registry's settings, a proxy's log) send deliveries; set auth_header, which the sender adds to each delivery")
		}
	}

	for i, n := range c.Notifications {
		if u, err := url.Parse(n.URL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			add(fmt.Sprintf("notifications[%d].url", i), fmt.Sprintf("receiver %q is sent to over plain http://", n.Name),
				"the messages (deployments, digests, errors) and any credential in the URL cross the network in the clear; use https://")
		}
	}
	return fs
}

// everyInterface tells whether a listen address ([host]:port) listens on
// every interface: no host, 0.0.0.0 or ::.
func everyInterface(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// loopbackHost tells whether host is "localhost" or a loopback IP.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
