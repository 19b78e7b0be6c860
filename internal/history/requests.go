package history

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
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
			state := r.State
			if state == "" {
				state = deploy.Queued
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO requests
				(deployment, image, tag, digest, "trigger", delivery, pusher, actor, received_at, state, expires_at, until_at, reported)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.Deployment, r.Image, r.Tag, r.Digest, r.Trigger, r.Delivery, r.Pusher, r.Actor,
				r.Received.UnixNano(), string(state), nullTime(r.Expires), nullTime(r.Until), r.Reported)
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

// OpenRequests returns the requests not settled yet, oldest first, with how many
// deploys of each began (all of them interrupted: a deploy that reached
// its outcome settled its request), not counting those deferred by
// min_image_age, which end without settling it.
func (s *Store) OpenRequests(ctx context.Context) ([]deploy.Request, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.id, r.deployment, r.image, r.tag, r.digest, r."trigger",
		r.delivery, r.pusher, r.actor, r.received_at, r.state, r.expires_at, r.until_at, r.reported,
		(SELECT count(*) FROM deploys d WHERE d.request = r.id AND coalesce(d.outcome, '') != 'deferred')
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
			state    string
			expires  sql.NullInt64
			until    sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.Deployment, &r.Image, &r.Tag, &r.Digest, &r.Trigger,
			&r.Delivery, &r.Pusher, &r.Actor, &received, &state, &expires, &until, &r.Reported, &r.Attempts); err != nil {
			return nil, fmt.Errorf("history: open requests: %w", err)
		}
		r.Received = fromNanos(received)
		r.State = deploy.Disposition(state)
		if expires.Valid {
			r.Expires = fromNanos(expires.Int64)
		}
		if until.Valid {
			r.Until = fromNanos(until.Int64)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: open requests: %w", err)
	}
	return out, nil
}

// Move records that open request id now waits as state, with actor (who
// approved it) when not "".
func (s *Store) Move(ctx context.Context, id int64, state deploy.Disposition, actor string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE requests SET state = ?, actor = coalesce(nullif(?, ''), actor)
		WHERE id = ? AND outcome IS NULL`, string(state), actor, id)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n != 1 {
			err = fmt.Errorf("no open request %d", id)
		}
	}
	if err != nil {
		return fmt.Errorf("history: move request %d to %s: %w", id, state, err)
	}
	return nil
}

// Paused returns the deployments paused now, by name.
func (s *Store) Paused(ctx context.Context) ([]deploy.Pause, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT deployment, actor, since FROM paused ORDER BY deployment`)
	if err != nil {
		return nil, fmt.Errorf("history: paused deployments: %w", err)
	}
	defer rows.Close()
	var out []deploy.Pause
	for rows.Next() {
		p := deploy.Pause{Paused: true}
		var since int64
		if err := rows.Scan(&p.Deployment, &p.Actor, &since); err != nil {
			return nil, fmt.Errorf("history: paused deployments: %w", err)
		}
		p.Since = fromNanos(since)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: paused deployments: %w", err)
	}
	return out, nil
}

// SetPaused pauses (p.Paused) or resumes a deployment.
func (s *Store) SetPaused(ctx context.Context, p deploy.Pause) error {
	var err error
	if p.Paused {
		if p.Since.IsZero() {
			p.Since = s.now()
		}
		_, err = s.w.ExecContext(ctx, `INSERT INTO paused (deployment, actor, since) VALUES (?, ?, ?)
			ON CONFLICT (deployment) DO UPDATE SET actor = excluded.actor, since = excluded.since`,
			p.Deployment, p.Actor, p.Since.UnixNano())
	} else {
		_, err = s.w.ExecContext(ctx, `DELETE FROM paused WHERE deployment = ?`, p.Deployment)
	}
	if err != nil {
		return fmt.Errorf("history: pause %s: %w", p.Deployment, err)
	}
	return nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// Cool records that open request id waits, its image too young for
// min_image_age, until until. Safe to repeat.
func (s *Store) Cool(ctx context.Context, id int64, until time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE requests SET state = ?, until_at = ?
		WHERE id = ? AND outcome IS NULL`, string(deploy.Cooling), until.UnixNano(), id)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n != 1 {
			err = fmt.Errorf("no open request %d", id)
		}
	}
	if err != nil {
		return fmt.Errorf("history: cool request %d: %w", id, err)
	}
	return nil
}

// FirstSeen returns when the first deploy of deployment that knew digest
// began; zero if none did.
func (s *Store) FirstSeen(ctx context.Context, deployment, digest string) (time.Time, error) {
	var first sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(started_at) FROM deploys WHERE deployment = ? AND digest = ?`,
		deployment, digest).Scan(&first)
	if err != nil {
		return time.Time{}, fmt.Errorf("history: when %s first saw %s: %w", deployment, digest, err)
	}
	if !first.Valid {
		return time.Time{}, nil
	}
	return fromNanos(first.Int64), nil
}
