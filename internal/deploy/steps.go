package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Images is what the deploy steps need of a runtime to find and fetch an
// image (a backup's or release's image too). None of them changes a
// container, so the steps repeat them freely.
type Images interface {
	// Resolve returns the digest ("sha256:...") that ref ("host/repo:tag")
	// points to in its registry now, without pulling. A tag or repository
	// the registry does not know is ErrNotFound; a registry that cannot be
	// reached wraps ErrUnavailable.
	Resolve(ctx context.Context, ref string, auth Auth) (string, error)
	// Pull fetches ref ("host/repo@sha256:...") fully.
	Pull(ctx context.Context, ref string, auth Auth) error
	// ImageEnv returns the ENV of a pulled image as KEY=VALUE lines.
	ImageEnv(ctx context.Context, ref string) ([]string, error)
}

// Suffixes of the containers that exist beside <name> during a swap: the
// previous one set aside by stop-first, the new one proving itself in
// start-first.
const (
	PrevSuffix = ".liftoff-prev"
	NextSuffix = ".liftoff-next"
)

// deploy is the deploy, step by step, as the README's "How a deploy goes"
// tells it. Each returns an outcome only when it ends the deploy. Nothing
// is stopped before the image is pulled, the container's spec is built and
// its environment passes the policy; once the old container is touched,
// every failure ends in a rollback.
func (a *attempt) deploy() (Outcome, error) {
	for _, step := range []func() (Outcome, error){
		a.resolve,  // 1. the tag's digest; unchanged if it runs already
		a.promote,  //    refused unless it succeeded where promote_from says
		a.pull,     // 2. image@digest, while the old container keeps serving
		a.vouch,    //    its revision labels; refused unless promote_from's revision succeeded there
		a.cooldown, // deferred while the image is younger than min_image_age
		a.prepare,  // 3. the container's spec and environment; the policy
		a.backup,   //    the environment's backup, if it has one
		a.release,  //    the deployment's release command (migrations), if any
		a.swap,     // 4-6. per strategy: swap, health gate, clean up or roll back
	} {
		if o, err := step(); o != "" || err != nil {
			return o, err
		}
	}
	return Succeeded, nil // swap always ends the deploy
}

// resolve looks up the digest the tag points to and what runs now. An
// interrupted deploy of the same deployment is finished or undone first,
// so that what runs is known. Unchanged when the digest already runs.
func (a *attempt) resolve() (Outcome, error) {
	defer a.e.markResolved(a.q)
	rt, r, d := a.rt, a.res.Request, a.d
	pullRepo, cred, err := a.cfg.PullRepo(d.Image)
	if err != nil {
		return Failed, fmt.Errorf("registry settings for %s: %w", d.Image, err)
	}
	a.pullRepo, a.auth = pullRepo, AuthOf(cred)

	digest := r.Digest
	err = a.step(StepResolve, a.e.opts.PullTimeout, func(ctx context.Context) error {
		if a.rtErr != nil {
			return a.rtErr // the first step fails: no later one runs
		}
		if _, err := a.e.repair(ctx, a.log, d, a.id); err != nil {
			return err
		}
		if digest == "" {
			var err error
			if digest, err = rt.Resolve(ctx, pullRepo+":"+r.Tag, a.auth); err != nil {
				return err
			}
		}
		var err error
		a.cur, err = a.current(ctx)
		return err
	})
	if err != nil {
		return Failed, err
	}
	a.res.Digest = digest
	a.ref = pullRepo + "@" + digest
	if r.Reported != "" && r.Reported != digest {
		// Recorded with the deploy (Record.Reported); the resolved digest
		// is what deploys.
		a.log.Warn().Str("reported_digest", r.Reported).Str("digest", digest).
			Msg("the tag resolves to another digest than the sender reported: the registry's is deployed")
	}
	if d.Service != nil {
		return a.resolvedService(digest)
	}
	if d.HasProcesses() {
		return a.resolvedApp(digest)
	}
	if cur := a.cur; cur != nil {
		a.res.Previous = cur.Labels[LabelDigest]
		if !cur.Managed() && !d.Container.ReplaceUnmanaged {
			return Failed, fmt.Errorf("container %q exists and was not created by liftoff; remove it, or set container.replace_unmanaged: true to let liftoff replace it", a.name)
		}
		// A deployment that is down is deployed again, even to its digest:
		// pushing again is how a user brings it back.
		if cur.Managed() && cur.Running && cur.Labels[LabelDigest] == digest && cur.Labels[LabelDeployment] == d.Name && !a.e.isDown(d.Name) {
			a.res.ContainerID = cur.ID
			return Unchanged, nil
		}
	}
	return "", nil
}

