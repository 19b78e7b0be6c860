package daemon

import (
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/proxy"
)

// applyProxy makes the front doors route what cfg asks for and the
// previews that run: at start, at each reload, and whenever the engine
// starts or stops tracking a preview (deploy.Options.OnPreviews).
func (a *Daemon) applyProxy(cfg *deployments.Config) error {
	a.proxyMu.Lock()
	defer a.proxyMu.Unlock()
	return a.proxy.Apply(frontDoor(cfg), append(proxyRoutes(cfg), a.previewRoutes(cfg)...))
}

// previewsChanged is deploy.Options.OnPreviews.
func (a *Daemon) previewsChanged() {
	if err := a.applyProxy(a.cfg.Load()); err != nil {
		a.log.Error().Err(err).Msg("previews: the front door could not route them")
	}
}

// previewRoutes are the routes of the previews that run: each its host on
// the front door, with the settings of its deployment's proxy. A host
// that a deployment or an earlier preview has already is skipped (logged),
// so that it never fails the routes of the others.
func (a *Daemon) previewRoutes(cfg *deployments.Config) []proxy.Route {
	if a.engine == nil || cfg.FrontDoor == nil {
		return nil
	}
	taken := map[string]bool{}
	for _, r := range proxyRoutes(cfg) {
		for _, h := range r.Hosts {
			taken[h] = true
		}
	}
	var routes []proxy.Route
	for _, p := range a.engine.Previews("") {
		d := cfg.Deployment(p.Name)
		if d == nil || d.Proxy == nil || len(d.Proxy.Hosts) == 0 {
			continue // its removal follows
		}
		h := d.Proxy.Hosts[0]
		if taken[h] {
			a.log.Warn().Str("preview", p.Name).Str("host", h).Msg("previews: the host is another route's already; the preview is not routed")
			continue
		}
		taken[h] = true
		x := d.Proxy
		maxBody := x.MaxBodyBytes
		if maxBody < 0 {
			maxBody = 0
		}
		routes = append(routes, proxy.Route{
			Deployment:     d.Name,
			Hosts:          []string{h},
			DrainTimeout:   x.DrainTimeout,
			WaitTimeout:    x.WaitTimeout,
			MaxBody:        maxBody,
			TrustForwarded: x.TrustForwarded,
		})
	}
	return routes
}
