package deployments

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// Validate checks the whole config, applies defaults and prepares it for
// use (normalized images, compiled tag rules and patterns, hashed hook
// and API tokens, indexes). Every error names its field, e.g.
// "deployments[1].tags[0]: ...". All errors are reported, joined. Validate
// reads env_files, secret_files and password_file to check them, and never
// shows their content.
func (c *Config) Validate() error {
	p := newProblems(c.secretPaths)
	c.validate(p)
	return p.err()
}

// validate checks the config level by level, top to bottom, and prepares
// what the daemon looks up on every request.
func (c *Config) validate(p *problems) {
	c.fillDefaults()
	c.checkTopLevel(p)
	c.validateHooks(p)
	c.hashTokens()
	c.validateRegistries(p)
	c.validateEngines(p)
	c.validateEnvironments(p)
	c.validateAPITokens(p) // after hooks and environments: tokens differ from hooks', scopes name environments
	c.checkApprovers(p)
	c.checkPublicURL(p)
	c.validateNotifications(p) // after environments: receivers name them
	repos := c.validateDeployments(p)
	c.index(repos)
	c.checkPromotions(p) // after index: promote_from names deployments
	c.checkConfigPolicies(p)
	c.validatePolls(p) // after deployments: images are normalized
}

// checkTopLevel checks the settings of the daemon itself.
func (c *Config) checkTopLevel(p *problems) {
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		p.addf("listen", "want [host]:port, e.g. \"127.0.0.1:8080\" (this host only) or \":8080\" (every interface)")
	}
	if c.DockerHost != "" {
		checkDockerHost(p, "docker_host", c.DockerHost)
	}
	if c.HookRateLimit < -1 {
		p.addf("hook_rate_limit", "want requests a minute per client (default %d), or -1 for no limit", DefaultHookRate)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil || port == "" {
			p.addf("metrics_listen", "want [host]:port, e.g. \"127.0.0.1:9100\"")
		} else if c.MetricsListen == c.Listen && port != "0" {
			p.addf("metrics_listen", "is the same address as listen; leave it empty to serve /metrics on listen")
		}
	}
	if c.APIListen != "" {
		// Port 0 is a free port of the system's choosing: never the same.
		if _, port, err := net.SplitHostPort(c.APIListen); err != nil || port == "" {
			p.addf("api_listen", "want [host]:port, e.g. \"127.0.0.1:8081\"")
		} else if c.APIListen == c.Listen && port != "0" {
			p.addf("api_listen", "is the same address as listen; leave it empty to serve the API on listen")
		} else if c.APIListen == c.MetricsListen && port != "0" {
			p.addf("api_listen", "is the same address as metrics_listen: give the API an address of its own, or leave api_listen empty to serve it on listen")
		}
	}
	c.checkTLS(p)
	c.HistoryRetention.check(p)
}

// checkTLS checks that tls_cert and tls_key load, resolving them against
// the config's directory.
func (c *Config) checkTLS(p *problems) {
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		p.addf("tls_cert", "tls_cert and tls_key go together: set both to serve HTTPS, or neither")
	case c.TLSCert != "":
		c.TLSCert, c.TLSKey = c.resolve(c.TLSCert), c.resolve(c.TLSKey)
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			if p.secret("tls_cert") || p.secret("tls_key") {
				// The error names the files.
				p.addf("tls_cert", "cannot load the certificate and key (a file name comes from ${VAR} and is not shown)")
			} else {
				p.addf("tls_cert", "cannot load the certificate and key: %v", err)
			}
		}
	}
}

// validateHooks checks each hook's source and token. The tokens are hashed
// afterwards, by hashTokens.
func (c *Config) validateHooks(p *problems) {
	served := HookSources()
	supported := strings.Join(served, ", ")
	first := map[string]int{}
	for i, h := range c.Hooks {
		sp := fmt.Sprintf("hooks[%d].source", i)
		switch {
		case h.Source == "":
			p.addf(sp, "missing (supported: %s)", supported)
		case slices.Contains(served, h.Source):
		default:
			p.addf(sp, "unknown source %s (supported: %s)", p.quote(sp, h.Source), supported)
		}
		if j, dup := first[h.Source]; dup && h.Source != "" {
			p.addf(sp, "duplicate of hooks[%d]: one hook per source", j)
		} else {
			first[h.Source] = i
		}

		if c.tokensForgotten {
			continue // validated when loaded; only the hashes remain
		}
		checkToken(p, fmt.Sprintf("hooks[%d].token", i), h.Token)
		checkHookAuth(p, i, h)
	}
}

