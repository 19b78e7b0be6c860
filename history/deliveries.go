package history

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Delivery is one webhook delivery that queued deploys: who sent what,
// and which deployments it was accepted for.
type Delivery struct {
	ID       string
	Source   string
	Image    string
	Tag      string
	Pusher   string
	Received time.Time
	Accepted []string // deployments queued
}

// RecordDelivery records an accepted webhook delivery. Recording the same
// delivery id again keeps the first record: a sender retrying a delivery
// is the same delivery.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) error {
	if d.Received.IsZero() {
		d.Received = s.now()
	}
	accepted, err := json.Marshal(d.Accepted)
	if err != nil {
		return fmt.Errorf("history: record delivery %s: %w", d.ID, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO deliveries (id, source, image, tag, pusher, received_at, accepted)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Source, d.Image, d.Tag, d.Pusher, d.Received.UnixNano(), string(accepted))
	if err != nil {
		return fmt.Errorf("history: record delivery %s: %w", d.ID, err)
	}
	return nil
}

// Deliveries returns the newest deliveries, newest first, at most limit
// (clamped as in List).
func (s *Store) Deliveries(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, source, image, tag, pusher, received_at, accepted
		FROM deliveries ORDER BY received_at DESC, rowid DESC LIMIT ?`, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("history: list deliveries: %w", err)
	}
	defer rows.Close()
	var ds []Delivery
	for rows.Next() {
		var (
			d        Delivery
			received int64
			accepted string
		)
		if err := rows.Scan(&d.ID, &d.Source, &d.Image, &d.Tag, &d.Pusher, &received, &accepted); err != nil {
			return nil, fmt.Errorf("history: list deliveries: %w", err)
		}
		d.Received = fromNanos(received)
		if err := json.Unmarshal([]byte(accepted), &d.Accepted); err != nil {
			return nil, fmt.Errorf("history: list deliveries: delivery %s: accepted: %w", d.ID, err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: list deliveries: %w", err)
	}
	return ds, nil
}
