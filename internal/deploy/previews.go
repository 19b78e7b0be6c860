package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Previews: a push of a tag a deployment's previews rule matches deploys
// deployments.Deployment.Preview, a copy of the deployment named
// "<deployment>-<tag>" with a host of its own on the front door. It goes
// through the same queue, steps, journal and repair as any deploy (its
// queue is its own, so it never waits for, nor touches, the deployment's
// own container); what is particular to previews is here:
//
//   - the engine keeps the previews that run (Previews), and tells the
//     daemon when the set changes (Options.OnPreviews) so that the front
//     door routes each preview's host; a preview is tracked from the
//     moment its first deploy starts, so that its route exists before
//     the front door switches to its container;
//   - each has a timer: TTL after its last push it is removed; starting
//     one more than Max removes the least recently pushed;
//   - RemovePreview removes one (the API), in its queue: never beside a
//     deploy of it;
//   - nothing is stored but the containers themselves, labelled
//     LabelPreview (the deployment) and LabelPushed (when the push that
//     made it was deployed): Reconcile (adoptPreviews) repairs each preview
//     it finds from the journal as any deployment, then tracks the one
//     that runs under its name and removes what is left (a crash between
//     a create and the route leaves nothing for long).

// Labels of a preview's containers.
const (
	LabelPreview = "liftoff.preview"        // the deployment it previews
	LabelPushed  = "liftoff.preview.pushed" // RFC 3339: when its push was deployed
)

// ErrNoPreview is returned by RemovePreview for a preview that does not run.
var ErrNoPreview = errors.New("no such preview")

// ErrBusy is returned by RemovePreview while a deploy of the preview runs.
var ErrBusy = errors.New("a deploy of it runs now")

// Preview is one running preview, as the API shows it.
type Preview struct {
	Name       string    // its name and its container's: "web-pr-12"
	Deployment string    // the deployment it previews
	Tag        string    // the tag pushed
	Host       string    // its Host on the front door
	Pushed     time.Time // when its last push was deployed
	Expires    time.Time // Pushed + ttl
}

// previewSet is the engine's running previews; its zero value is empty.
type previewSet struct {
	mu sync.Mutex
	m  map[string]*tracked
}

type tracked struct {
	Preview
	engine string
	timer  *time.Timer
}

// Previews returns the previews of deployment ("" for all), oldest push
// first.
func (e *Engine) Previews(deployment string) []Preview {
	s := &e.previews
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Preview
	for _, t := range s.m {
		if deployment == "" || t.Deployment == deployment {
			out = append(out, t.Preview)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Pushed.Equal(out[j].Pushed) {
			return out[i].Pushed.Before(out[j].Pushed)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// track records that preview d runs (or is about to), pushed at pushed,
// arms its expiry, and, if its deployment now has more than max
// previews, removes the least recently pushed others.
func (e *Engine) track(d *deployments.Deployment, pushed time.Time) {
	parent := e.opts.Config().Deployment(d.PreviewOf)
	ttl, max := time.Duration(0), 0
	if parent != nil && parent.Previews != nil {
		ttl, max = parent.Previews.TTL, parent.Previews.Max
	}
	s := &e.previews
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]*tracked{}
	}
	t, known := s.m[d.Name]
	if !known {
		t = &tracked{Preview: Preview{Name: d.Name, Deployment: d.PreviewOf, Tag: d.PreviewTag}}
		s.m[d.Name] = t
	}
	t.engine = engineName(d)
	if len(d.Proxy.Hosts) > 0 {
		t.Host = d.Proxy.Hosts[0]
	}
	if pushed.After(t.Pushed) {
		t.Pushed = pushed
	}
	if ttl > 0 {
		t.Expires = t.Pushed.Add(ttl)
		if t.timer != nil {
			t.timer.Stop()
		}
		name := d.Name
		t.timer = time.AfterFunc(max0(t.Expires.Sub(e.opts.Now())), func() { e.expirePreview(name) })
	}
	var evict []string
	if !known && max > 0 {
		var mine []*tracked
		for _, o := range s.m {
			if o.Deployment == d.PreviewOf && o.Name != d.Name {
				mine = append(mine, o)
			}
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].Pushed.Before(mine[j].Pushed) })
		for i := 0; len(mine)-i >= max; i++ {
			evict = append(evict, mine[i].Name)
		}
	}
	n := e.countPreviewsLocked(d.PreviewOf)
	s.mu.Unlock()
	e.metrics.previews.WithLabelValues(d.PreviewOf).Set(float64(n))
	if !known {
		e.log.Info().Str("deployment", d.PreviewOf).Str("preview", d.Name).Str("host", t.Host).Msg("preview: routed on the front door")
		e.previewsChanged()
	}
	for _, name := range evict {
		go e.removeLater(name, "the oldest of more than previews.max")
	}
}

func max0(d time.Duration) time.Duration { return max(d, 0) }

