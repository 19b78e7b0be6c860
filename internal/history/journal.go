package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// Limits of List and Deliveries: enough to look at by default, and never so
// many that one call loads the whole file.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// Begin records a deploy that starts now (r.Started, or the clock if zero)
// and returns its id. r.ID, r.Outcome, r.Error, r.Ended and r.Phases are
// ignored: a deploy is unfinished until Finish.
func (s *Store) Begin(ctx context.Context, r deploy.Record) (int64, error) {
	if r.Started.IsZero() {
		r.Started = s.now()
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO deploys
		(deployment, environment, image, tag, digest, previous_digest, "trigger", delivery, pusher,
		 step, prev_container, new_container, error, started_at, request, actor, reported_digest)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?)`,
		r.Deployment, r.Environment, r.Image, r.Tag, r.Digest, r.Previous, r.Trigger, r.Delivery, r.Pusher,
		r.Step, r.PrevID, r.NewID, r.Started.UnixNano(), r.Request, r.Actor, r.Reported)
	if err != nil {
		return 0, fmt.Errorf("history: begin deploy of %s: %w", r.Deployment, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("history: begin deploy of %s: %w", r.Deployment, err)
	}
	return id, nil
}

// Step records that deploy id is about to take step r.Step, with r's
// Digest, Previous, PrevID, NewID and the phases taken so far as they are
// now. It returns once the
// write is committed (and, with SyncFull, on disk): the engine acts only
// after.
func (s *Store) Step(ctx context.Context, id int64, r deploy.Record) error {
	if r.Step == "" {
		return fmt.Errorf("history: step of deploy %d: no step", id)
	}
	var phases []byte
	if r.Phases != nil {
		var err error
		if phases, err = json.Marshal(r.Phases); err != nil {
			return fmt.Errorf("history: step %s of deploy %d: %w", r.Step, id, err)
		}
	}
	revisions, err := revisionsJSON(r.Revisions)
	if err != nil {
		return fmt.Errorf("history: step %s of deploy %d: %w", r.Step, id, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE deploys
		SET step = ?, digest = ?, previous_digest = ?, prev_container = ?, new_container = ?,
		    phases = coalesce(?, phases), revisions = coalesce(?, revisions),
		    vouched_by = coalesce(nullif(?, 0), vouched_by), vouched_revision = coalesce(nullif(?, ''), vouched_revision)
		WHERE id = ? AND outcome IS NULL`,
		r.Step, r.Digest, r.Previous, r.PrevID, r.NewID, nullString(phases), revisions, r.VouchedBy, r.VouchedRevision, id)
	if err == nil {
		err = changed(ctx, s.w, res, id)
	}
	if err != nil {
		return fmt.Errorf("history: step %s of deploy %d: %w", r.Step, id, err)
	}
	return nil
}

// Finish records deploy id's outcome, error, end time (r.Ended, or the
// clock if zero) and phase durations. Digest, Previous, PrevID and NewID are
// updated too where r has them, so a Finish never loses what the last Step
// did not know yet. With settle, the accepted request the deploy serves is
// settled with the same outcome in the same transaction: the promise ends
// exactly when the deploy's outcome is durable.
func (s *Store) Finish(ctx context.Context, id int64, r deploy.Record, settle bool) error {
	if r.Outcome == "" {
		return fmt.Errorf("history: finish deploy %d: no outcome", id)
	}
	if r.Ended.IsZero() {
		r.Ended = s.now()
	}
	var phases []byte
	if r.Phases != nil {
		var err error
		if phases, err = json.Marshal(r.Phases); err != nil {
			return fmt.Errorf("history: finish deploy %d: %w", id, err)
		}
	}
	revisions, err := revisionsJSON(r.Revisions)
	if err != nil {
		return fmt.Errorf("history: finish deploy %d: %w", id, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deploys
			SET outcome = ?, error = ?, ended_at = ?, phases = ?,
			    revisions = coalesce(?, revisions),
			    vouched_by = coalesce(nullif(?, 0), vouched_by), vouched_revision = coalesce(nullif(?, ''), vouched_revision),
			    digest = coalesce(nullif(?, ''), digest),
			    previous_digest = coalesce(nullif(?, ''), previous_digest),
			    prev_container = coalesce(nullif(?, ''), prev_container),
			    new_container = coalesce(nullif(?, ''), new_container),
			    release_output = coalesce(nullif(?, ''), release_output),
			    backup_output = coalesce(nullif(?, ''), backup_output)
			WHERE id = ? AND outcome IS NULL`,
			string(r.Outcome), r.Error, r.Ended.UnixNano(), nullString(phases), revisions, r.VouchedBy, r.VouchedRevision,
			r.Digest, r.Previous, r.PrevID, r.NewID, r.ReleaseOutput, r.BackupOutput, id)
		if err == nil {
			err = changed(ctx, tx, res, id)
		}
		if err != nil || !settle {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE requests SET outcome = ?, reason = ?, settled_at = ?
			WHERE id = (SELECT request FROM deploys WHERE id = ?) AND outcome IS NULL`,
			string(r.Outcome), r.Error, r.Ended.UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("history: finish deploy %d: %w", id, err)
	}
	return nil
}

// tx runs f in one write transaction.
func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// querier is what changed needs: the writer or one of its transactions.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// changed turns an update of no row into the reason: no such deploy, or a
// deploy already finished.
func changed(ctx context.Context, q querier, res sql.Result, id int64) error {
	n, err := res.RowsAffected()
	if err != nil || n == 1 {
		return err
	}
	var finished bool
	err = q.QueryRowContext(ctx, "SELECT outcome IS NOT NULL FROM deploys WHERE id = ?", id).Scan(&finished)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return deploy.ErrNotFound
	case err != nil:
		return err
	case finished:
		return ErrFinished
	}
	return fmt.Errorf("updated %d rows", n)
}

