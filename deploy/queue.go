package deploy

import (
	"context"
	"fmt"
	"time"
)

// jobKind is what a job in a deployment's queue does.
type jobKind int

const (
	jobDeploy jobKind = iota // bring the deployment to job.request
	jobRepair                // finish or undo what an interrupted deploy left (Reconcile)
)

// job is one unit of work in a deployment's queue. The jobs of one
// deployment run one at a time, in order, so a repair never runs beside a
// deploy of the same deployment.
type job struct {
	kind       jobKind
	deployment string
	request    Request    // jobDeploy
	done       chan error // jobRepair: receives the repair's result
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
	pending  *job
}

// Enqueue asks for deploys, typically all those of one delivery. It
// returns once they are queued and, with a journal, recorded as accepted:
// a request Enqueue took is deployed even if liftoff dies first (see
// Recover). It never waits for a deploy: if the deployment is idle the
// deploy starts now; if one runs, the request waits behind it, replacing
// (superseding) any request already waiting. A request identical to the
// one waiting, or to the running one before it has resolved its digest,
// is redundant and dropped: the deploy that stands for it will see the
// same tag, and is journaled already.
//
// It fails with ErrClosed once the engine is closing, and with the
// journal's error if the requests could not be recorded; either way
// nothing was queued.
func (e *Engine) Enqueue(ctx context.Context, rs ...Request) error {
	e.accept.Lock()
	defer e.accept.Unlock()

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	var fresh []Request
	for _, r := range rs {
		if r.Received.IsZero() {
			r.Received = e.opts.Now()
		}
		if !e.redundantLocked(deployJob(r)) {
			fresh = append(fresh, r)
		}
	}
	e.mu.Unlock()
	if len(fresh) == 0 {
		return nil
	}

	if j := e.opts.Journal; j != nil {
		ids, err := j.Accept(ctx, fresh)
		if err != nil {
			return fmt.Errorf("journal: record the request: %w", err)
		}
		for i := range fresh {
			fresh[i].ID = ids[i]
		}
	}

	// Only the workers ran meanwhile (e.accept keeps other Enqueues and
	// Recover out): a deploy may have resolved, finished or begun, which
	// queue takes as it finds it. Once closing, the requests stay open in
	// the journal and the next start deploys them.
	var superseded []Request
	e.mu.Lock()
	for _, r := range fresh {
		if old := e.queueLocked(deployJob(r)); old != nil {
			superseded = append(superseded, *old)
		}
	}
	e.mu.Unlock()
	e.settleSuperseded(ctx, superseded)
	return nil
}

// redundantLocked tells whether j is a duplicate of what its deployment's
// queue already holds. e.mu is held.
func (e *Engine) redundantLocked(j job) bool {
	q, busy := e.queues[j.deployment]
	switch {
	case !busy:
		return false
	case q.pending != nil:
		return j.redundant(*q.pending)
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
	case q.pending != nil:
		old := q.pending.request
		q.pending = &j
		return &old
	default:
		q.pending = &j
		e.metrics.queueDepth.Inc()
	}
	return nil
}

// settleSuperseded counts, logs and closes in the journal requests that
// later ones replaced before they ran.
func (e *Engine) settleSuperseded(ctx context.Context, rs []Request) {
	if len(rs) == 0 {
		return
	}
	cfg := e.opts.Config()
	var ids []int64
	for _, r := range rs {
		env := ""
		if d := cfg.Deployment(r.Deployment); d != nil {
			env = d.Environment
		}
		e.metrics.deploys.WithLabelValues(r.Deployment, env, string(Superseded)).Inc()
		e.log.Info().Str("deployment", r.Deployment).Str("tag", r.Tag).Str("delivery", r.Delivery).
			Str("outcome", string(Superseded)).Msg("deploy superseded by a later push before it started")
		if r.ID != 0 {
			ids = append(ids, r.ID)
		}
	}
	if j := e.opts.Journal; j != nil && len(ids) > 0 {
		// A failure here only leaves the requests open: Recover settles
		// them as superseded at the next start.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := j.Settle(ctx, ids, Superseded, "a later push replaced it before it started"); err != nil {
			e.log.Error().Err(err).Msg("journal: could not record superseded requests")
		}
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
		}
	}
}

// next makes the waiting job current and returns it; false when none waits
// (or the engine is closing), and the deployment is idle again.
func (e *Engine) next(q *queue) (job, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	name := q.current.deployment
	if q.pending == nil || e.closed {
		if q.pending != nil {
			e.metrics.queueDepth.Dec()
			ev := e.log.Warn().Str("deployment", name).Str("tag", q.pending.request.Tag).Str("delivery", q.pending.request.Delivery)
			if e.opts.Journal != nil {
				ev.Msg("shutting down: the waiting deploy stays in the journal and runs when liftoff starts again")
			} else {
				ev.Msg("shutting down: waiting deploy dropped (no journal); push again once liftoff is back")
			}
		}
		delete(e.queues, name)
		return job{}, false
	}
	q.current, q.pending, q.resolved = *q.pending, nil, false
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