func (e *Engine) countPreviewsLocked(deployment string) int {
	n := 0
	for _, t := range e.previews.m {
		if t.Deployment == deployment {
			n++
		}
	}
	return n
}

// untrack forgets preview name: its route goes with the next OnPreviews.
func (e *Engine) untrack(name string) {
	s := &e.previews
	s.mu.Lock()
	t, ok := s.m[name]
	if ok {
		if t.timer != nil {
			t.timer.Stop()
		}
		delete(s.m, name)
	}
	n := 0
	if ok {
		n = e.countPreviewsLocked(t.Deployment)
	}
	s.mu.Unlock()
	if ok {
		e.metrics.previews.WithLabelValues(t.Deployment).Set(float64(n))
		e.clearDown(name) // a preview gone is down no more
		if e.front != nil {
			e.front.mu.Lock()
			delete(e.front.served, name)
			e.front.mu.Unlock()
		}
		e.previewsChanged()
	}
}

func (e *Engine) previewsChanged() {
	if e.opts.OnPreviews != nil {
		e.opts.OnPreviews()
	}
}

// expirePreview is a preview's timer: TTL passed since its last push.
func (e *Engine) expirePreview(name string) {
	e.previews.mu.Lock()
	t, ok := e.previews.m[name]
	late := ok && e.opts.Now().Before(t.Expires) // pushed again meanwhile
	e.previews.mu.Unlock()
	if !ok || late {
		return
	}
	e.removeLater(name, "no push for previews.ttl")
}

// removeLater removes a preview for the engine's own reasons (ttl, max),
// trying again while a deploy of it runs.
func (e *Engine) removeLater(name, why string) {
	for {
		err := e.removePreview(e.ctx, name, why)
		if !errors.Is(err, ErrBusy) {
			if err != nil && !errors.Is(err, ErrNoPreview) && !errors.Is(err, ErrClosed) {
				e.log.Error().Err(err).Str("preview", name).Msg("preview: could not remove it; the next start removes it")
			}
			return
		}
		select {
		case <-time.After(2 * time.Second):
		case <-e.closing:
			return
		}
	}
}

// RemovePreview removes the preview of deployment for tag: its route, then
// its containers. ErrNoPreview if it does not run, ErrBusy while a deploy
// of it runs.
func (e *Engine) RemovePreview(ctx context.Context, deployment, tag string) error {
	name := deployment + "-" + tag
	e.previews.mu.Lock()
	t, ok := e.previews.m[name]
	e.previews.mu.Unlock()
	if !ok || t.Deployment != deployment {
		return ErrNoPreview
	}
	return e.removePreview(ctx, name, "removed through the API")
}

// RemovePreviewLater starts removing the preview of deployment for tag,
// for why (a registry's delete of its tag), and tells whether it runs. It
// never waits for the removal: the removal runs in the preview's queue,
// after a deploy of it that runs now. Safe to repeat; a preview that does
// not run is no error (false). A crash before the removal leaves the
// preview to its ttl, or to polling that no longer finds its tag.
func (e *Engine) RemovePreviewLater(deployment, tag, why string) bool {
	name := deployment + "-" + tag
	e.previews.mu.Lock()
	t, ok := e.previews.m[name]
	e.previews.mu.Unlock()
	if !ok || t.Deployment != deployment {
		return false
	}
	go e.removeLater(name, why)
	return true
}

