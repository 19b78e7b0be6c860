package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// An app of several processes (deployments[].processes): one image, one
// environment, one release, and a container per replica of each process
// (a unit, see deployments.Unit). The deploy's first steps (resolve, pull,
// prepare and the policy, backup, release) run once for the app; then
// each unit is swapped in turn by the strategy of a single deployment,
// under a journal record of its own named after the unit ("app/web.1"),
// up to its gate, and held there: the previous container is kept. Once
// every unit passed, the app journals StepCleanup (its commit point) and
// each unit is cleaned up. If one fails its gate, every unit already
// swapped is rolled back, last first.
//
// After a crash, repairApp reads the app's record: past its commit point
// every unit is finished forward, before it every unit is put back, so
// that all run one version.

// Labels on a process's containers, beside liftoff's usual ones (whose
// liftoff.deployment names the unit, "app/web.1").
const (
	LabelApp     = "liftoff.app"
	LabelProcess = "liftoff.process"
	LabelReplica = "liftoff.replica"
)

// StepProcesses is an app's step while its processes are swapped one by
// one; StepCleanup follows once every one passed its gate, StepRollback if
// one did not.
const StepProcesses = "processes"

// currentApp inspects what runs as each unit of the app.
func (a *attempt) currentApp(ctx context.Context) error {
	units := a.d.Units()
	a.unitCur = make([]*Container, len(units))
	for i, u := range units {
		c, err := a.rt.Inspect(ctx, u.Deployment.ContainerName())
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return fmt.Errorf("inspect %s: %w", u.Deployment.ContainerName(), err)
		default:
			a.unitCur[i] = &c
		}
	}
	return nil
}

// resolvedApp decides after resolve: unchanged when every unit runs the
// digest already. The previous digest is what the units run (after the
// repair resolve made first, they all run one).
func (a *attempt) resolvedApp(digest string) (Outcome, error) {
	all := true
	for i, u := range a.d.Units() {
		c := a.unitCur[i]
		if c == nil {
			all = false
			continue
		}
		if !c.Managed() && !a.d.Container.ReplaceUnmanaged {
			return Failed, fmt.Errorf("container %q (process %s) exists and was not created by liftoff; remove it, or set container.replace_unmanaged: true to let liftoff replace it", c.Name, u.Process)
		}
		if a.res.Previous == "" && c.Managed() {
			a.res.Previous = c.Labels[LabelDigest]
		}
		if !c.Managed() || !c.Running || c.Labels[LabelDigest] != digest || c.Labels[LabelDeployment] != u.Deployment.Name {
			all = false
		}
	}
	if all && !a.e.isDown(a.d.Name) {
		return Unchanged, nil
	}
	return "", nil
}

// appSwap swaps every unit in the app's order, holding each after its
// gate, then cleans them all up; or rolls back those swapped when one
// fails. The result tells what each unit runs then (processResults).
func (a *attempt) appSwap() (Outcome, error) {
	units := a.d.Units()
	uas := make([]*attempt, len(units)) // each unit's swap, once begun
	committed := false
	defer func() { a.res.Processes = a.processResults(units, uas, committed) }()
	noop := func(context.Context) error { return nil }
	if err := a.step(StepProcesses, a.e.opts.OpTimeout, noop); err != nil {
		return Failed, err
	}
	var held []*attempt
	for i, u := range units {
		env := a.spec.Env
		if a.units != nil {
			u, env = a.units[i], a.unitEnv[i]
		}
		ua, err := a.unitAttempt(u, a.unitCur[i], env)
		if err != nil {
			return a.undoUnits(held, Failed, err)
		}
		uas[i] = ua
		o, err := ua.swap()
		if o != "" {
			a.finishUnit(ua, o, err)
			return a.undoUnits(held, o, fmt.Errorf("process %s (container %s): %w", u.Process, ua.name, err))
		}
		held = append(held, ua)
	}
	// The commit point: from here a crash finishes every unit forward.
	if err := a.step(StepCleanup, a.e.opts.OpTimeout, noop); err != nil {
		return a.undoUnits(held, Failed, err)
	}
	committed = true
	var errs []error
	for _, ua := range held {
		var o Outcome
		var err error
		switch {
		case ua.d.Proxy != nil:
			o, err = ua.proxyCleanup()
		case ua.published || ua.d.Strategy == deployments.StartFirst && ua.cur != nil:
			o, err = ua.startFirstCleanup()
		default:
			o, err = ua.stopFirstCleanup()
		}
		a.finishUnit(ua, o, err)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Every unit passed its gate and runs the new version; what is
		// left (an old container to retire) reconcile finishes.
		return Failed, errors.Join(errs...)
	}
	a.retire()
	return Succeeded, nil
}

