package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// A repair's decision: what it finds under the deployment's names, and
// which container it keeps.

// plan is what a repair will do, decided once from the journal and what
// the engine shows; containers are then found again by id.
type plan struct {
	outcome Outcome // of the interrupted deploy
	repair  string  // repairFinished, ...
	why     string
	step    string // the interrupted deploy's last step, "(none)" without a journal entry

	keep *Container   // the container that must end up running as <name>; nil: none
	drop []*Container // what goes
	// forward: keep is the new container; it is gated before old is
	// dropped, so that old can still be put back if it fails.
	forward bool
	old     *Container
	// stopping: the interrupted process may have asked the engine to stop
	// keep, and the engine may still be doing it.
	stopping bool
	// digest is the interrupted deploy's: a container of it that appears
	// under the name while the repair runs was created late, and goes.
	digest string
}

// scene is what a repair finds: the interrupted deploys and the containers
// under the deployment's three names.
type scene struct {
	name            string
	recs            []Record
	last            *Record
	cur, prev, next *Container
}

// look inspects the containers named <name>, <name>.liftoff-prev and
// <name>.liftoff-next. Set-aside ones liftoff did not create are not ours
// to touch, unless the journal names them.
func (e *Engine) look(ctx context.Context, d *deployments.Deployment, recs []Record) (scene, error) {
	s := scene{name: d.ContainerName(), recs: recs}
	if len(recs) > 0 {
		s.last = &recs[len(recs)-1]
	}
	for _, slot := range []struct {
		name string
		c    **Container
	}{{s.name, &s.cur}, {s.name + PrevSuffix, &s.prev}, {s.name + NextSuffix, &s.next}} {
		c, err := e.inspect(ctx, d, slot.name)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return s, fmt.Errorf("inspect %s: %w", slot.name, err)
		case slot.name != s.name && !c.Managed() && !s.journaled(c.ID):
		default:
			*slot.c = &c
		}
	}
	return s, nil
}

// leftover tells whether c, found under a set-aside name, is liftoff's
// container of the deployment (or one the journal names).
func (s scene) leftover(c *Container, deployment string) bool {
	return s.journaled(c.ID) || c.Managed() && c.Labels[LabelDeployment] == deployment
}

// journaled tells whether the interrupted deploy names the container.
func (s scene) journaled(id string) bool {
	return s.last != nil && (s.last.PrevID == id || s.last.NewID == id)
}

// stopping tells whether the interrupted process may have asked the engine
// to stop c, the previous container, and the engine may still be at it.
// stop-first asks at step stop, once the new container is created beside
// it (before: rename and create, the old one keeps running; after: start
// and gate, its stop has returned); start-first and the proxy at cleanup.
func (s scene) stopping(c *Container) bool {
	return s.last != nil && c != nil && c.ID == s.last.PrevID &&
		(s.last.Step == StepStop || s.last.Step == StepCleanup)
}

// plan decides: which container is the old one, which the new one, and
// had the new one passed its gate?
func (s scene) plan(d *deployments.Deployment) plan {
	var old, fresh *Container
	passed := false
	p := plan{step: "(none)"}
	if last := s.last; last != nil {
		p.step = last.Step
		passed = last.Step == StepCleanup
		for _, c := range []*Container{s.cur, s.prev, s.next} {
			switch {
			case c == nil:
			case last.PrevID != "" && c.ID == last.PrevID:
				old = c
			case last.NewID != "" && c.ID == last.NewID:
				fresh = c
			case last.NewID == "" && c.Managed() && c.Labels[LabelDigest] == last.Digest && last.Digest != "" &&
				slices.Contains([]string{StepCreate, StepStart}, last.Step):
				// created, but the crash came before its id was journaled
				fresh = c
			}
		}
		if old == nil && last.PrevID == "" && s.cur != nil && s.cur != fresh {
			// The deploy had not reached the old container: whatever runs
			// under the name is the old one.
			old = s.cur
		}
	} else {
		// No journal entry (journal off, or lost): judge by names alone.
		// A running container under the name wins over a set-aside one.
		switch {
		case s.next != nil:
			// Start-first: the old one is gone or stopped only once the
			// new one had passed its gate.
			fresh, old, passed = s.next, s.cur, s.cur == nil || !s.cur.Running && s.next.Running
		case s.cur != nil && s.cur.Running:
			fresh, old, passed = s.cur, s.prev, true
		default:
			fresh, old = s.cur, s.prev
		}
	}
	if s.last != nil {
		p.digest = s.last.Digest
	}
	for _, c := range []*Container{s.prev, s.next} {
		if c != nil && c != old && c != fresh && s.leftover(c, d.Name) {
			p.drop = append(p.drop, c) // set aside by an earlier crash
		}
	}
	untouched := s.last != nil && s.prev == nil && s.next == nil && fresh == nil &&
		slices.Contains([]string{"", StepResolve, StepPull, StepPrepare, StepBackup, StepRelease}, s.last.Step)
	switch {
	case untouched:
		p.outcome, p.repair = Failed, repairUntouched
		p.why = fmt.Sprintf("interrupted at step %s, before any container was touched", p.step)
	case passed && fresh != nil:
		p.outcome, p.repair, p.keep, p.forward, p.old = Succeeded, repairFinished, fresh, true, old
		if old != nil {
			p.drop = append(p.drop, old)
		}
		p.why = fmt.Sprintf("interrupted at step %s after the new container passed its gate; the swap was finished at start-up", p.step)
	case old != nil:
		p.outcome, p.repair, p.keep, p.stopping = RolledBack, repairRestored, old, s.stopping(old)
		if fresh != nil {
			p.drop = append(p.drop, fresh)
		}
		p.why = fmt.Sprintf("interrupted at step %s; the previous container was restored at start-up", p.step)
	default:
		p.outcome, p.repair = Failed, repairRemoved
		if fresh != nil {
			p.drop = append(p.drop, fresh)
		}
		p.why = fmt.Sprintf("interrupted at step %s; there was no previous container to restore", p.step)
	}
	return p
}
