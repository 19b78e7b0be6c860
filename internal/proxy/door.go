package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// The shared front door: one address (":443") for every route that names
// Hosts instead of a Listen of its own, routed by the request's Host and the
// longest PathPrefix, with TLS from certificate files or ACME, and a plain
// HTTP address (":80") that redirects to it.
//
// What a reload may change without dropping a connection is read through
// atomic pointers by the open listeners: the routing table (routes added,
// moved, removed), the certificate (files read again) and the ACME manager.
// Only a change of the address itself opens a new listener and lets the old
// one finish its requests, as for a route's own listener.

// Door is the shared front door (config front_door). The zero Door is none.
type Door struct {
	// Listen is the address of the routes with Hosts: ":443". "" is no
	// front door; routes must then have a Listen of their own.
	Listen string
	// HTTPListen, if set, answers plain HTTP: ACME's HTTP-01 challenges,
	// and a redirect to https for everything else. It needs TLS.
	HTTPListen string
	// RedirectPort, if set (1 to 65535), is the https port HTTPListen
	// redirects to, for a front door whose port is mapped (Docker's
	// 443:8443); 0 is the port of Listen (the bound one for port 0). 443
	// is left out of the redirect's address.
	RedirectPort int
	// TLS, if set, makes Listen serve HTTPS (HTTP/2 and HTTP/1.1);
	// nil serves plain HTTP there (behind a TLS terminator of yours).
	TLS *DoorTLS
	// HSTS, if positive, adds Strict-Transport-Security with this max-age
	// to every answer over TLS.
	HSTS time.Duration
	// Default is the deployment that answers a Host no route names; ""
	// answers 404.
	Default string
}

// DoorTLS is where the front door's certificates come from: files, ACME,
// or both (the file's certificate for the names it covers, ACME for the
// others).
type DoorTLS struct {
	// CertFile and KeyFile are PEM files (the chain first), read again at
	// each Apply, so that a reload (SIGHUP) picks up a renewed certificate.
	CertFile, KeyFile string
	ACME              *ACME
}

// ACME gets certificates from an ACME CA (Let's Encrypt by default) for
// every exact host of the routes, with HTTP-01 (on HTTPListen) and
// TLS-ALPN-01 (on Listen) challenges.
type ACME struct {
	Email        string
	DirectoryURL string // "" is Let's Encrypt's production directory
	CacheDir     string // where accounts and certificates are kept
	// RenewBefore is how long before expiry a certificate is renewed
	// (0: autocert's default, 30 days).
	RenewBefore time.Duration
	// HTTPClient talks to the CA; nil is http.DefaultClient. Tests set one
	// that trusts their CA.
	HTTPClient *http.Client
}

// front is the open front door: its listeners, and what they read.
type front struct {
	cfg   Door
	main  *listener // Listen
	plain *listener // HTTPListen, nil if none
	acme  *autocert.Manager
	// challenges answers HTTP-01; making it is also what tells the
	// manager to offer HTTP-01 besides TLS-ALPN-01.
	challenges http.Handler
	cert       *tls.Certificate // from the files, nil if none
	leaf       []string         // the names the file's certificate covers
}

// table routes a request to a site by Host and path.
type table struct {
	exact map[string][]entry // host → routes, longest prefix first
	wild  map[string][]entry // "example.com" for "*.example.com"
	def   *site
	hosts map[string]bool // the exact hosts: ACME's host policy
}

type entry struct {
	prefix string // "" or "/x" (no trailing slash)
	s      *site
}

func (t *table) lookup(r *http.Request) *site {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	if s := match(t.exact[host], r.URL.Path); s != nil {
		return s
	}
	if _, parent, ok := strings.Cut(host, "."); ok {
		if s := match(t.wild[parent], r.URL.Path); s != nil {
			return s
		}
	}
	return t.def
}

func match(entries []entry, path string) *site {
	for _, e := range entries {
		if e.prefix == "" || path == e.prefix || strings.HasPrefix(path, e.prefix+"/") {
			return e.s
		}
	}
	return nil
}

// CheckHost says what is wrong with a front door host, nil if nothing:
// a DNS name, or "*." and one, in lower case.
func CheckHost(h string) error {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		return errors.New("empty")
	case strings.ToLower(h) != h:
		return errors.New("want lower case")
	case strings.Contains(name, "*"):
		return errors.New("a wildcard is only allowed as the whole first label (*.example.com)")
	case strings.ContainsAny(name, ":/ \t") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
		return errors.New("want a host name such as app.example.com, without port or path")
	case len(name) > 253:
		return errors.New("longer than 253 characters")
	}
	return nil
}

