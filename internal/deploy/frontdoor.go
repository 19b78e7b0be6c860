package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// FrontDoor is liftoff's own proxy in front of the deployments that have
// deployments[].proxy (the proxy package implements it): it forwards each
// deployment's requests to one upstream address, its current container.
type FrontDoor interface {
	// Switch makes upstream ("host:port", "" for none: requests wait) the
	// target of the deployment's new requests, at once, and returns the
	// one it replaced.
	Switch(deployment, upstream string) (previous string)
	// Drain waits until no request the deployment's front door sent to
	// upstream is in flight, or ctx ends (its error).
	Drain(ctx context.Context, deployment, upstream string) error
}

// served is what the front door sends a deployment's requests to: the
// container and the address it was reached at.
type served struct {
	id       string
	upstream string
}

// frontDoor is the engine's side of the front door: which container each
// proxied deployment's requests go to. Only a deploy or a repair of the
// deployment (in its queue) changes the container; refresh only follows
// the container's address when the engine gave it another port (it was
// restarted).
type frontDoor struct {
	fd     FrontDoor
	mu     sync.Mutex
	served map[string]served
}

// upstreamOf is the address liftoff's proxy reaches container c of d at:
// its loopback port, or its address on its first network.
func upstreamOf(d *deployments.Deployment, c *Container) (string, error) {
	x := d.Proxy
	port := strconv.Itoa(x.Port)
	if x.Upstream == deployments.UpstreamNetwork {
		if c.IP == "" {
			return "", fmt.Errorf("container %s has no address on its networks", c.Name)
		}
		return net.JoinHostPort(c.IP, port), nil
	}
	if addr := c.Published[port+"/tcp"]; addr != "" {
		return addr, nil
	}
	if !c.Running {
		return "", fmt.Errorf("container %s does not run", c.Name)
	}
	return "", fmt.Errorf("container %s does not publish port %s on loopback: it was created before the deployment had a proxy; deploy again to replace it", c.Name, port)
}

// proxyPort is the spec's port for a proxied container: d.Proxy.Port on a
// free loopback port, for liftoff's proxy alone.
func proxyPort(d *deployments.Deployment) []string {
	if d.Proxy.Upstream == deployments.UpstreamNetwork {
		return nil
	}
	return []string{"127.0.0.1::" + strconv.Itoa(d.Proxy.Port)}
}

