package deploy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Requests is what Enqueue, the holds (hold.go) and Recover need of the
// journal: the accepted requests.
//
// An accepted request is a promise: Enqueue records it before its sender
// is answered, and it stays open until a deploy of it reaches an outcome
// (Deploys.Finish with settle) or it is settled otherwise (superseded,
// not retried). After a crash, Recover deploys what is still open.
type Requests interface {
	// Accept records requests taken by the engine and returns their ids,
	// in order. It returns only once they are durable.
	Accept(ctx context.Context, rs []Request) ([]int64, error)
	// Settle closes accepted requests that no deploy will serve, with the
	// outcome (superseded, failed) and why. Settled requests are left as
	// they are.
	Settle(ctx context.Context, ids []int64, o Outcome, why string) error
	// OpenRequests returns the accepted requests not settled yet, oldest first,
	// each with ID, State and Attempts set.
	OpenRequests(ctx context.Context) ([]Request, error)
	// Move records that an open request now waits as state (a held or
	// pending push is queued, a waiting one held), with actor if not "".
	Move(ctx context.Context, id int64, state Disposition, actor string) error
}

// jobKind is what a job in a deployment's queue does.
type jobKind int

const (
	jobDeploy jobKind = iota // bring the deployment to job.request
	jobRepair                // finish or undo what an interrupted deploy left (Reconcile)
	jobRemove                // remove a preview (previews.go)
)

// job is one unit of work in a deployment's queue. The jobs of one
// deployment run one at a time, in order, so a repair never runs beside a
// deploy of the same deployment.
type job struct {
	kind       jobKind
	deployment string
	request    Request    // jobDeploy
	done       chan error // jobRepair, jobRemove: receives the result
	why        string     // jobRemove: why, for the log
}

func deployJob(r Request) job { return job{kind: jobDeploy, deployment: r.Deployment, request: r} }

func repairJob(deployment string, done chan error) job {
	return job{kind: jobRepair, deployment: deployment, done: done}
}

// redundant tells whether j asks for nothing more than o.
func (j job) redundant(o job) bool {
	return j.kind == jobDeploy && o.kind == jobDeploy && j.request.same(o.request)
}

// queue is one deployment's work: the job running now and at most one
// deploy waiting behind it (latest wins).
type queue struct {
	current job
	// resolved: current is a deploy that has looked up its tag's digest,
	// so an identical request arriving now may mean a new digest under the
	// same tag and is no longer redundant.
	resolved bool
	waiting  *job
}

// Enqueue takes requests, typically all those of one delivery, and says
// what it did with each:
//
//   - Queued: the deploy starts now if the deployment is idle, or waits
//     behind the running one, replacing (superseding) any deploy already
//     waiting;
//   - Held: the deployment is paused; the newest held push deploys when
//     it is resumed (see Unpause);
//   - Pending: the deployment's environment requires approval and no
//     one approved this push yet (a request with an Actor was asked for or
//     approved by someone, and needs none); it deploys once approved (see
//     Approve), or expires;
//   - Cooling: the same push (same tag and digest) was approved and
//     cools down (cooldown.go); that one stands for it.
//
// It returns once the requests are recorded as accepted in the journal: a
// request Enqueue took is kept even if liftoff dies first (see Recover). It
// never waits for a deploy. A request identical to one already waiting,
// held or pending, or to the running deploy before it has resolved its
// digest, is redundant: it is not recorded again, the one that stands for
// it is.
//
// It fails with ErrClosed once the engine is closing, and with the
// journal's error if the requests could not be recorded; either way
// nothing was taken.
func (e *Engine) Enqueue(ctx context.Context, rs ...Request) ([]Disposition, error) {
	// Before e.accept: the registry is asked, and other deliveries must
	// not wait for it.
	rs = e.bindApprovals(ctx, e.opts.Config(), rs)

	e.accept.Lock()
	defer e.accept.Unlock()

	cfg := e.opts.Config()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	dispositions := make([]Disposition, len(rs))
	var fresh []Request
	for i, r := range rs {
		if r.Received.IsZero() {
			r.Received = e.opts.Now()
		}
		r.State = e.routeLocked(cfg, r)
		if r.State == Pending {
			_, timeout := cfg.Approval(cfg.Deployment(r.Deployment))
			r.Expires = r.Received.Add(timeout)
		}
		if e.approvedCoolingLocked(r) {
			dispositions[i] = Cooling // it stands for r: approved already
			continue
		}
		dispositions[i] = r.State
		if !e.redundantLocked(r) {
			fresh = append(fresh, r)
		}
	}
	e.mu.Unlock()
	if len(fresh) == 0 {
		return dispositions, nil
	}

	if j := e.opts.Journal; j != nil {
		ids, err := j.Accept(ctx, fresh)
		if err != nil {
			return nil, fmt.Errorf("journal: record the request: %w", err)
		}
		for i := range fresh {
			fresh[i].ID = ids[i]
		}
	}

	// Only the workers and timers ran meanwhile (e.accept keeps other
	// Enqueues, Recover and the API's actions out): a deploy may have
	// resolved, finished or begun, which queue takes as it finds it. Once
	// closing, the requests stay open in the journal and the next start
	// deploys them.
	var superseded []Request
	e.mu.Lock()
	for _, r := range fresh {
		superseded = append(superseded, e.placeAllLocked(r)...)
	}
	e.mu.Unlock()
	e.settleSuperseded(ctx, superseded)
	for _, r := range fresh {
		if r.State == Pending && e.opts.OnPending != nil {
			e.opts.OnPending(r)
		}
	}
	return dispositions, nil
}