// CheckPathPrefix says what is wrong with a route's path prefix.
func CheckPathPrefix(p string) error {
	switch {
	case p == "":
		return nil
	case !strings.HasPrefix(p, "/"):
		return errors.New("want a path that starts with /, e.g. /api")
	case strings.ContainsAny(p, "?#*"):
		return errors.New("want a plain path: no query, fragment or wildcard")
	}
	return nil
}

// cleanPrefix makes "/", "/api/" and "/api" comparable: "" and "/api".
func cleanPrefix(p string) string { return strings.TrimRight(p, "/") }

// buildTable routes the routes without a Listen of their own.
func buildTable(want []Route, sites map[string]*site, def string) (*table, error) {
	t := &table{exact: map[string][]entry{}, wild: map[string][]entry{}, hosts: map[string]bool{}}
	owner := map[string]string{} // host + prefix → deployment
	for _, r := range want {
		if r.Listen != "" {
			continue
		}
		for _, h := range r.Hosts {
			key := h + cleanPrefix(r.PathPrefix)
			if o, dup := owner[key]; dup {
				return nil, fmt.Errorf("proxy for %s: host %s with path prefix %q is also %s's", r.Deployment, h, r.PathPrefix, o)
			}
			owner[key] = r.Deployment
			e := entry{prefix: cleanPrefix(r.PathPrefix), s: sites[r.Deployment]}
			if parent, ok := strings.CutPrefix(h, "*."); ok {
				t.wild[parent] = append(t.wild[parent], e)
			} else {
				t.exact[h] = append(t.exact[h], e)
				t.hosts[h] = true
			}
		}
	}
	for _, m := range []map[string][]entry{t.exact, t.wild} {
		for _, es := range m {
			slices.SortFunc(es, func(a, b entry) int { return len(b.prefix) - len(a.prefix) })
		}
	}
	if def != "" {
		t.def = sites[def]
		if t.def == nil {
			return nil, fmt.Errorf("front door: default %s is not a proxied deployment", def)
		}
	}
	return t, nil
}

// serveFront is the handler of the front door's main listener.
func (p *Proxy) serveFront(l *listener, w http.ResponseWriter, r *http.Request) {
	f := p.front.Load()
	if f == nil {
		answer(w, http.StatusServiceUnavailable, "liftoff: the front door is closing")
		return
	}
	if r.TLS != nil && f.cfg.HSTS > 0 {
		w.Header().Set(hsts, "max-age="+strconv.FormatInt(int64(f.cfg.HSTS/time.Second), 10))
	}
	s := p.table.Load().lookup(r)
	if s == nil {
		p.met.unrouted.Inc()
		answer(w, http.StatusNotFound, "liftoff: no deployment here")
		return
	}
	s.serve(l, w, r)
}

// hsts is the header of HTTP Strict Transport Security (canonical form).
const hsts = "Strict-Transport-Security"

// acmeChallenge is the path of HTTP-01 challenges.
const acmeChallenge = "/.well-known/acme-challenge/"

// servePlain is the handler of HTTPListen: ACME's challenges, and a
// redirect to https for the rest.
func (p *Proxy) servePlain(w http.ResponseWriter, r *http.Request) {
	f := p.front.Load()
	if f == nil {
		answer(w, http.StatusServiceUnavailable, "liftoff: the front door is closing")
		return
	}
	if f.challenges != nil && strings.HasPrefix(r.URL.Path, acmeChallenge) {
		f.challenges.ServeHTTP(w, r)
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if CheckHost(strings.ToLower(host)) != nil {
		answer(w, http.StatusBadRequest, "liftoff: a request without a valid Host")
		return
	}
	if port := f.httpsPort(); port != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	code := http.StatusPermanentRedirect // keeps the method and body
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
	w.WriteHeader(code)
}

// httpsPort is the port HTTPListen redirects to: RedirectPort, else the
// port Listen asks for (as clients reach it without a port mapping), else,
// for port 0, the one it got.
func (f *front) httpsPort() int {
	if f.cfg.RedirectPort != 0 {
		return f.cfg.RedirectPort
	}
	if _, port, err := net.SplitHostPort(f.cfg.Listen); err == nil && !ephemeral(f.cfg.Listen) {
		if n, err := net.LookupPort("tcp", port); err == nil {
			return n
		}
	}
	return f.main.ln.Addr().(*net.TCPAddr).Port
}

// getCertificate picks the front door's certificate for a TLS handshake:
// the file's if it covers the name, else ACME's.
func (p *Proxy) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	f := p.front.Load()
	if f == nil {
		return nil, errors.New("front door closed")
	}
	if f.cert != nil && (f.acme == nil || covers(f.leaf, hello.ServerName)) {
		return f.cert, nil
	}
	if f.acme != nil {
		return f.acme.GetCertificate(hello)
	}
	return nil, errors.New("no certificate")
}

