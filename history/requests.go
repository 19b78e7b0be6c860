package history

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/liftoff-deploy/liftoff/deploy"
)

// Accept records requests the engine took, in one transaction, and returns
// their ids in order. It returns once they are committed (with SyncFull, on
// disk): only then does the sender get its answer.
func (s *Store) Accept(ctx context.Context, rs []deploy.Request) ([]int64, error) {
	ids := make([]int64, 0, len(rs))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, r := range rs {
			if r.Received.IsZero() {
				r.Received = s.now()
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO requests
				(deployment, image, tag, digest, "trigger", delivery, pusher, received_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				r.Deployment, r.Image, r.Tag, r.Digest, r.Trigger, r.Delivery, r.Pusher, r.Received.UnixNano())
			if err != nil {
				return err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history: accept requests: %w", err)
	}
	return ids, nil
}

// Settle closes open requests with an outcome and a reason; requests
// already settled keep theirs.
func (s *Store) Settle(ctx context.Context, ids []int64, o deploy.Outcome, why string) error {
	if len(ids) == 0 {
		return nil
	}
	if o == "" {
		return fmt.Errorf("history: settle requests: no outcome")
	}
	args := []any{string(o), why, s.now().UnixNano()}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.w.ExecContext(ctx, `UPDATE requests SET outcome = ?, reason = ?, settled_at = ?
		WHERE outcome IS NULL AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return fmt.Errorf("history: settle requests: %w", err)
	}
	return nil
}

// Open returns the requests not settled yet, oldest first, with how many
// deploys of each began (all of them interrupted: a deploy that reached
// its outcome settled its request).
func (s *Store) Open(ctx context.Context) ([]deploy.Request, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.id, r.deployment, r.image, r.tag, r.digest, r."trigger",
		r.delivery, r.pusher, r.received_at,
		(SELECT count(*) FROM deploys d WHERE d.request = r.id)
		FROM requests r WHERE r.outcome IS NULL ORDER BY r.id`)
	if err != nil {
		return nil, fmt.Errorf("history: open requests: %w", err)
	}
	defer rows.Close()
	var out []deploy.Request
	for rows.Next() {
		var (
			r        deploy.Request
			received int64
		)
		if err := rows.Scan(&r.ID, &r.Deployment, &r.Image, &r.Tag, &r.Digest, &r.Trigger,
			&r.Delivery, &r.Pusher, &received, &r.Attempts); err != nil {
			return nil, fmt.Errorf("history: open requests: %w", err)
		}
		r.Received = fromNanos(received)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: open requests: %w", err)
	}
	return out, nil
}
