package daemon

import (
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/proxy"
)

// proxyRoutes are the routes the config asks for: one per deployment with
// a proxy, on its own listen or on the shared front door by hosts.
func proxyRoutes(cfg *deployments.Config) []proxy.Route {
	var routes []proxy.Route
	for _, d := range cfg.ProxyRoutes() {
		x := d.Proxy
		maxBody := x.MaxBodyBytes
		if maxBody < 0 {
			maxBody = 0 // -1 in the file: no limit
		}
		routes = append(routes, proxy.Route{
			Deployment:     d.Name,
			Listen:         x.Listen,
			Hosts:          x.Hosts,
			PathPrefix:     x.PathPrefix,
			DrainTimeout:   x.DrainTimeout,
			WaitTimeout:    x.WaitTimeout,
			MaxBody:        maxBody,
			TrustForwarded: x.TrustForwarded,
		})
	}
	return routes
}

// frontDoor is the shared front door the config asks for, the zero Door
// if none.
func frontDoor(cfg *deployments.Config) proxy.Door {
	f := cfg.FrontDoor
	if f == nil {
		return proxy.Door{}
	}
	d := proxy.Door{Listen: f.Listen, HTTPListen: f.HTTPListen, RedirectPort: f.RedirectPort, HSTS: f.HSTS, Default: f.Default}
	if t := f.TLS; t != nil {
		d.TLS = &proxy.DoorTLS{CertFile: t.CertFile, KeyFile: t.KeyFile}
		if a := t.ACME; a != nil {
			d.TLS.ACME = &proxy.ACME{Email: a.Email, DirectoryURL: a.DirectoryURL, CacheDir: a.CacheDir}
		}
	}
	return d
}
