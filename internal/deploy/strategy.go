package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Swapper is what a swap (a strategy and its rollback) needs of a runtime:
// the Containers calls, and those that make and publish the new container.
type Swapper interface {
	Containers
	// Create creates (does not start) a container from spec, connected to
	// all of spec.Networks with spec.Aliases, and returns its id.
	Create(ctx context.Context, spec Spec) (string, error)
	// SetAliases gives a container aliases on each of the networks it is
	// connected to (by reconnecting it), so that Docker's DNS starts
	// sending the aliases' traffic to it.
	SetAliases(ctx context.Context, id string, networks, aliases []string) error
	// Drain takes a running container out of Docker's DNS (its aliases)
	// on every network where it has aliases, keeping its address there,
	// so that its connections carry on and clients that resolved it before
	// still reach it. It returns the networks drained and those where the
	// engine cannot keep an address (no user-configured subnet): there the
	// container keeps its aliases. A container that does not run is left
	// alone.
	Drain(ctx context.Context, id string) (drained, kept []string, err error)
}

// stopFirst replaces the old container by the new one under the same
// name, with nothing serving only while the engine stops the old one and
// starts the new one:
//
//  1. rename: the old one, still running, becomes <name>.liftoff-prev
//     (a rename leaves a running container's processes, ports and
//     connections alone);
//  2. create: the new one is created as <name>, on its networks with its
//     aliases. A created container holds no published port and is in no
//     DNS: the engine binds ports and joins networks only at start;
//  3. stop: the old one gets its stop signal (requests in flight finish
//     within stop_timeout);
//  4. start: the new one starts, at once;
//  5. gate, then cleanup (the old one is removed).
//
// Nothing is done between the stop's answer and the start's request but
// the start's journal entry: whatever can be done earlier (the name, the
// container, its networks) is done while the old one still serves, and
// the old one is removed only after the gate. The stop answers once the
// engine has released the old one's ports (on Docker 20.10 the published
// port could be bound the moment the stop returned, 16 times of 16), so
// the start finds them free; a start that did not would roll back. What
// clients see of the window is longer than the two calls: see "Swap speed
// and downtime" in bench/README.md.
//
// Through a network alias the rename has a cost of its own: Docker drops
// the renamed container's DNS records and adds them again, and a lookup in
// between finds no holder (see startFirst). It comes just before the stop,
// which takes the alias away for the whole window anyway.
//
// Any failure from the rename on rolls back: the new container goes, the
// old one gets its name back and, if its stop began, is started again and
// gated. A failure before the stop costs no availability: the old one
// never stopped serving. A crash is repaired the same way (see repair).
func (a *attempt) stopFirst() (Outcome, error) {
	rt, d, cur := a.rt, a.d, a.cur
	if cur != nil {
		// renamed is set before the step: a rename that fails may still
		// have landed.
		a.prev, a.wasRunning, a.renamed = cur, cur.Running, true
		if err := a.step(StepRename, a.e.opts.OpTimeout, func(ctx context.Context) error {
			return a.e.rename(ctx, rt, cur.ID, a.name+PrevSuffix)
		}); err != nil {
			return a.rollback(err)
		}
	}
	a.newName = a.name
	if err := a.create(a.spec); err != nil {
		return a.rollback(err)
	}
	if cur != nil {
		a.stopped = true
		if err := a.step(StepStop, a.stopTimeout(), func(ctx context.Context) error {
			return rt.Stop(ctx, cur.ID, d.StopTimeout)
		}); err != nil {
			return a.rollback(err)
		}
	}
	if err := a.start(); err != nil {
		return a.rollback(err)
	}
	if err := a.gate(); err != nil {
		return a.rollback(err)
	}
	if a.hold {
		return "", nil // a process of an app: cleaned up once all passed (processes.go)
	}
	return a.stopFirstCleanup()
}

