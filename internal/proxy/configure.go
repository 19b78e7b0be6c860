package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
)

// Configure makes the set of routes exactly routes: it opens listeners for
// new routes, closes those no longer named (gracefully: their requests in
// flight have up to the route's DrainTimeout to finish), moves a route whose
// Listen changed, and updates the settings of the others in place. Upstreams
// survive for the deployments still routed, including one set by Switch
// before its route existed.
//
// It is all or nothing: if a listener cannot be opened, the error names the
// deployment and the address, and nothing changes. An address (as written,
// with a port other than 0) that a removed or moved route leaves is handed
// over to the route that now names it, open all along, so that two routes
// can swap addresses and a renamed deployment keeps its own. Moving a route
// to another spelling of its own address (":8001" to "0.0.0.0:8001") fails,
// as the old listener still holds it.
func (p *Proxy) Configure(routes []Route) error {
	return p.Apply(Door{}, routes)
}

// Apply is Configure with a front door: door's listeners are opened, kept
// or moved as a route's are, its certificate files are read again, and
// the routes without a Listen of their own are routed through it. It is
// all or nothing too: a certificate that cannot be read, a host two routes
// claim, an address that cannot be opened, and nothing changes. The zero
// Door closes the front door.
func (p *Proxy) Apply(door Door, routes []Route) error {
	want, err := normalize(routes, door)
	if err != nil {
		return err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	prev := p.front.Load()
	var nf *front
	if door.Listen != "" {
		if nf, err = p.loadFront(door, prev); err != nil {
			return err
		}
	}

	// Which listener each route gets: its own if its address is the same;
	// else the one of that address that a removed or moved route leaves
	// (not for port 0: each of those is an address of its own); else a
	// new one. Open the new ones first: until all are open, nothing
	// changes.
	doors := make([]*listener, len(want))
	taken := make(map[*listener]bool, len(want))
	for i, r := range want {
		if s := p.sites[r.Deployment]; s != nil && s.door != nil && s.door.addr == r.Listen {
			doors[i] = s.door
			taken[s.door] = true
		}
	}
	for i, r := range want {
		if doors[i] != nil || ephemeral(r.Listen) {
			continue
		}
		for l := range p.doors {
			if l.addr == r.Listen && !taken[l] {
				doors[i] = l
				taken[l] = true
				break
			}
		}
	}
	var opened []*listener
	fail := func(err error) error {
		for _, l := range opened {
			l.ln.Close()
		}
		return err
	}
	for i, r := range want {
		if doors[i] != nil || r.Listen == "" {
			continue
		}
		ln, err := net.Listen("tcp", r.Listen)
		if err != nil {
			return fail(fmt.Errorf("proxy for %s: listen on %s: %w", r.Deployment, r.Listen, err))
		}
		doors[i] = p.newListener(r.Listen, ln, kindRoute, nil)
		opened = append(opened, doors[i])
	}
	// The front door's listeners: kept when their address (port 0
	// included: there is one front door) and whether they speak TLS are
	// the same, else opened anew.
	var keep map[*listener]bool
	if nf != nil {
		keep = map[*listener]bool{}
		reuse := func(l *listener, addr string, tlsOn bool) *listener {
			if l != nil && l.addr == addr && (l.srv.TLSConfig != nil) == tlsOn {
				keep[l] = true
				return l
			}
			return nil
		}
		var tc *tls.Config
		if door.TLS != nil {
			tc = p.tlsConfig()
		}
		if prev != nil {
			nf.main = reuse(prev.main, door.Listen, tc != nil)
			if door.HTTPListen != "" {
				nf.plain = reuse(prev.plain, door.HTTPListen, false)
			}
		}
		for _, x := range []struct {
			to   **listener
			addr string
			kind int
			tc   *tls.Config
		}{{&nf.main, door.Listen, kindFront, tc}, {&nf.plain, door.HTTPListen, kindPlain, nil}} {
			if *x.to != nil || x.addr == "" {
				continue
			}
			ln, err := net.Listen("tcp", x.addr)
			if err != nil {
				return fail(fmt.Errorf("front door: listen on %s: %w", x.addr, err))
			}
			*x.to = p.newListener(x.addr, ln, x.kind, x.tc)
			opened = append(opened, *x.to)
		}
	}
	// The sites of the routes, new ones not yet stored: the table
	// points at them, and building it may still fail.
	sites := make(map[string]*site, len(want))
	for i := range want {
		if s := p.sites[want[i].Deployment]; s != nil {
			sites[want[i].Deployment] = s
		} else {
			sites[want[i].Deployment] = newSite(p, want[i].Deployment)
		}
	}
	tbl, err := buildTable(want, sites, door.Default)
	if err != nil {
		return fail(err)
	}

	routed := make(map[string]bool, len(want))
	for i := range want {
		r := &want[i]
		s := sites[r.Deployment]
		p.sites[r.Deployment] = s
		if s.met == nil {
			s.met = p.met.site(r.Deployment)
		}
		s.route.Store(r)
		s.door = doors[i]
		if doors[i] != nil {
			doors[i].site.Store(s)
		}
		routed[r.Deployment] = true
	}
	p.table.Store(tbl)
	p.front.Store(nf)
	for l := range p.doors {
		if !taken[l] {
			p.retire(l)
		}
	}
	for _, l := range prev.listeners() {
		if !keep[l] {
			p.retire(l)
		}
	}
	for name, s := range p.sites {
		if !routed[name] {
			s.drop()
			delete(p.sites, name)
			p.met.forget(name)
		}
	}
	p.doors = make(map[*listener]bool, len(doors))
	for _, l := range doors {
		if l != nil {
			p.doors[l] = true
		}
	}
	for _, l := range opened {
		l.start(p)
	}
	return nil
}

// ephemeral tells whether addr asks for a port of the system's choosing.
func ephemeral(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err != nil || port == "" || port == "0"
}

// normalize checks routes and door, and fills in the routes' defaults.
func normalize(routes []Route, door Door) ([]Route, error) {
	if door.Listen == "" && (door.HTTPListen != "" || door.TLS != nil || door.Default != "") {
		return nil, fmt.Errorf("front door: no listen address")
	}
	if door.HTTPListen != "" && door.TLS == nil {
		return nil, fmt.Errorf("front door: http_listen redirects to https, and the front door has no tls")
	}
	if door.RedirectPort < 0 || door.RedirectPort > 65535 || (door.RedirectPort != 0 && door.HTTPListen == "") {
		return nil, fmt.Errorf("front door: redirect port %d: want 1 to 65535, with an http listener", door.RedirectPort)
	}
	if door.TLS != nil && door.TLS.CertFile == "" && door.TLS.ACME == nil {
		return nil, fmt.Errorf("front door: tls needs certificate files or acme")
	}
	if door.TLS != nil && (door.TLS.CertFile == "") != (door.TLS.KeyFile == "") {
		return nil, fmt.Errorf("front door: tls needs both a certificate file and a key file")
	}
	want := make([]Route, len(routes))
	names := make(map[string]bool, len(routes))
	addrs := make(map[string]string, len(routes))
	for i, r := range routes {
		switch {
		case r.Deployment == "":
			return nil, fmt.Errorf("proxy route %d: no deployment", i)
		case names[r.Deployment]:
			return nil, fmt.Errorf("proxy for %s: the deployment has two routes", r.Deployment)
		case r.Listen == "" && len(r.Hosts) == 0:
			return nil, fmt.Errorf("proxy for %s: no listen address and no hosts", r.Deployment)
		case r.Listen != "" && (len(r.Hosts) > 0 || r.PathPrefix != ""):
			return nil, fmt.Errorf("proxy for %s: a listen address of its own, or hosts and a path prefix on the front door, not both", r.Deployment)
		case r.Listen == "" && door.Listen == "":
			return nil, fmt.Errorf("proxy for %s: hosts need a front door, and there is none", r.Deployment)
		case addrs[r.Listen] != "" && !ephemeral(r.Listen):
			return nil, fmt.Errorf("proxy for %s: listen on %s: already the address of %s", r.Deployment, r.Listen, addrs[r.Listen])
		case r.MaxBody < 0:
			return nil, fmt.Errorf("proxy for %s: max body %d is negative", r.Deployment, r.MaxBody)
		}
		for _, h := range r.Hosts {
			if err := CheckHost(h); err != nil {
				return nil, fmt.Errorf("proxy for %s: host %q: %w", r.Deployment, h, err)
			}
		}
		if err := CheckPathPrefix(r.PathPrefix); err != nil {
			return nil, fmt.Errorf("proxy for %s: path prefix %q: %w", r.Deployment, r.PathPrefix, err)
		}
		if r.Listen != "" && (r.Listen == door.Listen || r.Listen == door.HTTPListen) && !ephemeral(r.Listen) {
			return nil, fmt.Errorf("proxy for %s: listen on %s: already the front door's address", r.Deployment, r.Listen)
		}
		names[r.Deployment] = true
		if r.Listen != "" {
			addrs[r.Listen] = r.Deployment
		}
		if r.DrainTimeout <= 0 {
			r.DrainTimeout = DefaultDrainTimeout
		}
		if r.WaitTimeout <= 0 {
			r.WaitTimeout = DefaultWaitTimeout
		}
		want[i] = r
	}
	return want, nil
}