// checkHookAuth checks what a hook requires beyond its token: a secret for
// the sources that sign, an auth_header only for those that can send one.
// Neither value is ever shown.
func checkHookAuth(p *problems, i int, h Hook) {
	sp, ap := fmt.Sprintf("hooks[%d].secret", i), fmt.Sprintf("hooks[%d].auth_header", i)
	switch {
	case SignedSource(h.Source) && h.Secret == "":
		p.addf(sp, "missing: %s signs every delivery with it (use a long random secret, e.g. from `openssl rand -hex 32`, and give the sender the same)", h.Source)
	case SignedSource(h.Source) && len(h.Secret) < minTokenLen:
		p.addf(sp, "too short: at least %d characters, e.g. from `openssl rand -hex 32`", minTokenLen)
	case !SignedSource(h.Source) && h.Secret != "" && h.Source != "":
		p.addf(sp, "%s does not sign its deliveries: only %s take a secret", h.Source, strings.Join(signedSources, " and "))
	}
	switch {
	case h.AuthHeader == "" || h.Source == "":
	case !slices.Contains(authHeaderSources, h.Source):
		p.addf(ap, "%s cannot send an Authorization header: only %s take auth_header", h.Source, strings.Join(authHeaderSources, ", "))
	case len(h.AuthHeader) < minTokenLen:
		p.addf(ap, "too short: at least %d characters, e.g. \"Bearer \" and `openssl rand -hex 24`", minTokenLen)
	case !headerSafe(h.AuthHeader):
		p.addf(ap, "must be printable ASCII: it is compared with the Authorization header")
	}
}

func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}

// checkToken checks a hook token without ever showing it, not even in part.
func checkToken(p *problems, at, token string) {
	switch {
	case token == "":
		p.addf(at, "missing: use a long random secret, e.g. from `openssl rand -hex 24`")
	case len(token) < minTokenLen:
		p.addf(at, "too short: at least %d characters, e.g. from `openssl rand -hex 24`", minTokenLen)
	case !pathSegmentSafe(token):
		p.addf(at, "must be printable ASCII without '/', '?', '#', '%%' or spaces: it is a segment of the hook's URL")
	}
}

func pathSegmentSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || strings.IndexByte("/?#%", b) >= 0 {
			return false
		}
	}
	return true
}

// validateRegistries checks the registries and keys them by their
// normalized host, so that docker.io and index.docker.io are one.
func (c *Config) validateRegistries(p *problems) {
	if len(c.Registries) == 0 {
		return
	}
	regs := make(map[string]Registry, len(c.Registries))
	from := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(c.Registries)) {
		r := c.Registries[k]
		rp := "registries." + k
		host, err := imageref.NormalizeHost(k)
		if err != nil {
			p.addf(rp, "%v", err)
			continue
		}
		if prev, dup := from[host]; dup {
			p.addf(rp, "the same registry as registries.%s", prev)
			continue
		}
		from[host] = k
		r.mirrorHost = ""
		if r.Mirror != "" {
			if r.mirrorHost, err = mirrorHost(r.Mirror); err != nil {
				p.addLib(rp+".mirror", "want host[:port] or http(s)://host[:port]", err)
			}
		}
		if (r.Username == "") != (r.PasswordFile == "") {
			p.addf(rp, "username and password_file go together")
		}
		if r.PasswordFile != "" {
			if _, err := readSecretFile(c.resolve(r.PasswordFile)); err != nil {
				p.addFile(rp+".password_file", err)
			}
		}
		c.checkCredentials(p, rp, r)
		regs[host] = r
	}
	c.Registries = regs
}
