package history

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// KeptDeliveries is how many deliveries KeepDelivery keeps.
const KeptDeliveries = 256

// deliverySeqs hands out the places of deliveries in the list (Seq): to
// those kept in memory as they arrive, and to those written to the file
// as a batch is written (they are the rowids). A batch being written
// holds back the places after its first: Deliveries lists nothing from
// there on until the batch is committed, so that a delivery never appears
// below one that a client has listed already.
type deliverySeqs struct {
	mu       sync.Mutex
	last     int64
	inflight []int64 // the first place of each batch being written
}

// next hands out n places and returns the first.
func (q *deliverySeqs) next(n int) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.last += int64(n)
	return q.last - int64(n) + 1
}

// raise makes the places handed out next come after seq.
func (q *deliverySeqs) raise(seq int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.last = max(q.last, seq)
}

// hold hands out n places for a batch about to be written and holds the
// list back from the first until release(first).
func (q *deliverySeqs) hold(n int) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	first := q.last + 1
	q.last += int64(n)
	q.inflight = append(q.inflight, first)
	return first
}

func (q *deliverySeqs) release(first int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := slices.Index(q.inflight, first); i >= 0 {
		q.inflight = slices.Delete(q.inflight, i, i+1)
	}
}

// visible returns the first place Deliveries may not list yet
// (math.MaxInt64: none).
func (q *deliverySeqs) visible() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.inflight) == 0 {
		return math.MaxInt64
	}
	return slices.Min(q.inflight)
}

// KeepDelivery keeps d in memory only, with the newest KeptDeliveries
// others: Deliveries lists them with those recorded, and they are gone
// when the process ends. It is for deliveries that concern no deployment
// (an image none uses): they show what was pushed to no one, and a flood
// of them must neither grow the file nor cost a write each. d.Seq is set
// here.
func (s *Store) KeepDelivery(d deploy.Delivery) {
	if d.Received.IsZero() {
		d.Received = s.now()
	}
	s.kept.add(d, &s.seqs)
}

// keptDeliveries is a ring of the newest deliveries kept in memory.
type keptDeliveries struct {
	mu   sync.Mutex
	ring [KeptDeliveries]deploy.Delivery
	n    int // how many were ever kept
}

// add gives d its place and keeps it, under one lock: a place handed out
// to a kept delivery is in the ring for whoever reads it next.
func (k *keptDeliveries) add(d deploy.Delivery, seqs *deliverySeqs) {
	k.mu.Lock()
	defer k.mu.Unlock()
	d.Seq = seqs.next(1)
	k.ring[k.n%len(k.ring)] = d
	k.n++
}

// before returns the kept deliveries with a Seq below before, newest
// first, at most limit; and the last place handed out when it read them,
// so that a place up to it is either among them or a written delivery's.
func (k *keptDeliveries) before(before int64, limit int, seqs *deliverySeqs) ([]deploy.Delivery, int64) {
	k.mu.Lock()
	var ds []deploy.Delivery
	for i := range min(k.n, len(k.ring)) {
		if d := k.ring[i]; d.Seq < before {
			ds = append(ds, d)
		}
	}
	seqs.mu.Lock()
	last := seqs.last
	seqs.mu.Unlock()
	k.mu.Unlock()
	// Concurrent deliveries may have been added out of their order.
	slices.SortFunc(ds, func(a, b deploy.Delivery) int { return cmp.Compare(b.Seq, a.Seq) })
	return ds[:min(len(ds), limit)], last
}

// RecordDelivery records an accepted webhook delivery. Recording the same
// delivery id again keeps the first record: a sender retrying a delivery
// is the same delivery.
func (s *Store) RecordDelivery(ctx context.Context, d deploy.Delivery) error {
	return s.RecordDeliveries(ctx, []deploy.Delivery{d})
}

// RecordDeliveries records several deliveries in one transaction: a burst
// of webhooks costs one disk sync, not one each. Their places in the list
// (Seq, the rowid) are handed out here, in the order of ds; what ds says
// of Seq is ignored.
func (s *Store) RecordDeliveries(ctx context.Context, ds []deploy.Delivery) error {
	first := s.seqs.hold(len(ds))
	defer s.seqs.release(first)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: record deliveries: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO deliveries (rowid, id, source, image, tag, pusher, actor, received_at, accepted, ignored)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("history: record deliveries: %w", err)
	}
	defer stmt.Close()
	for i, d := range ds {
		d.Seq = first + int64(i)
		if err := s.insertDelivery(ctx, stmt, d); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: record deliveries: %w", err)
	}
	return nil
}