// processResults is what each unit of the app runs once its swap ended:
// uas are the units' swaps (nil for a unit the swap never reached), and
// committed says the app passed its commit point, after which every unit
// runs the new version (cleaned up or not: reconcile finishes it). Before
// it, a unit runs what it ran: untouched, or rolled back to its previous
// container (by its rollback's own account, ContainerID); a unit whose
// rollback had nothing to go back to, or could not finish, runs nothing
// liftoff can vouch for.
func (a *attempt) processResults(units []deployments.Unit, uas []*attempt, committed bool) []ProcessResult {
	ps := make([]ProcessResult, len(units))
	for i, u := range units {
		p := ProcessResult{Process: u.Process, Replica: u.Replica, Container: u.Deployment.ContainerName()}
		switch ua := uas[i]; {
		case committed:
			p.Digest = a.res.Digest
		case ua == nil || ua.prev == nil && ua.newID == "":
			p.Digest = runningDigest(a.unitCur[i])
		case ua.prev != nil && ua.res.ContainerID == ua.prev.ID:
			p.Digest = runningDigest(ua.prev)
		}
		ps[i] = p
	}
	return ps
}

// runningDigest is the digest c runs, or "" when c is nil or was not
// running.
func runningDigest(c *Container) string {
	if c == nil || !c.Running {
		return ""
	}
	return c.Labels[LabelDigest]
}

// retire removes, once every unit runs the new version, the containers of
// processes or replicas the configuration no longer has (a process
// removed, a lower scale): left, they would run the old version for good.
// It needs a runtime that lists containers (the docker adapter does); a
// container it could not remove is tried again at the next deploy.
func (a *attempt) retire() {
	l, ok := a.rt.(lister)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), a.stopTimeout()+a.e.opts.OpTimeout)
	defer cancel()
	cs, err := l.List(ctx, map[string]string{LabelManaged: "true", LabelApp: a.d.Name})
	if err != nil {
		a.log.Warn().Err(err).Msg("could not list the app's containers to remove those of processes no longer configured")
		return
	}
	units := map[string]bool{}
	for _, u := range a.d.Units() {
		units[u.Deployment.Name] = true
	}
	for _, c := range cs {
		if units[c.Labels[LabelDeployment]] {
			continue
		}
		a.log.Info().Str("container", c.Name).Str("unit", c.Labels[LabelDeployment]).
			Msg("removing the container of a process or replica no longer in the configuration")
		if c.Running {
			if err := a.rt.Stop(ctx, c.ID, a.d.StopTimeout); err != nil && !errors.Is(err, ErrNotFound) {
				a.log.Warn().Err(err).Str("container", c.Name).Msg("could not stop it; removing it")
			}
		}
		if err := a.rt.Remove(ctx, c.ID); err != nil {
			a.log.Warn().Err(err).Str("container", c.Name).Msg("could not remove it; the next deploy tries again")
		}
	}
}

// undoUnits rolls back the units held (last first) after failure cause
// with outcome o (of the unit that failed, or of the app's step). The app
// is rolled back when every unit could be put back on the previous
// version, and failed when there was none or the rollback was incomplete.
func (a *attempt) undoUnits(held []*attempt, o Outcome, cause error) (Outcome, error) {
	if len(held) > 0 {
		if err := a.journal(a.ctx, StepRollback); err != nil {
			a.log.Error().Err(err).Msg("rolling back the processes without a journal entry")
		}
		if a.e.opts.BeforeStep != nil {
			a.e.opts.BeforeStep(a.rec.Deployment, StepRollback)
		}
	}
	var errs []error
	for _, ua := range slices.Backward(held) {
		uo, err := ua.rollback(fmt.Errorf("another process failed: %w", cause))
		a.finishUnit(ua, uo, err)
		if uo != RolledBack {
			o = Failed
			if ua.prev != nil {
				errs = append(errs, fmt.Errorf("process %s: %w", ua.d.Name, err))
			}
		}
	}
	if len(errs) > 0 {
		return Failed, errors.Join(append([]error{cause}, errs...)...)
	}
	if o == RolledBack && a.res.Previous != "" {
		return RolledBack, fmt.Errorf("%w; every process is back on %s", cause, a.res.Previous)
	}
	if o == RolledBack {
		o = Failed // nothing ran before: what the deploy made is gone
	}
	return o, cause
}

