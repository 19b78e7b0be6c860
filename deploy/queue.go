package deploy

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

// Enqueue asks for a deploy. It never blocks: if the deployment is idle the
// deploy starts now; if one runs, r waits behind it, replacing (superseding)
// any request already waiting. A request identical to the running one that
// arrives before it has resolved its digest is redundant and dropped: the
// running deploy will see the same tag.
func (e *Engine) Enqueue(r Request) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if r.Received.IsZero() {
		r.Received = e.opts.Now()
	}
	j := deployJob(r)
	q, busy := e.queues[r.Deployment]
	if !busy {
		e.startLocked(j)
		return nil
	}
	switch {
	case q.pending != nil && j.redundant(*q.pending):
		// a duplicate delivery of what already waits
	case q.pending == nil && !q.resolved && j.redundant(q.current):
		// a duplicate of the running deploy, which has not looked up the tag yet
	case q.pending != nil:
		e.supersede(q.pending.request, r)
		q.pending = &j
	default:
		q.pending = &j
		e.metrics.queueDepth.Inc()
	}
	return nil
}

// startLocked gives an idle deployment a queue that runs j now. e.mu is held.
func (e *Engine) startLocked(j job) {
	q := &queue{current: j}
	e.queues[j.deployment] = q
	e.wg.Add(1)
	go e.work(q)
}

func (e *Engine) supersede(old, by Request) {
	env := ""
	if d := e.opts.Config().Deployment(old.Deployment); d != nil {
		env = d.Environment
	}
	e.metrics.deploys.WithLabelValues(old.Deployment, env, string(Superseded)).Inc()
	e.log.Info().Str("deployment", old.Deployment).Str("tag", old.Tag).Str("delivery", old.Delivery).
		Str("superseded_by", by.Delivery).Str("outcome", string(Superseded)).Msg("deploy superseded before it started")
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
			e.log.Warn().Str("deployment", name).Str("tag", q.pending.request.Tag).Str("delivery", q.pending.request.Delivery).
				Msg("shutting down: waiting deploy dropped; push again once liftoff is back")
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