// resolveForApproval bounds the look-up of a pushed tag's digest when the
// push will await approval: the sender waits for it.
const resolveForApproval = 15 * time.Second

// bindApprovals resolves, before anything is recorded, the digest of each
// push that will await approval (now, or once its paused deployment is
// resumed): an approver approves that digest, shown beside the push, and
// it is what deploys, wherever the tag points by then. A push whose tag
// cannot be resolved is still taken, without a digest: it shows as
// pending, can be rejected or expire, and cannot be approved
// (ErrUnresolved). rs is returned, copied if changed.
func (e *Engine) bindApprovals(ctx context.Context, cfg *deployments.Config, rs []Request) []Request {
	var out []Request
	for i, r := range rs {
		d := cfg.Deployment(r.Deployment)
		if d == nil || r.Actor != "" || r.Digest != "" {
			continue
		}
		if required, _ := cfg.Approval(d); !required {
			continue
		}
		if out == nil {
			out = slices.Clone(rs)
		}
		digest, err := e.resolveTag(ctx, cfg, d, r.Tag)
		if err != nil {
			e.log.Warn().Err(err).Str("deployment", r.Deployment).Str("tag", r.Tag).Str("delivery", r.Delivery).
				Msg("the push awaits approval but its tag could not be resolved: it cannot be approved; push it again")
			continue
		}
		out[i].Digest = digest
	}
	if out == nil {
		return rs
	}
	return out
}

// resolveTag looks up the digest tag of d's image points to now.
func (e *Engine) resolveTag(ctx context.Context, cfg *deployments.Config, d *deployments.Deployment, tag string) (string, error) {
	rt, err := e.runtime(d)
	if err != nil {
		return "", err
	}
	pullRepo, cred, err := cfg.PullRepo(d.Image)
	if err != nil {
		return "", fmt.Errorf("registry settings for %s: %w", d.Image, err)
	}
	ctx, cancel := context.WithTimeout(ctx, resolveForApproval)
	defer cancel()
	return rt.Resolve(ctx, pullRepo+":"+tag, AuthOf(cred))
}

// routeLocked decides where a new request goes. e.mu is held.
func (e *Engine) routeLocked(cfg *deployments.Config, r Request) Disposition {
	if _, paused := e.paused[r.Deployment]; paused && r.Actor == "" {
		return Held
	}
	if d := cfg.Deployment(r.Deployment); d != nil && r.Actor == "" {
		if required, _ := cfg.Approval(d); required {
			return Pending
		}
	}
	return Queued
}

// placeLocked puts an accepted request where its State says: in the
// deployment's queue, or as its held, pending or cooling push. It returns the
// request it replaced, if any. e.mu is held.
func (e *Engine) placeLocked(r Request) (superseded *Request) {
	switch r.State {
	case Held:
		old, had := e.held[r.Deployment]
		e.held[r.Deployment] = r
		if had {
			return &old
		}
		return nil
	case Pending:
		old, had := e.pending[r.Deployment]
		e.pending[r.Deployment] = r
		e.armExpiryLocked(r)
		if had {
			return &old
		}
		return nil
	case Cooling:
		return e.placeCoolingLocked(r)
	default:
		return e.queueLocked(deployJob(r))
	}
}