// prepareUnits reads again the compose service of each unit of an app
// whose processes name services (processes.<name>.service) and builds
// its environment: the service's, with liftoff's layers on top. The app's
// own spec (the release's) then takes the environment, volumes and
// networks of the first process swapped.
func (a *attempt) prepareUnits(imageEnv []string) error {
	a.units, a.unitEnv = nil, nil
	if !a.d.HasProcesses() || a.d.Compose == nil {
		return nil
	}
	units := a.d.Units()
	if len(units) == 0 || units[0].Deployment.Compose == nil {
		return nil // processes with commands of their own: the app's env
	}
	for _, u := range units {
		d, err := a.cfg.Fresh(u.Deployment)
		if err != nil {
			return fmt.Errorf("process %s: %w", u.Process, err)
		}
		env, err := a.cfg.Env(d, imageEnv)
		if err != nil {
			return fmt.Errorf("process %s: %w", u.Process, err)
		}
		u.Deployment = d
		a.units = append(a.units, u)
		a.unitEnv = append(a.unitEnv, env)
	}
	a.spec.Env = a.unitEnv[0]
	a.spec.Volumes = a.units[0].Deployment.Container.Volumes
	a.spec.Networks = a.units[0].Deployment.Container.Networks
	return nil
}

// checkUnits checks the environment's policy on each unit's environment
// read by prepareUnits.
func (a *attempt) checkUnits() error {
	for i, u := range a.units {
		if err := a.cfg.CheckPolicy(u.Deployment, a.unitEnv[i]); err != nil {
			return fmt.Errorf("process %s (service %s): %w", u.Process, u.Deployment.Compose.Service, err)
		}
	}
	return nil
}

// unitAttempt makes the attempt that swaps unit u (cur runs as it now),
// with its journal record; env is its environment.
func (a *attempt) unitAttempt(u deployments.Unit, cur *Container, env []string) (*attempt, error) {
	d := u.Deployment
	ua := &attempt{
		e: a.e, q: a.q, ctx: a.ctx, cfg: a.cfg, d: d, name: d.ContainerName(), rt: a.rt,
		pullRepo: a.pullRepo, auth: a.auth, cur: cur, ref: a.ref, hold: true,
	}
	ua.log = a.log.With().Str("process", u.Process).Int("replica", u.Replica).Str("container", ua.name).Logger()
	ua.res = Result{Request: a.res.Request, Environment: a.res.Environment, Started: a.e.opts.Now(), Digest: a.res.Digest}
	if cur != nil && cur.Managed() {
		ua.res.Previous = cur.Labels[LabelDigest]
	}
	r := a.rec
	ua.rec = Record{
		Deployment: d.Name, Environment: r.Environment, Image: r.Image, Tag: r.Tag, Digest: a.res.Digest, Previous: ua.res.Previous,
		Trigger: r.Trigger, Delivery: r.Delivery, Pusher: r.Pusher, Actor: r.Actor, Started: ua.res.Started,
		Phases: map[string]time.Duration{},
	}
	ua.spec = ua.newSpec(env)
	ua.spec.Labels[LabelApp] = a.d.Name
	ua.spec.Labels[LabelProcess] = u.Process
	ua.spec.Labels[LabelReplica] = strconv.Itoa(u.Replica)
	if j := a.e.opts.Journal; j != nil {
		id, err := j.Begin(a.ctx, ua.rec)
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		ua.id, ua.rec.ID = id, id
	}
	return ua, nil
}

// finishUnit records how a unit's swap ended, unless it was left half done
// (then the app's record stays unfinished too, for reconcile), and makes a
// unit left down the app's.
func (a *attempt) finishUnit(ua *attempt, o Outcome, err error) {
	if why, down := a.e.Down()[ua.d.Name]; down {
		// Its previous container failed its gate again: the app is down
		// (Watch repairs the app, not the unit).
		a.e.clearDown(ua.d.Name)
		a.e.setDown(a.d.Name, fmt.Errorf("process %s: %w", ua.d.Name, why))
	}
	if ua.unrepaired {
		a.unrepaired = true
		return
	}
	if ua.id == 0 {
		return
	}
	ua.rec.Outcome, ua.rec.Ended, ua.rec.Digest, ua.rec.Previous = o, a.e.opts.Now(), ua.res.Digest, ua.res.Previous
	if err != nil {
		ua.rec.Error = err.Error()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), 10*time.Second)
	defer cancel()
	if jerr := a.e.opts.Journal.Finish(ctx, ua.id, ua.rec, false); jerr != nil {
		ua.log.Error().Err(jerr).Msg("journal: could not record the process's outcome; reconcile will look at it at the next start")
	}
}

