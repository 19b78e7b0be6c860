package deploy

import (
	"context"
	"errors"
	"fmt"
)

// stopFirst: stop the old container, set it aside as <name>.liftoff-prev,
// create and start the new one under the name, gate it, then remove the
// old one. Any failure after the stop rolls back.
func (a *attempt) stopFirst() (Outcome, error) {
	rt, d, cur := a.e.opts.Runtime, a.d, a.cur
	if cur != nil {
		a.prev, a.wasRunning, a.stopped = cur, cur.Running, true
		if err := a.step(StepStop, a.stopTimeout(), func(ctx context.Context) error {
			return rt.Stop(ctx, cur.ID, d.StopTimeout)
		}); err != nil {
			return a.rollback(err)
		}
		if err := a.step(StepRename, a.e.opts.OpTimeout, func(ctx context.Context) error {
			return a.e.rename(ctx, cur.ID, a.name+PrevSuffix)
		}); err != nil {
			return a.rollback(err)
		}
		a.renamed = true
	}
	a.newName = a.name
	if err := a.createAndStart(a.spec); err != nil {
		return a.rollback(err)
	}
	if err := a.gate(); err != nil {
		return a.rollback(err)
	}
	a.res.ContainerID = a.newID
	if a.prev != nil {
		if err := a.step(StepCleanup, a.e.opts.OpTimeout, func(ctx context.Context) error {
			return rt.Remove(ctx, a.prev.ID)
		}); err != nil {
			// The deploy stands; the leftover goes with the next deploy or start-up.
			a.log.Warn().Err(err).Str("container", a.name+PrevSuffix).Msg("could not remove the previous container")
		}
	}
	return Succeeded, nil
}

// startFirst: start the new container beside the old one as
// <name>.liftoff-next on the same networks, gate it, give it the aliases
// (so that it shares the traffic only once proven), then stop the old one
// (it drains: it gets its stop signal while still reachable, so in-flight
// requests finish and new connections to it are refused and go to the new
// one), remove it and give the new one the name.
//
// Disconnecting the old one first would cut its requests in flight and
// gains nothing: Docker 20.10 drops an endpoint's DNS records only after
// its interface, on disconnect as on stop, so for a few milliseconds the
// alias still resolves to an address nobody answers (measured by
// cmd/liftoff's TestStartFirstZeroDowntime; plain "docker stop" does the
// same).
func (a *attempt) startFirst() (Outcome, error) {
	rt, d, cur := a.e.opts.Runtime, a.d, a.cur
	spec := a.spec
	a.newName = a.name + NextSuffix
	spec.Name = a.newName
	// The aliases come only once the gate is passed: until then Docker's
	// DNS must not send a single request to a container that may fail it.
	aliases := spec.Aliases
	spec.Aliases = nil
	a.prev, a.wasRunning = cur, cur.Running
	if err := a.createAndStart(spec); err != nil {
		return a.rollback(err)
	}
	if err := a.gate(); err != nil {
		return a.rollback(err)
	}
	if len(aliases) > 0 {
		if err := a.step(StepPublish, a.e.opts.OpTimeout, func(ctx context.Context) error {
			a.published = true // even a failed reconnect may have published some
			return rt.SetAliases(ctx, a.newID, spec.Networks, aliases)
		}); err != nil {
			return a.rollback(err)
		}
	}
	// Past the gate the new container is the deployment: from here on a
	// failure is repaired forward (reconcile does the same after a crash).
	err := a.step(StepCleanup, a.stopTimeout()+a.e.opts.OpTimeout, func(ctx context.Context) error {
		// A retry (the engine went away mid-step) may find the old one gone.
		if err := rt.Stop(ctx, cur.ID, d.StopTimeout); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := rt.Remove(ctx, cur.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return a.e.rename(ctx, a.newID, a.name)
	})
	a.res.ContainerID = a.newID
	if err != nil {
		a.unrepaired = true
		return Failed, fmt.Errorf("new container %s runs and passed its gate, but the swap did not finish (reconcile will): %w", a.newName, err)
	}
	return Succeeded, nil
}

func (a *attempt) createAndStart(spec Spec) error {
	rt := a.e.opts.Runtime
	if err := a.step(StepCreate, a.e.opts.OpTimeout, func(ctx context.Context) error {
		if a.newID != "" {
			return nil // created by an earlier try of this step
		}
		id, err := rt.Create(ctx, spec)
		if err != nil && a.removeLeftover(ctx, spec.Name) {
			id, err = rt.Create(ctx, spec)
		}
		if err != nil {
			return err
		}
		a.newID = id
		return nil
	}); err != nil {
		return err
	}
	return a.step(StepStart, a.e.opts.OpTimeout, func(ctx context.Context) error {
		return rt.Start(ctx, a.newID)
	})
}

// removeLeftover removes what holds the name a create needs, if it is a
// container of this deployment that neither runs as it nor is being
// replaced: one created by an interrupted deploy whose create reached the
// engine only after the repair had looked. It reports whether it removed
// one.
func (a *attempt) removeLeftover(ctx context.Context, name string) bool {
	rt := a.e.opts.Runtime
	c, err := rt.Inspect(ctx, name)
	if err != nil || !c.Managed() || c.Labels[LabelDeployment] != a.d.Name ||
		a.cur != nil && c.ID == a.cur.ID || a.prev != nil && c.ID == a.prev.ID {
		return false
	}
	a.log.Warn().Str("container", name).Str("id", c.ID).Msg("removing a leftover of an interrupted deploy that holds the new container's name")
	return rt.Remove(ctx, c.ID) == nil
}
