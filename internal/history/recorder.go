package history

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// recordQueue is how many deliveries wait for the recorder before Record
// drops them.
const recordQueue = 1024

// recordBatchWindow is how long the recorder gathers deliveries after the
// first before it writes them in one transaction: under a flood of
// webhooks the commit, not the rows, is what costs (measured: a quarter
// of liftoff's CPU at 9k deliveries a second when each batch was what
// happened to be queued).
const recordBatchWindow = 25 * time.Millisecond

// Recorder writes deliveries to the store from a goroutine of its own
// (Run), so that a webhook's answer never waits for the disk: the deploy
// requests themselves are journaled before the answer, by the engine; the
// delivery is the list users read. A full queue drops the record, never
// the answer.
type Recorder struct {
	store *Store
	log   zerolog.Logger

	queue  chan deploy.Delivery
	mu     sync.RWMutex
	closed bool
	// dropped counts the deliveries not recorded since Run last said so
	// (the queue was full).
	dropped atomic.Int64
}

// NewRecorder returns a recorder of deliveries to s; Run writes them.
func NewRecorder(s *Store, log zerolog.Logger) *Recorder {
	return &Recorder{store: s, log: log, queue: make(chan deploy.Delivery, recordQueue)}
}

// Record queues d to be written, without waiting: with the queue full, d
// is counted and dropped. After Close it does nothing (a handler that
// outlived the shutdown).
func (r *Recorder) Record(d deploy.Delivery) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	select {
	case r.queue <- d:
	default:
		// Counted, and logged by Run once per batch: a flood of
		// deliveries must not also be a flood of log lines.
		r.dropped.Add(1)
	}
}

// Close ends Run once it has written what is queued.
func (r *Recorder) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
}

// Run writes the deliveries Record queues, those arriving within
// recordBatchWindow of each other in one transaction, until Close and the
// queue is drained.
func (r *Recorder) Run() {
	batch := make([]deploy.Delivery, 0, cap(r.queue))
	for d := range r.queue {
		batch = append(batch[:0], d)
		window := time.NewTimer(recordBatchWindow)
	more:
		for len(batch) < cap(batch) {
			select {
			case d, ok := <-r.queue:
				if !ok {
					break more
				}
				batch = append(batch, d)
			case <-window.C:
				break more
			}
		}
		window.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := r.store.RecordDeliveries(ctx, batch); err != nil {
			r.log.Error().Err(err).Int("deliveries", len(batch)).Str("first", batch[0].ID).Msg("history: could not record deliveries")
		}
		cancel()
		if n := r.dropped.Swap(0); n > 0 {
			r.log.Warn().Int64("deliveries", n).Msg("history: too many deliveries to record at once; these are not in the deliveries list (their deploys are journaled)")
		}
	}
}
