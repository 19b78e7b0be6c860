package deployments

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// FrontDoor is front_door: one address (":443") that serves every
// deployment whose proxy names hosts instead of a listen of its own, routed
// by Host and path prefix, with TLS.
type FrontDoor struct {
	// Listen is where it accepts requests: ":443".
	Listen string `yaml:"listen"`
	// HTTPListen, if set (":80"), answers ACME's HTTP-01 challenges and
	// redirects everything else to https. It needs TLS.
	HTTPListen string `yaml:"http_listen"`
	// RedirectPort, if set, is the https port http_listen redirects to,
	// where it is not listen's own: liftoff on :8443 with Docker mapping
	// 443 to it. Default: listen's port (443 is left out of the address).
	RedirectPort int `yaml:"redirect_port"`
	// TLS, if set, makes Listen serve HTTPS; without it Listen serves
	// plain HTTP (behind a TLS terminator of yours).
	TLS *FrontDoorTLS `yaml:"tls"`
	// HSTS, if set, is the max-age of the Strict-Transport-Security header
	// added to every answer over TLS (e.g. 8760h); 0 adds none.
	HSTS time.Duration `yaml:"hsts"`
	// Default names the proxied deployment that answers a Host no route
	// names; "" answers 404.
	Default string `yaml:"default"`
}

// FrontDoorTLS is where the front door's certificates come from: files,
// ACME, or both (the file's certificate for the names it covers, ACME for
// the other hosts).
type FrontDoorTLS struct {
	// CertFile (the chain, leaf first) and KeyFile are PEM files, read
	// again at each reload (SIGHUP), e.g. after certbot renewed them.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	ACME     *ACME  `yaml:"acme"`
}

// ACME gets the front door's certificates from an ACME CA for every exact
// host the deployments' proxies name.
type ACME struct {
	// Email is given to the CA for expiry notices; optional.
	Email string `yaml:"email"`
	// DirectoryURL is the CA's directory; "" is Let's Encrypt's
	// (DefaultACMEDirectory). Any ACME CA works: ZeroSSL, a private step-ca.
	DirectoryURL string `yaml:"directory_url"`
	// CacheDir keeps the account key and the certificates, so that a
	// restart does not ask the CA again (default: acme/ beside history).
	CacheDir string `yaml:"cache_dir"`
}

// DefaultACMEDirectory is Let's Encrypt's production directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// checkFrontDoor checks front_door and fills its defaults; listens holds
// liftoff's other listeners by the field that has them, and gets the
// front door's.
func (c *Config) checkFrontDoor(p *problems, listens map[string]string) {
	f := c.FrontDoor
	if c.nullPaths["front_door"] {
		p.addf("front_door", "given with no value: remove it, or give its listen")
		return
	}
	if f == nil {
		return
	}
	checkListen(p, "front_door.listen", f.Listen, listens, "\":443\"")
	if f.HTTPListen != "" {
		checkListen(p, "front_door.http_listen", f.HTTPListen, listens, "\":80\"")
		if f.TLS == nil {
			p.addf("front_door.http_listen", "redirects to https: give front_door.tls too, or drop http_listen")
		}
	}
	if f.RedirectPort != 0 {
		switch {
		case f.RedirectPort < 1 || f.RedirectPort > 65535:
			p.addf("front_door.redirect_port", "%d: want a port from 1 to 65535, e.g. 443", f.RedirectPort)
		case f.HTTPListen == "":
			p.addf("front_door.redirect_port", "is where http_listen redirects to: give front_door.http_listen too, or drop redirect_port")
		}
	}
	if f.HSTS < 0 {
		p.addf("front_door.hsts", "want a max-age such as 8760h, or 0 for no HSTS")
	} else if f.HSTS > 0 && f.TLS == nil {
		p.addf("front_door.hsts", "HSTS is sent over TLS only: give front_door.tls too, or drop hsts")
	}
	if f.Default != "" {
		if i, ok := c.byNameUnindexed(f.Default); !ok {
			p.addf("front_door.default", "no deployment is named %s", p.quote("front_door.default", f.Default))
		} else if c.Deployments[i].Proxy == nil {
			p.addf("front_door.default", "%s has no proxy: the front door can only send requests to a proxied deployment", f.Default)
		}
	}
	if f.TLS == nil {
		return
	}
	t := f.TLS
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		p.addf("front_door.tls.cert_file", "cert_file and key_file go together: set both, or neither")
	case t.CertFile == "" && t.ACME == nil:
		p.addf("front_door.tls", "give cert_file and key_file, or acme, or both")
	case t.CertFile != "":
		t.CertFile, t.KeyFile = c.resolve(t.CertFile), c.resolve(t.KeyFile)
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			if p.secret("front_door.tls.cert_file") || p.secret("front_door.tls.key_file") {
				p.addf("front_door.tls.cert_file", "cannot load the certificate and key (a file name comes from ${VAR} and is not shown)")
			} else {
				p.addf("front_door.tls.cert_file", "cannot load the certificate and key: %v", err)
			}
		}
	}
	if a := t.ACME; a != nil {
		if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n<>,")) {
			p.addf("front_door.tls.acme.email", "%s: want an address such as ops@example.com", p.quote("front_door.tls.acme.email", a.Email))
		}
		if a.DirectoryURL == "" {
			a.DirectoryURL = DefaultACMEDirectory
		} else if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
			p.addf("front_door.tls.acme.directory_url", "%s: want the CA's https:// directory URL, e.g. %s", p.quote("front_door.tls.acme.directory_url", a.DirectoryURL), DefaultACMEDirectory)
		}
		if a.CacheDir == "" {
			a.CacheDir = filepath.Join(filepath.Dir(c.History), "acme")
		} else {
			a.CacheDir = c.resolve(a.CacheDir)
		}
	}
}