func (s *Store) insertDelivery(ctx context.Context, stmt *sql.Stmt, d deploy.Delivery) error {
	if d.Received.IsZero() {
		d.Received = s.now()
	}
	if d.Accepted == nil {
		d.Accepted = []string{}
	}
	if d.Ignored == nil {
		d.Ignored = []deployments.Ignored{}
	}
	accepted, err := json.Marshal(d.Accepted)
	if err != nil {
		return fmt.Errorf("history: record delivery %s: %w", d.ID, err)
	}
	ignored, err := json.Marshal(d.Ignored)
	if err != nil {
		return fmt.Errorf("history: record delivery %s: %w", d.ID, err)
	}
	args := []any{d.Seq, d.ID, d.Source, d.Image, d.Tag, d.Pusher, d.Actor, d.Received.UnixNano(), string(accepted), string(ignored)}
	_, err = stmt.ExecContext(ctx, args...)
	var serr *sqlite.Error
	if errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_ROWID {
		// Another process wrote that place (two liftoffs on one file):
		// take the next free one, and hand out places after it.
		args[0] = nil
		var res sql.Result
		if res, err = stmt.ExecContext(ctx, args...); err == nil {
			if seq, ierr := res.LastInsertId(); ierr == nil {
				s.seqs.raise(seq)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("history: record delivery %s: %w", d.ID, err)
	}
	return nil
}

// Deliveries returns deliveries newest first, those recorded and those
// kept in memory, at most limit (clamped as in List), before the cursor
// before (0: from the newest); next is the cursor of the page after, or 0
// when there is none.
func (s *Store) Deliveries(ctx context.Context, limit int, before int64) (ds []deploy.Delivery, next int64, err error) {
	limit = clampLimit(limit)
	if before <= 0 {
		before = math.MaxInt64
	}
	// What is listed is all there will ever be below its newest: the cut
	// is the last place handed out when the kept deliveries are read (the
	// places up to it are kept ones, all read, or written ones), or the
	// first place of a batch still being written after that, if lower
	// (the table, read last, holds every batch below it).
	// Places another process on the file wrote (two liftoffs, an upgrade
	// that overlaps) come before the places handed out from now on.
	var written int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM deliveries`).Scan(&written); err != nil {
		return nil, 0, fmt.Errorf("history: list deliveries: %w", err)
	}
	s.seqs.raise(written)
	kept, last := s.kept.before(before, KeptDeliveries, &s.seqs)
	before = min(before, last+1, s.seqs.visible())
	kept = slices.DeleteFunc(kept, func(d deploy.Delivery) bool { return d.Seq >= before })
	kept = kept[:min(len(kept), limit+1)]
	rows, err := s.r.QueryContext(ctx, `SELECT rowid, id, source, image, tag, pusher, actor, received_at, accepted, ignored
		FROM deliveries WHERE rowid < ? ORDER BY rowid DESC LIMIT ?`, before, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("history: list deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			d                 deploy.Delivery
			received          int64
			accepted, ignored string
		)
		if err := rows.Scan(&d.Seq, &d.ID, &d.Source, &d.Image, &d.Tag, &d.Pusher, &d.Actor, &received, &accepted, &ignored); err != nil {
			return nil, 0, fmt.Errorf("history: list deliveries: %w", err)
		}
		d.Received = fromNanos(received)
		if err := json.Unmarshal([]byte(accepted), &d.Accepted); err != nil {
			return nil, 0, fmt.Errorf("history: list deliveries: delivery %s: accepted: %w", d.ID, err)
		}
		if err := json.Unmarshal([]byte(ignored), &d.Ignored); err != nil {
			return nil, 0, fmt.Errorf("history: list deliveries: delivery %s: ignored: %w", d.ID, err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("history: list deliveries: %w", err)
	}
	if len(kept) > 0 {
		ds = append(ds, kept...)
		slices.SortFunc(ds, func(a, b deploy.Delivery) int { return cmp.Compare(b.Seq, a.Seq) })
		ds = ds[:min(len(ds), limit+1)]
	}
	if len(ds) > limit {
		ds = ds[:limit]
		next = ds[limit-1].Seq
	}
	return ds, next, nil
}
