package webhooks

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a delivery, the outcome label of liftoff_webhooks_total.
const (
	outcomeAccepted     = "accepted"     // at least one deploy queued
	outcomeIgnored      = "ignored"      // valid, nothing to deploy
	outcomeUnauthorized = "unauthorized" // unknown source or token (404), wrong signature or Authorization (401)
	outcomeInvalid      = "invalid"      // 400
	outcomeTooLarge     = "too_large"    // 413
	outcomeUnavailable  = "unavailable"  // 503: draining, no config, too busy
	outcomeRateLimited  = "rate_limited" // 429
	outcomeError        = "error"        // 500: a bug
)

// outcomeOf is the outcome label of a delivery refused with status.
func outcomeOf(status int) string {
	switch status {
	case http.StatusNotFound, http.StatusUnauthorized:
		return outcomeUnauthorized
	case http.StatusBadRequest:
		return outcomeInvalid
	case http.StatusRequestEntityTooLarge:
		return outcomeTooLarge
	case http.StatusServiceUnavailable:
		return outcomeUnavailable
	case http.StatusTooManyRequests:
		return outcomeRateLimited
	}
	return outcomeError
}

// sourceUnknown labels deliveries to a source liftoff does not serve, so that
// made-up sources cannot grow the label set.
const sourceUnknown = "unknown"

type metrics struct {
	webhooks *prometheus.CounterVec
	// byLabels holds the counter of each source and outcome a delivery
	// can have, looked up once: a delivery then counts without hashing
	// its labels or taking the vector's lock.
	byLabels map[string]map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, sources map[string]source) *metrics {
	webhooks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liftoff_webhooks_total",
		Help: "Webhook deliveries received, by source and outcome.",
	}, []string{"source", "outcome"})
	webhooks = register(reg, webhooks)
	m := &metrics{webhooks: webhooks, byLabels: map[string]map[string]prometheus.Counter{}}

	// Every series a known source can have exists from the start, at 0, so
	// that rate() and alerts see the first delivery.
	for src := range sources {
		m.curry(src, outcomeAccepted, outcomeIgnored, outcomeUnauthorized,
			outcomeInvalid, outcomeTooLarge, outcomeUnavailable, outcomeRateLimited)
	}
	m.curry(sourceUnknown, outcomeUnauthorized, outcomeUnavailable, outcomeRateLimited)
	return m
}

// curry creates the series of source and outcomes, and keeps their
// counters.
func (m *metrics) curry(source string, outcomes ...string) {
	byOutcome := m.byLabels[source]
	if byOutcome == nil {
		byOutcome = map[string]prometheus.Counter{}
		m.byLabels[source] = byOutcome
	}
	for _, o := range outcomes {
		byOutcome[o] = m.webhooks.WithLabelValues(source, o)
	}
}

// register registers c on reg, or returns the identical collector already
// there (a second Handler on the same registry shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("webhooks: register metrics: %v", err))
}

func (m *metrics) webhook(source, outcome string) {
	if c, ok := m.byLabels[source][outcome]; ok {
		c.Inc()
		return
	}
	// A series not made at the start (outcome error: a bug).
	m.webhooks.WithLabelValues(source, outcome).Inc()
}
