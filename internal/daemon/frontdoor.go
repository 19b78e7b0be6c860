package daemon

import (
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/proxy"
)

// proxyRoutes are the front doors the config asks for: one per deployment
// with a proxy.
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
			DrainTimeout:   x.DrainTimeout,
			WaitTimeout:    x.WaitTimeout,
			MaxBody:        maxBody,
			TrustForwarded: x.TrustForwarded,
		})
	}
	return routes
}
