package daemon

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftoff-deploy/liftoff/internal/history"
)

// pruneBatch is how many rows of a table one prune transaction deletes:
// small enough that a journal write waiting behind it waits milliseconds.
const pruneBatch = 500

// historyTables are the values of liftoff_history_rows' table label.
var historyTables = []string{"deliveries", "requests", "deploys"}

func newHistoryRows(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "liftoff",
		Name:      "history_rows",
		Help:      "Rows of the history file's tables that history_retention bounds (deliveries, requests, deploys), counted after each prune.",
	}, []string{"table"})
	reg.MustRegister(g)
	return g
}

// pruneHistory prunes the history to history_retention at once and then
// every interval until ctx is done. It runs beside the hooks and deploys,
// never on their path: each batch is one short transaction of its own,
// with a pause between batches that lets the journal's writes in.
func (a *Daemon) pruneHistory(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		a.prunePass(ctx)
		if a.opts.OnPrune != nil {
			a.opts.OnPrune()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prunePass deletes everything beyond the retention of the config now in
// use, batch after batch, then counts the rows.
func (a *Daemon) prunePass(ctx context.Context) {
	r := a.cfg.Load().HistoryRetention
	keep := history.Retention{DeliveryAge: r.DeliveryAge, MaxDeliveries: r.MaxDeliveries, Deploys: r.Deploys}
	var total history.Pruned
	for ctx.Err() == nil {
		p, err := a.history.Prune(ctx, keep, pruneBatch)
		total.Deliveries += p.Deliveries
		total.Requests += p.Requests
		total.Deploys += p.Deploys
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn().Err(err).Msg("pruning the history failed; trying again at the next prune")
			}
			break
		}
		if p.Deliveries < pruneBatch && p.Requests < pruneBatch && p.Deploys < pruneBatch {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	if total.Total() > 0 {
		a.log.Info().Int("deliveries", total.Deliveries).Int("requests", total.Requests).Int("deploys", total.Deploys).
			Msg("history pruned to history_retention")
	}
	rows, err := a.history.Rows(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("counting the history's rows failed")
		}
		return
	}
	for _, table := range historyTables {
		a.historyRows.WithLabelValues(table).Set(float64(rows[table]))
	}
}