// covers tells whether one of names (a certificate's DNS names) covers
// host.
func covers(names []string, host string) bool {
	host = strings.ToLower(host)
	for _, n := range names {
		n = strings.ToLower(n)
		if n == host {
			return true
		}
		if parent, ok := strings.CutPrefix(n, "*."); ok {
			if _, hp, ok := strings.Cut(host, "."); ok && hp == parent {
				return true
			}
		}
	}
	return false
}

// loadFront prepares the front door cfg asks for: its certificate read,
// its ACME manager (the previous one, if ACME's settings are the same).
// It opens nothing.
func (p *Proxy) loadFront(cfg Door, prev *front) (*front, error) {
	f := &front{cfg: cfg}
	if cfg.TLS == nil {
		return f, nil
	}
	if cfg.TLS.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("front door: certificate %s and key %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
		}
		f.cert = &c
		if c.Leaf != nil {
			f.leaf = c.Leaf.DNSNames
		}
	}
	if a := cfg.TLS.ACME; a != nil {
		if prev != nil && prev.acme != nil && prev.cfg.TLS != nil && sameACME(prev.cfg.TLS.ACME, a) {
			f.acme, f.challenges = prev.acme, prev.challenges
		} else {
			f.acme = &autocert.Manager{
				Prompt:      autocert.AcceptTOS,
				Email:       a.Email,
				Cache:       autocert.DirCache(a.CacheDir),
				RenewBefore: a.RenewBefore,
				// The hosts the routes name now, read at each request.
				// The HTTP-01 handler passes the Host header as it
				// came, with its port if not 80.
				HostPolicy: func(_ context.Context, host string) error {
					if h, _, err := net.SplitHostPort(host); err == nil {
						host = h
					}
					if t := p.table.Load(); t != nil && t.hosts[strings.ToLower(host)] {
						return nil
					}
					return fmt.Errorf("front door: no route names host %q", host)
				},
				Client: &acme.Client{DirectoryURL: a.DirectoryURL, HTTPClient: a.HTTPClient},
			}
			f.challenges = f.acme.HTTPHandler(nil)
		}
	}
	return f, nil
}

func sameACME(a, b *ACME) bool {
	return a != nil && b != nil && a.Email == b.Email && a.DirectoryURL == b.DirectoryURL &&
		a.CacheDir == b.CacheDir && a.RenewBefore == b.RenewBefore && a.HTTPClient == b.HTTPClient
}

// tlsConfig is the front door listener's: certificates are picked at each
// handshake from what the last Apply loaded.
func (p *Proxy) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: p.getCertificate,
		NextProtos:     []string{"h2", "http/1.1", acme.ALPNProto},
	}
}

// DoorAddr returns the address the front door listens on, nil if none;
// HTTPAddr that of its plain HTTP listener.
func (p *Proxy) DoorAddr() net.Addr {
	if f := p.front.Load(); f != nil && f.main != nil {
		return f.main.ln.Addr()
	}
	return nil
}

// HTTPAddr returns the address of the front door's plain HTTP listener,
// nil if none.
func (p *Proxy) HTTPAddr() net.Addr {
	if f := p.front.Load(); f != nil && f.plain != nil {
		return f.plain.ln.Addr()
	}
	return nil
}

// listeners returns f's open listeners.
func (f *front) listeners() []*listener {
	var ls []*listener
	if f == nil {
		return nil
	}
	for _, l := range []*listener{f.main, f.plain} {
		if l != nil {
			ls = append(ls, l)
		}
	}
	return ls
}