// approvedCoolingLocked tells whether r, not approved, asks for what the
// deployment's approved cooling push deploys already: a poll finds the
// tag's digest not running yet, a sender delivers again. It is redundant,
// not a second request of the same digest to approve, which would not
// replace the approved one either (replaces). e.mu is held.
func (e *Engine) approvedCoolingLocked(r Request) bool {
	c, ok := e.cooling[r.Deployment]
	return ok && c.Actor != "" && r.Actor == "" && r.State != Queued && r.same(c)
}

// redundantLocked tells whether r is a duplicate of what its deployment
// holds already, where r would go. e.mu is held.
func (e *Engine) redundantLocked(r Request) bool {
	switch r.State {
	case Held:
		old, had := e.held[r.Deployment]
		return had && r.same(old)
	case Pending:
		old, had := e.pending[r.Deployment]
		return had && r.same(old)
	}
	j := deployJob(r)
	q, busy := e.queues[j.deployment]
	switch {
	case !busy:
		return false
	case q.waiting != nil:
		return j.redundant(*q.waiting)
	default:
		return !q.resolved && j.redundant(q.current)
	}
}

// queueLocked starts j if its deployment is idle, or makes it wait behind
// the running job, replacing any deploy waiting there, which it returns.
// Nothing is queued once the engine is closing. e.mu is held.
func (e *Engine) queueLocked(j job) (superseded *Request) {
	if e.closed {
		return nil
	}
	q, busy := e.queues[j.deployment]
	switch {
	case !busy:
		e.startLocked(j)
	case q.waiting != nil:
		old := q.waiting.request
		q.waiting = &j
		return &old
	default:
		q.waiting = &j
		e.metrics.queueDepth.Inc()
	}
	return nil
}

// settleSuperseded counts, logs and closes in the journal requests that
// later ones replaced before they ran; each shows in the history as a
// deploy with outcome superseded, under its delivery.
func (e *Engine) settleSuperseded(ctx context.Context, rs []Request) {
	for _, r := range rs {
		e.settleDropped(ctx, r, Superseded, "", "a later push replaced it before it started")
	}
}

// startLocked gives an idle deployment a queue that runs j now. e.mu is held.
func (e *Engine) startLocked(j job) {
	q := &queue{current: j}
	e.queues[j.deployment] = q
	e.wg.Add(1)
	go e.work(q)
}

// work runs a deployment's jobs until none waits.
func (e *Engine) work(q *queue) {
	defer e.wg.Done()
	for j, ok := q.current, true; ok; j, ok = e.next(q) {
		switch j.kind {
		case jobDeploy:
			res := e.run(q, j.request)
			if e.opts.OnDone != nil {
				e.opts.OnDone(res)
			}
		case jobRepair:
			j.done <- e.runRepair(j.deployment)
		case jobRemove:
			j.done <- e.runRemove(j.deployment, j.why)
		}
	}
}

// next makes the waiting job current and returns it; false when none waits
// (or the engine is closing), and the deployment is idle again.
func (e *Engine) next(q *queue) (job, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	name := q.current.deployment
	if q.waiting == nil || e.closed {
		if q.waiting != nil {
			e.metrics.queueDepth.Dec()
			ev := e.log.Warn().Str("deployment", name).Str("tag", q.waiting.request.Tag).Str("delivery", q.waiting.request.Delivery)
			if e.opts.Journal != nil {
				ev.Msg("shutting down: the waiting deploy stays in the journal and runs when liftoff starts again")
			} else {
				ev.Msg("shutting down: waiting deploy dropped (no journal); push again once liftoff is back")
			}
		}
		delete(e.queues, name)
		return job{}, false
	}
	q.current, q.waiting, q.resolved = *q.waiting, nil, false
	e.metrics.queueDepth.Dec()
	return q.current, true
}

// markResolved records that q's running deploy has looked up its digest.
func (e *Engine) markResolved(q *queue) {
	e.mu.Lock()
	q.resolved = true
	e.mu.Unlock()
}

// Busy tells whether a job of that deployment runs or waits now.
func (e *Engine) Busy(deployment string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.queues[deployment]
	return ok
}