// stopFirstCleanup removes the previous container once the new one passed
// its gate.
func (a *attempt) stopFirstCleanup() (Outcome, error) {
	rt := a.rt
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
// <name>.liftoff-next on the same networks, without the aliases, and gate
// it. Past the gate the new one is the deployment, and the swap goes on in
// this order:
//
//  1. publish: the new one gets the aliases; Docker's DNS answers them
//     with both containers.
//  2. cleanup: the old one becomes <name>.liftoff-prev and the new one
//     <name>, while both hold the aliases (Docker 20.10 drops a
//     container's DNS records and adds them again when it renames it:
//     with a single holder a lookup in between fails, "no such host" 3
//     times in 200 renames under a tight lookup loop, none with a second
//     holder); then the old one is drained (Swapper.Drain), out of
//     Docker's DNS while keeping its address, and left running until
//     drainTime after the drain, so that no client connects to it any
//     more and those that resolved it before have connected; then it gets
//     its stop signal (requests in flight finish within stop_timeout) and
//     is removed.
//
// Why drain: most servers, Go's net/http among them, close their listening
// socket on SIGTERM, and a connection the kernel had completed but the app
// not yet accepted is then reset: stopped while still in the DNS, the old
// one answered a few requests with EOF or "connection reset". And Docker
// (libnetwork's sbLeave) removes an endpoint's interface before its DNS
// records: as the old one left the network on its stop, the alias kept
// resolving to its address for tens of milliseconds, nobody answered
// there, and clients timed out. The drain's reconnect has the same window,
// but the address comes back 50 to 150ms later and a client's SYN lost in
// between is answered when it is sent again after 1s: the request
// succeeds, late. (Only when Docker takes more than a second to reconnect,
// on a machine busy enough, does that retry miss too.) A pause between
// publishing and the stop does not help: the old one is still in the DNS
// when it stops.
//
// Measured over 60 swaps of each order on Docker 20.10 with both cores
// busy (stress-ng) and a client asking every 10ms on a new connection:
// stopping the old one with its aliases (liftoff before), 1 reset and 127
// timeouts; publishing, waiting 2s, then stopping, 1 EOF, 3 resets and 144
// timeouts; draining, none, with 246 of 35473 answers taking 0.5 to 1.07s
// (SYNs sent again after the reconnect of a drain or a publish). And
// internal/daemon's TestStartFirstZeroDowntime under that load, 4 runs at a
// time with -race: before, 20 runs, 58 requests lost to the stale DNS of
// the old one as it stopped; after, 48 runs, no loss in 47, and in one
// Docker took 1.4s to give the drained container its address back, so
// that 14 SYNs missed their retry (the test excuses exactly that, with its
// evidence).
//
// Docker gives a container its address back only on a network with a
// user-configured subnet ("docker network create --subnet"). On any other
// the old one keeps its aliases there and gets its stop signal holding
// them, as before, and the log says so.
func (a *attempt) startFirst() (Outcome, error) {
	rt, cur := a.rt, a.cur
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
	if a.hold {
		return "", nil // a process of an app: cleaned up once all passed (processes.go)
	}
	return a.startFirstCleanup()
}

// startFirstCleanup retires the previous container once the new one passed
// its gate and holds the aliases.
func (a *attempt) startFirstCleanup() (Outcome, error) {
	rt, d, cur := a.rt, a.d, a.cur
	// Past the gate the new container is the deployment: from here on a
	// failure is repaired forward (reconcile does the same after a crash).
	// The step may be retried from its start (the engine went away): each
	// part is content to find its work done.
	drained := false
	var drainEnd time.Time // when the drained old one may get its stop signal
	err := a.step(StepCleanup, a.e.opts.waits.drain+a.stopTimeout()+a.e.opts.OpTimeout, func(ctx context.Context) error {
		// Renamed while both hold the aliases: Docker drops and adds
		// again a container's DNS records when it renames it.
		if err := a.e.rename(ctx, rt, cur.ID, a.name+PrevSuffix); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := a.e.rename(ctx, rt, a.newID, a.name); err != nil {
			return err
		}
		if !drained {
			end, err := a.drain(ctx, cur)
			if err != nil {
				return err
			}
			drained, drainEnd = true, end
		}
		select {
		case <-time.After(time.Until(drainEnd)):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := rt.Stop(ctx, cur.ID, d.StopTimeout); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := rt.Remove(ctx, cur.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	})
	a.res.ContainerID = a.newID
	if err != nil {
		a.unrepaired = true
		return Failed, fmt.Errorf("new container %s runs and passed its gate, but the swap did not finish (reconcile will): %w", a.newName, err)
	}
	return Succeeded, nil
}

// drainTime (the default of the engine's waits.drain) is how long
// start-first leaves the old container running once it is out of Docker's
// DNS, before its stop signal: long enough for a client whose connection
// attempt was lost while the drain reconnected it (see Swapper.Drain) to
// try again (Linux sends a SYN again after 1s) and for clients that
// resolved its address just before to connect.
const drainTime = 2 * time.Second

// drain takes the old container out of Docker's DNS, keeping its address,
// and returns when it may get its stop signal: drainTime later, or at once
// if nothing was drained. From then on no new connection goes to it, and
// its stop signal cannot race one (see startFirst). A drain that fails
// leaves the old container as it was, with its aliases, to be stopped all
// the same: only an engine that cannot be reached fails the step (to be
// retried).
func (a *attempt) drain(ctx context.Context, old *Container) (time.Time, error) {
	if !old.Running {
		return time.Time{}, nil
	}
	drained, kept, err := a.rt.Drain(ctx, old.ID)
	switch {
	case errors.Is(err, ErrUnavailable):
		return time.Time{}, err
	case errors.Is(err, ErrNotFound):
		return time.Time{}, nil // a retry after it was removed
	case err != nil:
		a.log.Warn().Err(err).Str("container", old.Name).Msg("could not drain the previous container; stopping it while it may still be sent new connections")
	}
	if len(kept) > 0 {
		a.log.Warn().Str("container", old.Name).Strs("networks", kept).
			Msg("the previous container keeps its aliases on networks without a subnet of their own (docker network create --subnet): there it is stopped while it may still be sent new connections")
	}
	if len(drained) == 0 {
		return time.Time{}, nil
	}
	a.log.Debug().Str("container", old.Name).Strs("networks", drained).Dur("drain", a.e.opts.waits.drain).Msg("drained the previous container")
	return time.Now().Add(a.e.opts.waits.drain), nil
}

func (a *attempt) createAndStart(spec Spec) error {
	if err := a.create(spec); err != nil {
		return err
	}
	return a.start()
}

// create creates the new container from spec (step create).
func (a *attempt) create(spec Spec) error {
	rt := a.rt
	return a.step(StepCreate, a.e.opts.OpTimeout, func(ctx context.Context) error {
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
	})
}

// start starts the new container (step start).
func (a *attempt) start() error {
	rt := a.rt
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
	rt := a.rt
	c, err := rt.Inspect(ctx, name)
	if err != nil || !c.Managed() || c.Labels[LabelDeployment] != a.d.Name ||
		a.cur != nil && c.ID == a.cur.ID || a.prev != nil && c.ID == a.prev.ID {
		return false
	}
	a.log.Warn().Str("container", name).Str("id", c.ID).Msg("removing a leftover of an interrupted deploy that holds the new container's name")
	return rt.Remove(ctx, c.ID) == nil
}
