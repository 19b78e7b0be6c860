package daemon

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
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

// watchPreviewTags removes a preview whose tag the registry no longer has,
// for the deployments that are polled (poll.interval, or the registry's
// poll_interval), at that interval: polling is how liftoff learns of a
// registry's state where no webhook says it. Registry delete events are
// not read.
func (a *Daemon) watchPreviewTags(ctx context.Context) {
	checked := map[string]time.Time{} // preview name → last asked
	for {
		// At least as often as the shortest poll interval of a deployment
		// with previews: a preview may start at any time.
		next := time.Minute
		cfg := a.cfg.Load()
		for _, d := range cfg.WithPreviews() {
			if every := d.PollInterval(); every > 0 {
				next = min(next, every)
			}
		}
		ps := a.engine.Previews("")
		for name := range checked {
			if !slices.ContainsFunc(ps, func(p deploy.Preview) bool { return p.Name == name }) {
				delete(checked, name)
			}
		}
		for _, p := range ps {
			d := cfg.Deployment(p.Deployment)
			every := time.Duration(0)
			if d != nil {
				every = d.PollInterval()
			}
			if every <= 0 {
				continue
			}
			if due := checked[p.Name].Add(every); time.Now().Before(due) {
				next = min(next, time.Until(due))
				continue
			}
			checked[p.Name] = time.Now()
			next = min(next, every)
			a.checkPreviewTag(ctx, cfg, d, p)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(next, 100*time.Millisecond)):
		}
	}
}

// checkPreviewTag removes preview p of d if the registry says its tag is
// gone (ErrNotFound; any other error leaves it).
func (a *Daemon) checkPreviewTag(ctx context.Context, cfg *deployments.Config, d *deployments.Deployment, p deploy.Preview) {
	repo, cred, err := cfg.PullRepo(d.Image)
	if err != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = a.docker.Resolve(rctx, repo+":"+p.Tag, deploy.AuthOf(cred))
	cancel()
	if !errors.Is(err, deploy.ErrNotFound) {
		return
	}
	log := a.log.With().Str("deployment", d.Name).Str("preview", p.Name).Logger()
	log.Info().Msg("previews: the registry no longer has the tag; the preview is removed")
	if err := a.engine.RemovePreview(ctx, d.Name, p.Tag); err != nil && !errors.Is(err, deploy.ErrNoPreview) {
		log.Warn().Err(err).Msg("previews: could not remove it; the next check tries again")
	}
}
