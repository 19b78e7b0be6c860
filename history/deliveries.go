package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Delivery is one webhook delivery or API request: who sent what, which
// deployments it was accepted for, and why the others ignored it.
type Delivery struct {
	Seq      int64 // order of recording; the cursor of Deliveries
	ID       string
	Source   string // the webhook source, or "api"
	Image    string
	Tag      string
	Pusher   string // who pushed, as the sender says
	Actor    string // the API token's name
	Received time.Time
	Accepted []string  // deployments queued
	Ignored  []Ignored // and why the others were not
}

// Ignored says why a delivery does not deploy a deployment (or, with Tag,
// is not deployable at all).
type Ignored struct {
	Deployment string `json:"deployment,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Reason     string `json:"reason"`
}

// RecordDelivery records an accepted webhook delivery. Recording the same
// delivery id again keeps the first record: a sender retrying a delivery
// is the same delivery.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) error {
	return s.RecordDeliveries(ctx, []Delivery{d})
}

// RecordDeliveries records several deliveries in one transaction: a burst
// of webhooks costs one disk sync, not one each.
func (s *Store) RecordDeliveries(ctx context.Context, ds []Delivery) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: record deliveries: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO deliveries (id, source, image, tag, pusher, actor, received_at, accepted, ignored)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("history: record deliveries: %w", err)
	}
	defer stmt.Close()
	for _, d := range ds {
		if err := s.insertDelivery(ctx, stmt, d); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: record deliveries: %w", err)
	}
	return nil
}

func (s *Store) insertDelivery(ctx context.Context, stmt *sql.Stmt, d Delivery) error {
	if d.Received.IsZero() {
		d.Received = s.now()
	}
	if d.Accepted == nil {
		d.Accepted = []string{}
	}
	if d.Ignored == nil {
		d.Ignored = []Ignored{}
	}
	accepted, err := json.Marshal(d.Accepted)
	if err != nil {
		return fmt.Errorf("history: record delivery %s: %w", d.ID, err)
	}
	ignored, err := json.Marshal(d.Ignored)
	if err != nil {
		return fmt.Errorf("history: record delivery %s: %w", d.ID, err)
	}
	_, err = stmt.ExecContext(ctx, d.ID, d.Source, d.Image, d.Tag, d.Pusher, d.Actor, d.Received.UnixNano(), string(accepted), string(ignored))
	if err != nil {
		return fmt.Errorf("history: record delivery %s: %w", d.ID, err)
	}
	return nil
}

// Deliveries returns deliveries newest first, at most limit (clamped as
// in List), recorded before the cursor before (0: from the newest); next
// is the cursor of the page after, or 0 when there is none.
func (s *Store) Deliveries(ctx context.Context, limit int, before int64) (ds []Delivery, next int64, err error) {
	limit = clampLimit(limit)
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.r.QueryContext(ctx, `SELECT rowid, id, source, image, tag, pusher, actor, received_at, accepted, ignored
		FROM deliveries WHERE rowid < ? ORDER BY rowid DESC LIMIT ?`, before, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("history: list deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			d                 Delivery
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
	if len(ds) > limit {
		ds = ds[:limit]
		next = ds[limit-1].Seq
	}
	return ds, next, nil
}