// serve points d's front door at container c (nil, or one that does not
// run: nowhere, and requests wait), and returns the address it replaced.
func (e *Engine) serve(d *deployments.Deployment, c *Container) (previous string, err error) {
	f := e.front
	if f == nil || d.Proxy == nil {
		return "", nil
	}
	var s served
	if c != nil && c.Running {
		if s.upstream, err = upstreamOf(d, c); err != nil {
			return "", err
		}
		s.id = c.ID
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.id == "" {
		delete(f.served, d.Name)
	} else {
		f.served[d.Name] = s
	}
	return f.fd.Switch(d.Name, s.upstream), nil
}

// serveCurrent points d's front door at the container that runs as d now.
func (e *Engine) serveCurrent(ctx context.Context, d *deployments.Deployment) {
	if e.front == nil {
		return
	}
	for _, u := range d.Units() {
		e.serveCurrent(ctx, u.Deployment) // an app: its proxied process
	}
	if d.Proxy == nil {
		return
	}
	var cp *Container
	c, err := e.inspect(ctx, d, d.ContainerName())
	switch {
	case err == nil && c.Managed() && c.Labels[LabelDeployment] == d.Name:
		cp = &c
	case err == nil, errors.Is(err, ErrNotFound):
	default:
		return // the engine did not answer: keep what is served
	}
	if _, err := e.serve(d, cp); err != nil {
		e.log.Warn().Err(err).Str("deployment", d.Name).Msg("the proxy cannot reach the deployment's container; its requests wait")
	}
}

// refreshFrontDoor follows the containers the front door serves to their
// current addresses: a container restarted (by its restart policy, or
// with the engine) may have been given another loopback port.
func (e *Engine) refreshFrontDoor(ctx context.Context) {
	f := e.front
	if f == nil {
		return
	}
	cfg := e.opts.Config()
	for _, d := range cfg.ProxyRoutes() {
		f.mu.Lock()
		s, ok := f.served[d.Name]
		f.mu.Unlock()
		if !ok {
			continue
		}
		c, err := e.inspect(ctx, d, s.id)
		if err != nil || !c.Running {
			continue
		}
		up, err := upstreamOf(d, &c)
		if err != nil || up == s.upstream {
			continue
		}
		f.mu.Lock()
		// Unless a deploy switched to another container meanwhile.
		if cur := f.served[d.Name]; cur.id == s.id {
			f.served[d.Name] = served{id: s.id, upstream: up}
			f.fd.Switch(d.Name, up)
			e.log.Info().Str("deployment", d.Name).Str("upstream", up).Msg("the proxy follows the container to its new port")
		}
		f.mu.Unlock()
	}
}

// proxySwap: the deployment has liftoff's proxy in front. The new
// container starts beside the old one as <name>.liftoff-next, reached on
// a loopback port of its own, and is gated; then
//
//  1. publish: the proxy sends every new request to it, at once;
//  2. cleanup: the old one becomes <name>.liftoff-prev and the new one
//     <name>; the proxy waits for the requests the old one still has
//     (up to proxy.drain_timeout); then the old one gets its stop signal
//     and is removed.
//
// No request is sent to a container that stops: the old one gets its stop
// signal only once the proxy has nothing in flight to it.
func (a *attempt) proxySwap() (Outcome, error) {
	rt, d, cur := a.rt, a.d, a.cur
	if a.e.front == nil {
		return Failed, errors.New("the deployment has a proxy but liftoff runs none (this is a bug)")
	}
	spec := a.spec
	a.newName = a.name
	if cur != nil {
		a.newName = a.name + NextSuffix
	}
	spec.Name = a.newName
	a.prev, a.wasRunning = cur, cur != nil && cur.Running
	if err := a.createAndStart(spec); err != nil {
		return a.rollback(err)
	}
	if err := a.gate(); err != nil {
		return a.rollback(err)
	}
	if done, o, err := a.canary(); done {
		return o, err
	}
	var upstream, old string
	if err := a.step(StepPublish, a.e.opts.OpTimeout, func(ctx context.Context) error {
		c, err := rt.Inspect(ctx, a.newID)
		if err != nil {
			return err
		}
		if upstream, err = upstreamOf(d, &c); err != nil {
			return err
		}
		a.published = true
		old, err = a.e.serve(d, &c)
		a.endCanary() // promoted: the canary's side is the current one now
		return err
	}); err != nil {
		return a.rollback(err)
	}
	a.res.ContainerID = a.newID
	a.upstream, a.oldUpstream = upstream, old
	if a.hold {
		return "", nil // a process of an app: cleaned up once all passed (processes.go)
	}
	return a.proxyCleanup()
}

// proxyCleanup retires the previous container once the front door sends
// every new request to the new one: renames, drain, stop, remove.
func (a *attempt) proxyCleanup() (Outcome, error) {
	rt, d, cur := a.rt, a.d, a.cur
	upstream, old := a.upstream, a.oldUpstream
	if cur == nil {
		return Succeeded, nil
	}
	drained := false
	err := a.step(StepCleanup, d.Proxy.DrainTimeout+a.stopTimeout()+a.e.opts.OpTimeout, func(ctx context.Context) error {
		if err := a.e.rename(ctx, rt, cur.ID, a.name+PrevSuffix); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := a.e.rename(ctx, rt, a.newID, a.name); err != nil {
			return err
		}
		if !drained && old != "" && old != upstream {
			start := time.Now()
			dctx, cancel := context.WithTimeout(ctx, d.Proxy.DrainTimeout)
			err := a.e.front.fd.Drain(dctx, d.Name, old)
			cancel()
			switch {
			case err == nil:
				a.log.Debug().Dur("took", time.Since(start)).Msg("the previous container finished its requests")
			case ctx.Err() != nil:
				return ctx.Err()
			default:
				a.log.Warn().Err(err).Dur("drain_timeout", d.Proxy.DrainTimeout).Msg("the previous container still has requests in flight at drain_timeout; stopping it")
			}
			drained = true
		}
		if err := rt.Stop(ctx, cur.ID, d.StopTimeout); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := rt.Remove(ctx, cur.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		a.unrepaired = true
		return Failed, fmt.Errorf("new container %s serves and passed its gate, but the swap did not finish (reconcile will): %w", a.newName, err)
	}
	return Succeeded, nil
}

// serveKept points d's front door at the container a repair keeps, if it
// runs; one that does not run yet is served once the repair has started it
// (runRepair, then serveCurrent).
func (e *Engine) serveKept(log zerolog.Logger, d *deployments.Deployment, keep *Container) {
	if e.front == nil || d.Proxy == nil || keep == nil || !keep.Running {
		return
	}
	if _, err := e.serve(d, keep); err != nil {
		log.Warn().Err(err).Msg("the proxy cannot reach the container the repair keeps")
	}
}

// WatchFrontDoor follows the proxied containers to their current addresses
// every interval (see refreshFrontDoor) until ctx ends.
func (e *Engine) WatchFrontDoor(ctx context.Context, interval time.Duration) {
	if e.front == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
		e.refreshFrontDoor(rctx)
		cancel()
	}
}

// ServeNew points the front door of each proxied deployment that has none
// yet (a reload gave it a proxy) at the container that runs as it, unless
// a deploy or repair of it runs (which serves its own result).
func (e *Engine) ServeNew(ctx context.Context) {
	if e.front == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	cfg := e.opts.Config()
	for _, d := range cfg.ProxyRoutes() {
		// An app's process is deployed in its app's queue.
		if app, _, _ := strings.Cut(d.Name, "/"); e.Busy(app) {
			continue
		}
		e.front.mu.Lock()
		_, ok := e.front.served[d.Name]
		e.front.mu.Unlock()
		if !ok {
			e.serveCurrent(ctx, d)
		}
	}
}
