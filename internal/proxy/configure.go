package proxy

import (
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
	want, err := normalize(routes)
	if err != nil {
		return err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
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
	for i, r := range want {
		if doors[i] != nil {
			continue
		}
		ln, err := net.Listen("tcp", r.Listen)
		if err != nil {
			for _, l := range opened {
				l.ln.Close()
			}
			return fmt.Errorf("proxy for %s: listen on %s: %w", r.Deployment, r.Listen, err)
		}
		doors[i] = p.newListener(r.Listen, ln)
		opened = append(opened, doors[i])
	}

	routed := make(map[string]bool, len(want))
	for i := range want {
		r := &want[i]
		s := p.sites[r.Deployment]
		if s == nil {
			s = newSite(p, r.Deployment)
			p.sites[r.Deployment] = s
		}
		if s.met == nil {
			s.met = p.met.site(r.Deployment)
		}
		s.route.Store(r)
		s.door = doors[i]
		doors[i].site.Store(s)
		routed[r.Deployment] = true
	}
	for l := range p.doors {
		if !taken[l] {
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
		p.doors[l] = true
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

// normalize checks routes and fills in their defaults.
func normalize(routes []Route) ([]Route, error) {
	want := make([]Route, len(routes))
	names := make(map[string]bool, len(routes))
	addrs := make(map[string]string, len(routes))
	for i, r := range routes {
		switch {
		case r.Deployment == "":
			return nil, fmt.Errorf("proxy route %d: no deployment", i)
		case names[r.Deployment]:
			return nil, fmt.Errorf("proxy for %s: the deployment has two routes", r.Deployment)
		case r.Listen == "":
			return nil, fmt.Errorf("proxy for %s: no listen address", r.Deployment)
		case addrs[r.Listen] != "" && !ephemeral(r.Listen):
			return nil, fmt.Errorf("proxy for %s: listen on %s: already the address of %s", r.Deployment, r.Listen, addrs[r.Listen])
		case r.MaxBody < 0:
			return nil, fmt.Errorf("proxy for %s: max body %d is negative", r.Deployment, r.MaxBody)
		}
		names[r.Deployment] = true
		addrs[r.Listen] = r.Deployment
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