// checkListen checks a [host]:port of key, and that no other listener of
// liftoff has it.
func checkListen(p *problems, key, addr string, listens map[string]string, example string) {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case addr == "":
		p.addf(key, "missing: want [host]:port, e.g. %s", example)
	case err != nil || port == "":
		p.addf(key, "%s: want [host]:port, e.g. %s", p.quote(key, addr), example)
	default:
		a := net.JoinHostPort(host, port)
		if other, dup := listens[a]; dup && port != "0" {
			p.addf(key, "%s is also %s", addr, other)
		} else if port != "0" {
			listens[a] = key
		}
	}
}

// byNameUnindexed finds a deployment by name before the index is built.
func (c *Config) byNameUnindexed(name string) (int, bool) {
	for i := range c.Deployments {
		if c.Deployments[i].Name == name {
			return i, true
		}
	}
	return 0, false
}

// checkHost says what is wrong with a proxy's host, "" if nothing: a DNS
// name, or "*." and one, in lower case.
func checkHost(h string) string {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		return "empty: want a host name such as app.example.com"
	case strings.ToLower(h) != h:
		return "want lower case"
	case strings.Contains(name, "*"):
		return "a wildcard is only allowed as the whole first label (*.example.com)"
	case strings.ContainsAny(name, ":/ \t") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
		return "want a host name such as app.example.com, without scheme, port or path"
	case len(name) > 253:
		return "longer than 253 characters"
	}
	for _, l := range strings.Split(name, ".") {
		if len(l) > 63 {
			return fmt.Sprintf("a name whose label %q is longer than 63 characters (the most DNS allows between dots)", l)
		}
	}
	return ""
}

// checkFrontDoorRoutes checks what the deployments' proxies ask of the
// front door: hosts need one, no host and path prefix twice, and ACME
// cannot get a wildcard certificate.
func (c *Config) checkFrontDoorRoutes(p *problems) {
	owner := map[string]string{} // host + prefix → the field that has it
	for _, d := range c.ProxyRoutes() {
		if len(d.Proxy.Hosts) == 0 {
			continue
		}
		at := d.proxyPath() + ".hosts"
		if c.FrontDoor == nil {
			p.addf(at, "hosts are served by the front door: add front_door (listen: \":443\" ...), or give the proxy a listen of its own")
		}
		for j, h := range d.Proxy.Hosts {
			hp := fmt.Sprintf("%s[%d]", at, j)
			key := h + strings.TrimRight(d.Proxy.PathPrefix, "/")
			if other, dup := owner[key]; dup {
				if d.Proxy.PathPrefix != "" {
					p.addf(hp, "%s with path_prefix %s is also %s", h, d.Proxy.PathPrefix, other)
				} else {
					p.addf(hp, "%s is also %s", h, other)
				}
			} else {
				owner[key] = hp
			}
			if strings.HasPrefix(h, "*.") && c.FrontDoor != nil && c.FrontDoor.TLS != nil && c.FrontDoor.TLS.CertFile == "" {
				p.addf(hp, "ACME cannot get a certificate for a wildcard by HTTP-01 or TLS-ALPN-01: give front_door.tls.cert_file with a wildcard certificate, or name the hosts")
			}
		}
	}
}