// removePreview runs the removal of preview name in its queue and waits
// for it.
func (e *Engine) removePreview(ctx context.Context, name, why string) error {
	done := make(chan error, 1)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if _, busy := e.queues[name]; busy {
		e.mu.Unlock()
		return ErrBusy
	}
	e.startLocked(job{kind: jobRemove, deployment: name, done: done, why: why})
	e.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runRemove is a removal job: the route first (new requests get the
// front door's 404), then every container of the preview.
func (e *Engine) runRemove(name, why string) error {
	e.previews.mu.Lock()
	t, ok := e.previews.m[name]
	engine := deployments.LocalEngine
	if ok {
		engine = t.engine
	}
	e.previews.mu.Unlock()
	if !ok {
		return ErrNoPreview
	}
	rt := e.engines()[engine]
	if rt == nil {
		return fmt.Errorf("preview %s: engine %q is not open", name, engine)
	}
	e.untrack(name)
	ctx, cancel := context.WithTimeout(e.ctx, 2*e.opts.OpTimeout)
	defer cancel()
	err := e.removeContainers(ctx, rt, name)
	log := e.log.With().Str("deployment", t.Deployment).Str("preview", name).Logger()
	if err != nil {
		return fmt.Errorf("preview %s: %w", name, err)
	}
	log.Info().Str("why", why).Msg("preview: removed")
	return nil
}

// removeContainers removes every container labelled as preview name.
func (e *Engine) removeContainers(ctx context.Context, rt Runtime, name string) error {
	l, ok := rt.(lister)
	if !ok { // the container under its name only
		c, err := rt.Inspect(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return err
		case c.Labels[LabelPreview] == "":
			return nil
		}
		if c.Running {
			_ = rt.Stop(ctx, c.ID, 10*time.Second)
		}
		return rt.Remove(ctx, c.ID)
	}
	cs, err := l.List(ctx, map[string]string{LabelManaged: "true", LabelDeployment: name})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		if c.Labels[LabelPreview] == "" {
			continue // never a deployment's own container
		}
		if c.Running {
			_ = rt.Stop(ctx, c.ID, 10*time.Second)
		}
		errs = append(errs, rt.Remove(ctx, c.ID))
	}
	return errors.Join(errs...)
}

// adoptPreviews is Reconcile's part for previews: every preview with a
// container on an engine reconciled is repaired from the journal in its
// queue, then tracked (routed, its ttl re-armed from LabelPushed) if its
// container runs under its name and the config still has it; anything
// else of it is removed.
func (e *Engine) adoptPreviews(ctx context.Context, cfg *deployments.Config, mine func(string) bool) error {
	var errs []error
	for engine, rt := range e.engines() {
		if !mine(engine) {
			continue
		}
		l, ok := rt.(lister)
		if !ok {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
		cs, err := l.List(lctx, map[string]string{LabelManaged: "true", LabelPreview: ""})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("previews on engine %s: %w", engine, err))
			continue
		}
		// Only previews of this config's deployments on this engine are
		// its own: another liftoff may share the engine, and a removed
		// deployment's containers are left alone, as strays are.
		names := map[string]bool{}
		for _, c := range cs {
			if p := cfg.Deployment(c.Labels[LabelPreview]); p != nil && p.PreviewOf == "" && engineName(p) == engine &&
				strings.HasPrefix(c.Labels[LabelDeployment], p.Name+"-") {
				names[c.Labels[LabelDeployment]] = true
			}
		}
		for _, name := range slices.Sorted(mapsKeys(names)) {
			errs = append(errs, e.adoptPreview(ctx, cfg, engine, rt, name))
		}
	}
	return errors.Join(errs...)
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (e *Engine) adoptPreview(ctx context.Context, cfg *deployments.Config, engine string, rt Runtime, name string) error {
	log := e.log.With().Str("preview", name).Logger()
	d := cfg.Deployment(name)
	if d == nil || d.PreviewOf == "" || engineName(d) != engine {
		log.Info().Msg("preview: its deployment no longer takes its tag as a preview; its containers are removed")
		return e.removeContainers(ctx, rt, name)
	}
	done := make(chan error, 1)
	if e.enqueueRepair(name, done) {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, ErrDown) {
				log.Warn().Err(err).Msg("preview: repair failed")
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	} else if e.Busy(name) {
		return nil // a deploy of it runs: it tracks it
	}
	c, err := rt.Inspect(ctx, name)
	if err != nil || !c.Running || c.Labels[LabelPreview] != d.PreviewOf || e.isDown(name) {
		log.Info().Msg("preview: no container of it runs and passes its gate after the repair; what is left of it is removed")
		e.clearDown(name)
		return e.removeContainers(ctx, rt, name)
	}
	pushed, perr := time.Parse(time.RFC3339Nano, c.Labels[LabelPushed])
	if perr != nil {
		pushed = c.StartedAt
	}
	e.track(d, pushed)
	e.serveCurrent(ctx, d)
	log.Info().Time("pushed", pushed).Msg("preview: adopted")
	return nil
}

// previewStarts tracks a preview as its deploy starts, so that the front
// door routes its host before the swap switches to its container.
func (a *attempt) previewStarts() {
	if a.d.PreviewOf == "" || a.d.Proxy == nil {
		return
	}
	a.e.previews.mu.Lock()
	_, known := a.e.previews.m[a.d.Name]
	a.e.previews.mu.Unlock()
	if !known {
		a.e.track(a.d, a.res.Started)
		a.newPreview = true
	}
}

// previewEnds settles the preview after its deploy: a push deployed (or
// already running) resets its ttl; a first deploy that left nothing
// running forgets it.
func (a *attempt) previewEnds(o Outcome) {
	if a.d == nil || a.d.PreviewOf == "" || a.d.Proxy == nil {
		return
	}
	switch {
	case o == Succeeded || o == Unchanged:
		a.e.track(a.d, a.res.Started)
	case a.e.isDown(a.d.Name):
		// No container of it passes its gate: a broken preview must not
		// leave liftoff listed down (/readyz); it goes.
		go a.e.removeLater(a.d.Name, "no container of it passes its health gate")
	case a.newPreview && !a.unrepaired && a.rt == nil:
		a.e.untrack(a.d.Name)
	case a.newPreview && !a.unrepaired:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), a.e.opts.OpTimeout)
		defer cancel()
		if c, err := a.rt.Inspect(ctx, a.name); err == nil && c.Running {
			return
		}
		a.e.untrack(a.d.Name)
		a.log.Info().Msg("preview: its first deploy left nothing running; its route is removed")
	}
}
