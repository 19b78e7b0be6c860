package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Retention says what Prune may delete: deliveries older than
// DeliveryAge, or beyond the MaxDeliveries newest; settled requests
// older than DeliveryAge; and each deployment's deploys beyond its Deploys
// newest, except those rollback and promote_from still need. A zero field
// prunes nothing of its kind.
type Retention struct {
	DeliveryAge   time.Duration
	MaxDeliveries int
	Deploys       int
}

// Pruned counts the rows one Prune call deleted, by table.
type Pruned struct{ Deliveries, Requests, Deploys int }

// Total is how many rows were deleted in all.
func (p Pruned) Total() int { return p.Deliveries + p.Requests + p.Deploys }

// Prune deletes at most batch rows of each table beyond r, oldest first,
// each table in a short transaction of its own, so that the journal's
// writes wait for one small batch at most. Call it again while it deletes
// a full batch of any table.
//
// It never deletes the journal's open work: an unfinished deploy, a
// request still open (queued, held, pending), the delivery such a request
// came from, or a deploy serving an open request. Of each deployment's
// deploys beyond the newest r.Deploys it keeps the newest success
// of each of its r.Deploys newest succeeded digests, and the newest
// unchanged deploy of each of its r.Deploys newest digests found running:
// what a rollback goes back to (the newest success of another digest than
// the running one) and what promote_from asks of a source deployment (that
// the digest succeeded or was found running there).
//
// SQLite does not shrink its file on DELETE: the pages freed go to the
// file's free list, and later inserts reuse them, so the file stays at the
// size its retained rows once needed instead of growing.
func (s *Store) Prune(ctx context.Context, r Retention, batch int) (Pruned, error) {
	var p Pruned
	var err error
	if r.DeliveryAge > 0 || r.MaxDeliveries > 0 {
		if p.Deliveries, err = s.pruneDeliveries(ctx, r, batch); err != nil {
			return p, err
		}
	}
	if r.DeliveryAge > 0 {
		cutoff := s.now().Add(-r.DeliveryAge).UnixNano()
		if p.Requests, err = s.prune(ctx, "requests", `DELETE FROM requests WHERE id IN (
			SELECT id FROM requests WHERE outcome IS NOT NULL AND settled_at < ? ORDER BY id LIMIT ?)`, cutoff, batch); err != nil {
			return p, err
		}
	}
	if r.Deploys > 0 {
		if p.Deploys, err = s.pruneDeploys(ctx, r.Deploys, batch); err != nil {
			return p, err
		}
	}
	return p, nil
}

// pruneDeploys picks a batch of deploys to delete on a reader, where the
// window functions over the whole table cost the journal's writes
// nothing, then deletes them in a short write transaction. What was
// picked stays prunable meanwhile: a deploy that ended never reopens, and
// the deploys and requests written since are newer, so they can only
// make it less needed.
func (s *Store) pruneDeploys(ctx context.Context, keep, batch int) (int, error) {
	rows, err := s.r.QueryContext(ctx, doomedDeploys, keep, keep, batch)
	if err != nil {
		return 0, fmt.Errorf("history: prune deploys: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("history: prune deploys: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("history: prune deploys: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	return s.prune(ctx, "deploys", `DELETE FROM deploys WHERE outcome IS NOT NULL AND id IN (`+marks+`)`, ids...)
}

// doomedDeploys selects a batch of deploys beyond each deployment's
// newest N (the first two arguments), but those Prune promises to keep.
const doomedDeploys = `WITH wins AS (
	SELECT id, deployment, outcome,
		ROW_NUMBER() OVER (PARTITION BY deployment, outcome, digest ORDER BY id DESC) AS n
	FROM deploys WHERE outcome IN ('succeeded', 'unchanged') AND digest != ''
), needed AS (
	SELECT id FROM (
		SELECT id, ROW_NUMBER() OVER (PARTITION BY deployment, outcome ORDER BY id DESC) AS n FROM wins WHERE n = 1
	) WHERE n <= ?
), ranked AS (
	SELECT id, request, outcome, ROW_NUMBER() OVER (PARTITION BY deployment ORDER BY id DESC) AS n FROM deploys
)
SELECT id FROM ranked
WHERE n > ? AND outcome IS NOT NULL
	AND id NOT IN needed
	AND NOT (request != 0 AND request IN (SELECT id FROM requests WHERE outcome IS NULL))
ORDER BY id LIMIT ?`

// pruneDeliveries deletes a batch of deliveries older than the age or
// beyond the newest MaxDeliveries, except those an open request came from.
func (s *Store) pruneDeliveries(ctx context.Context, r Retention, batch int) (int, error) {
	cutoff := int64(-1 << 63)
	if r.DeliveryAge > 0 {
		cutoff = s.now().Add(-r.DeliveryAge).UnixNano()
	}
	// The newest rowid beyond the MaxDeliveries newest: rowids are the
	// deliveries' places in the list, in the order they were written.
	last := int64(0)
	if r.MaxDeliveries > 0 {
		err := s.r.QueryRowContext(ctx, `SELECT rowid FROM deliveries ORDER BY rowid DESC LIMIT 1 OFFSET ?`, r.MaxDeliveries).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("history: prune deliveries: %w", err)
		}
	}
	return s.prune(ctx, "deliveries", `DELETE FROM deliveries WHERE rowid IN (
		SELECT rowid FROM deliveries d WHERE (d.rowid <= ? OR d.received_at < ?)
			AND NOT EXISTS (SELECT 1 FROM requests q WHERE q.outcome IS NULL AND q.delivery = d.id)
		ORDER BY rowid LIMIT ?)`, last, cutoff, batch)
}

// prune runs one DELETE in a transaction of its own.
func (s *Store) prune(ctx context.Context, table, query string, args ...any) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("history: prune %s: %w", table, err)
	}
	return int(n), nil
}

// Rows counts the rows of each table the history grows by: deliveries,
// requests and deploys.
func (s *Store) Rows(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range []string{"deliveries", "requests", "deploys"} {
		var n int64
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("history: count %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}