func nullString(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

const deployColumns = `id, deployment, environment, image, tag, digest, previous_digest, "trigger", delivery, pusher,
	step, prev_container, new_container, outcome, error, started_at, ended_at, phases, request, actor, release_output, backup_output,
	reported_digest, revisions, vouched_by, vouched_revision,
	coalesce((SELECT v.deployment FROM deploys v WHERE v.id = deploys.vouched_by), ''),
	coalesce((SELECT r.outcome IS NULL FROM requests r WHERE r.id = deploys.request), 0)`

// Unfinished returns the deploys begun and not finished, oldest first.
func (s *Store) Unfinished(ctx context.Context) ([]deploy.Record, error) {
	rs, err := s.records(ctx, `SELECT `+deployColumns+` FROM deploys WHERE outcome IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("history: unfinished deploys: %w", err)
	}
	return rs, nil
}

// List returns the newest deploys of a deployment ("" for all), newest
// first. limit <= 0 means 50; more than 1000 means 1000.
func (s *Store) List(ctx context.Context, deployment string, limit int) ([]deploy.Record, error) {
	var (
		rs  []deploy.Record
		err error
	)
	if deployment == "" {
		rs, err = s.records(ctx, `SELECT `+deployColumns+` FROM deploys ORDER BY id DESC LIMIT ?`, clampLimit(limit))
	} else {
		rs, err = s.records(ctx, `SELECT `+deployColumns+` FROM deploys WHERE deployment = ? ORDER BY id DESC LIMIT ?`,
			deployment, clampLimit(limit))
	}
	if err != nil {
		return nil, fmt.Errorf("history: list deploys of %q: %w", deployment, err)
	}
	return rs, nil
}

// Last returns the last finished deploy of a deployment, whatever its
// outcome; false if it has none.
func (s *Store) Last(ctx context.Context, deployment string) (deploy.Record, bool, error) {
	rs, err := s.records(ctx, `SELECT `+deployColumns+` FROM deploys
		WHERE deployment = ? AND outcome IS NOT NULL ORDER BY id DESC LIMIT 1`, deployment)
	if err != nil {
		return deploy.Record{}, false, fmt.Errorf("history: last deploy of %s: %w", deployment, err)
	}
	if len(rs) == 0 {
		return deploy.Record{}, false, nil
	}
	return rs[0], true, nil
}

func (s *Store) records(ctx context.Context, query string, args ...any) ([]deploy.Record, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rs []deploy.Record
	for rows.Next() {
		var (
			r       deploy.Record
			outcome sql.NullString
			started int64
			ended   sql.NullInt64
			phases  sql.NullString
			revs    string
		)
		if err := rows.Scan(&r.ID, &r.Deployment, &r.Environment, &r.Image, &r.Tag, &r.Digest, &r.Previous,
			&r.Trigger, &r.Delivery, &r.Pusher, &r.Step, &r.PrevID, &r.NewID, &outcome, &r.Error,
			&started, &ended, &phases, &r.Request, &r.Actor, &r.ReleaseOutput, &r.BackupOutput, &r.Reported, &revs, &r.VouchedBy, &r.VouchedRevision, &r.VouchedFrom, &r.Open); err != nil {
			return nil, err
		}
		r.Outcome = deploy.Outcome(outcome.String)
		r.Started = fromNanos(started)
		if ended.Valid {
			r.Ended = fromNanos(ended.Int64)
		}
		if phases.Valid {
			if err := json.Unmarshal([]byte(phases.String), &r.Phases); err != nil {
				return nil, fmt.Errorf("deploy %d: phases: %w", r.ID, err)
			}
		}
		if revs != "" && revs != "{}" {
			if err := json.Unmarshal([]byte(revs), &r.Revisions); err != nil {
				return nil, fmt.Errorf("deploy %d: revisions: %w", r.ID, err)
			}
		}
		rs = append(rs, r)
	}
	return rs, rows.Err()
}

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Deploys returns the deploys q selects, newest first; next is the cursor
// (Before) of the page after, or 0 when there is none.
func (s *Store) Deploys(ctx context.Context, q deploy.DeployQuery) (rs []deploy.Record, next int64, err error) {
	limit := clampLimit(q.Limit)
	where := []string{"1 = 1"}
	var args []any
	for _, f := range []struct{ col, v string }{
		{"deployment", q.Deployment}, {"environment", q.Environment}, {"outcome", q.Outcome}, {"delivery", q.Delivery},
	} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	if q.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, q.Before)
	}
	args = append(args, limit+1)
	rs, err = s.records(ctx, `SELECT `+deployColumns+` FROM deploys WHERE `+strings.Join(where, " AND ")+
		` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("history: list deploys: %w", err)
	}
	if len(rs) > limit {
		rs = rs[:limit]
		next = rs[limit-1].ID
	}
	return rs, next, nil
}

// Deploy returns deploy id; false if there is none.
func (s *Store) Deploy(ctx context.Context, id int64) (deploy.Record, bool, error) {
	rs, err := s.records(ctx, `SELECT `+deployColumns+` FROM deploys WHERE id = ?`, id)
	if err != nil {
		return deploy.Record{}, false, fmt.Errorf("history: deploy %d: %w", id, err)
	}
	if len(rs) == 0 {
		return deploy.Record{}, false, nil
	}
	return rs[0], true, nil
}

// LastSucceeded returns the newest deploy of a deployment that succeeded
// with a digest other than except: what a rollback goes back to; false if
// there is none.
func (s *Store) LastSucceeded(ctx context.Context, deployment, except string) (deploy.Record, bool, error) {
	rs, err := s.records(ctx, `SELECT `+deployColumns+` FROM deploys
		WHERE deployment = ? AND outcome = ? AND digest != '' AND digest != ? ORDER BY id DESC LIMIT 1`,
		deployment, string(deploy.Succeeded), except)
	if err != nil {
		return deploy.Record{}, false, fmt.Errorf("history: last success of %s: %w", deployment, err)
	}
	if len(rs) == 0 {
		return deploy.Record{}, false, nil
	}
	return rs[0], true, nil
}

// LastSucceededAt returns when the deployment's newest successful deploy
// ended; zero if none did.
func (s *Store) LastSucceededAt(ctx context.Context, deployment string) (time.Time, error) {
	r, ok, err := s.LastSucceeded(ctx, deployment, "")
	if err != nil || !ok {
		return time.Time{}, err
	}
	return r.Ended, nil
}

// Succeeded tells whether a deploy of digest to deployment succeeded, or
// found it running already (unchanged).
func (s *Store) Succeeded(ctx context.Context, deployment, digest string) (bool, error) {
	// A deploy found the digest running already (unchanged): it passed its
	// gate once, maybe before the history began. The literal outcomes let
	// SQLite use the partial index deploys_succeeded.
	var ok bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM deploys
		WHERE deployment = ? AND digest = ? AND outcome IN ('succeeded', 'unchanged'))`, deployment, digest).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("history: did %s succeed in %s: %w", digest, deployment, err)
	}
	return ok, nil
}

// Vouched returns the newest deploy of deployment that succeeded (or found
// its image running) with an image whose label held revision; false if
// none did.
func (s *Store) Vouched(ctx context.Context, deployment, label, revision string) (deploy.Record, bool, error) {
	rs, err := s.records(ctx, `SELECT `+deployColumns+` FROM deploys
		WHERE deployment = ? AND outcome IN ('succeeded', 'unchanged')
		  AND EXISTS (SELECT 1 FROM json_each(deploys.revisions) WHERE key = ? AND value = ?)
		ORDER BY id DESC LIMIT 1`, deployment, label, revision)
	if err != nil {
		return deploy.Record{}, false, fmt.Errorf("history: did revision %s succeed in %s: %w", revision, deployment, err)
	}
	if len(rs) == 0 {
		return deploy.Record{}, false, nil
	}
	return rs[0], true, nil
}

// revisionsJSON is a deploy's revisions as stored; nil (keep what is
// stored) when it has none.
func revisionsJSON(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}