// current finds the deployment's container (or service), if any.
func (a *attempt) current(ctx context.Context) (*Container, error) {
	if a.d.Service != nil {
		return a.currentService(ctx)
	}
	if a.d.HasProcesses() {
		return nil, a.currentApp(ctx)
	}
	c, err := a.rt.Inspect(ctx, a.name)
	switch {
	case err == nil:
		return &c, nil
	case errors.Is(err, ErrNotFound):
		return nil, nil
	default:
		return nil, fmt.Errorf("inspect %s: %w", a.name, err)
	}
}

// pull fetches the image by digest, while the old container keeps serving.
func (a *attempt) pull() (Outcome, error) {
	err := a.step(StepPull, a.e.opts.PullTimeout, func(ctx context.Context) error {
		return a.rt.Pull(ctx, a.ref, a.auth)
	})
	if err != nil {
		return Failed, err
	}
	return "", nil
}

// prepare builds the new container's spec with its layered environment
// (image ENV included) and checks the environment's policy on it.
func (a *attempt) prepare() (Outcome, error) {
	err := a.step(StepPrepare, a.e.opts.OpTimeout, func(ctx context.Context) error {
		imageEnv, err := a.rt.ImageEnv(ctx, a.ref)
		if err != nil {
			return err
		}
		// A compose file edited since the config was loaded applies now.
		d, err := a.cfg.Fresh(a.d)
		if err != nil {
			return err
		}
		a.d = d
		env, err := a.cfg.Env(a.d, imageEnv)
		if err != nil {
			return err
		}
		a.spec = a.newSpec(env)
		return a.prepareUnits(imageEnv)
	})
	if err != nil {
		return Failed, err
	}
	if err := a.checkUnits(); err != nil {
		return Refused, err
	}
	if err := a.cfg.CheckPolicy(a.d, a.spec.Env); err != nil {
		return Refused, err
	}
	return "", nil
}

// swap replaces the old container by the new one, per the strategy.
func (a *attempt) swap() (Outcome, error) {
	if a.d.Service != nil {
		return a.serviceSwap()
	}
	if a.d.HasProcesses() {
		return a.appSwap()
	}
	if a.d.Proxy != nil {
		return a.proxySwap()
	}
	if a.d.Strategy == deployments.StartFirst && a.cur != nil {
		return a.startFirst()
	}
	return a.stopFirst()
}

// newSpec is the new container: the deployment's container spec, pinned to
// the digest, with env and liftoff's labels.
func (a *attempt) newSpec(env []string) Spec {
	d, r := a.d, a.res.Request
	labels := make(map[string]string, len(d.Container.Labels)+6)
	for k, v := range d.Container.Labels {
		labels[k] = v
	}
	labels[LabelManaged] = "true"
	labels[LabelDeployment] = d.Name
	labels[LabelEnvironment] = d.Environment
	labels[LabelImage] = d.Image
	labels[LabelTag] = r.Tag
	labels[LabelDigest] = a.res.Digest
	if d.PreviewOf != "" {
		labels[LabelPreview] = d.PreviewOf
		labels[LabelPushed] = a.res.Started.UTC().Format(time.RFC3339Nano)
	}
	s := Spec{
		Name:     a.name,
		Image:    a.ref,
		Env:      env,
		Cmd:      d.Container.Command,
		Labels:   labels,
		Ports:    d.Container.Ports,
		Volumes:  d.Container.Volumes,
		Networks: d.Container.Networks,
		Aliases:  d.Container.Aliases,
		Restart:  d.Container.Restart,
		Settings: d.Container.Settings(),
	}
	if d.Proxy != nil {
		s.Ports = proxyPort(d)
	}
	if h := d.Health; len(h.Cmd) > 0 {
		// Each check may take as long as Docker's default allows, up to the
		// gate's own timeout: a check that hangs is cut by the gate anyway.
		s.Healthcheck = &Healthcheck{Test: h.Cmd, Interval: h.Interval, Timeout: min(30*time.Second, max(h.Interval, h.Timeout)), Retries: h.Retries}
	}
	return s
}