// repairApp repairs an app after a crash (or before its next deploy):
// each unit's interrupted swap is finished forward if the app had passed
// its commit point (every unit had passed its gate), and undone otherwise;
// then the app's own records are closed. self is the calling deploy's
// journal id, or 0.
func (e *Engine) repairApp(ctx context.Context, log zerolog.Logger, d *deployments.Deployment, self int64) (bool, error) {
	recs, err := e.interrupted(ctx, d.Name, self)
	if err != nil {
		return false, err
	}
	if err := e.removeOneOffs(ctx, d); err != nil {
		return false, err
	}
	committed := len(recs) > 0 && recs[len(recs)-1].Step == StepCleanup
	repaired := false
	var errs []error
	for _, u := range d.Units() {
		if committed {
			if err := e.commitUnit(ctx, u.Deployment.Name); err != nil {
				return false, err
			}
		}
		ul := log.With().Str("process", u.Process).Int("replica", u.Replica).Logger()
		r, err := e.repair(ctx, ul, u.Deployment, 0)
		repaired = repaired || r
		e.clearDown(u.Deployment.Name) // the app is down, or not
		if err != nil {
			errs = append(errs, fmt.Errorf("process %s: %w", u.Deployment.Name, err))
		}
	}
	if len(recs) > 0 {
		repaired = true
		last := recs[len(recs)-1]
		o, why := Failed, fmt.Sprintf("interrupted at step %s, before any container was touched", last.Step)
		switch {
		case committed:
			o, why = Succeeded, "interrupted at step cleanup, after every process had passed its gate; each swap was finished at start-up"
		case last.Step == StepProcesses || last.Step == StepRollback:
			if last.Previous != "" {
				o, why = RolledBack, fmt.Sprintf("interrupted at step %s; every process was put back on %s at start-up", last.Step, last.Previous)
			} else {
				why = fmt.Sprintf("interrupted at step %s; there was no previous version to put back, and what the deploy made was removed", last.Step)
			}
		}
		if err := e.finishInterrupted(ctx, d, recs, o, why, o == Succeeded); err != nil {
			return true, err
		}
		log.Warn().Str("outcome", string(o)).Msg("reconciled an interrupted deploy of an app")
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		e.setDown(d.Name, err)
		return repaired, fmt.Errorf("reconcile %s: %w: %w", d.Name, ErrDown, err)
	}
	e.clearDown(d.Name)
	return repaired, nil
}

// commitUnit moves a unit's unfinished swap that was held after its gate
// (step gate, or publish for start-first) to step cleanup, so that its
// repair finishes it forward: the app had passed its commit point.
func (e *Engine) commitUnit(ctx context.Context, unit string) error {
	recs, err := e.interrupted(ctx, unit, 0)
	if err != nil || len(recs) == 0 {
		return err
	}
	last := recs[len(recs)-1]
	if last.Step != StepGate && last.Step != StepPublish {
		return nil
	}
	last.Step = StepCleanup
	if err := e.opts.Journal.Step(ctx, last.ID, last); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// proveApp runs the gate of every unit of an app that is down.
func (e *Engine) proveApp(ctx context.Context, d *deployments.Deployment) error {
	var errs []error
	for _, u := range d.Units() {
		c, err := e.inspect(ctx, u.Deployment, u.Deployment.ContainerName())
		if err == nil {
			err = e.prove(ctx, u.Deployment, &c)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("process %s: %w", u.Deployment.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Process is what runs as one replica of an app's process.
type Process struct {
	Process   string
	Replica   int
	Container *Container // nil: none
}

// Processes returns what runs as each replica of each process of an app,
// in swap order; nil for a deployment without processes.
func (e *Engine) Processes(ctx context.Context, deployment string) ([]Process, error) {
	d := e.opts.Config().Deployment(deployment)
	if d == nil || !d.HasProcesses() {
		return nil, nil
	}
	var ps []Process
	for _, u := range d.Units() {
		p := Process{Process: u.Process, Replica: u.Replica}
		c, err := e.inspect(ctx, u.Deployment, u.Deployment.ContainerName())
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, err
		default:
			p.Container = &c
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// runningApp is Running of an app: its first container found.
func (e *Engine) runningApp(ctx context.Context, d *deployments.Deployment) (*Container, error) {
	ps, err := e.Processes(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.Container != nil {
			return p.Container, nil
		}
	}
	return nil, nil
}
