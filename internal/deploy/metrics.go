package deploy

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

type metrics struct {
	deploys     *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	phase       *prometheus.HistogramVec
	inProgress  prometheus.Gauge
	queueDepth  prometheus.Gauge
	deployed    *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	repairs     *prometheus.CounterVec
	down        *prometheus.GaugeVec
	previews    *prometheus.GaugeVec

	// engineOf names the engine a deployment runs on, in the config in
	// force: the engine label of deployed_info, which callers leave out.
	engineOf func(deployment string) string

	mu             sync.Mutex
	deployedLabels map[string]prometheus.Labels // deployment → labels of its deployed_info series
}

func newMetrics(reg prometheus.Registerer, engineOf func(deployment string) string) *metrics {
	m := &metrics{
		engineOf: engineOf,
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liftoff_deploys_total",
			Help: "Deploys by deployment, environment and outcome (succeeded, failed, rolled_back, unchanged, superseded, refused, expired, rejected).",
		}, []string{"deployment", "environment", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liftoff_deploy_duration_seconds",
			Help:    "Duration of a deploy from dequeue to outcome.",
			Buckets: []float64{0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
		}, []string{"deployment", "environment"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liftoff_deploy_phase_duration_seconds",
			Help:    "Duration of each deploy step (resolve, pull, prepare, backup, release, service, stop, rename, create, start, gate, publish, cleanup, rollback).",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}, []string{"phase"}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liftoff_deploys_in_progress",
			Help: "Deploys running now.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liftoff_deploy_queue_depth",
			Help: "Deploy requests waiting behind a running deploy of the same deployment.",
		}),
		deployed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liftoff_deployed_info",
			Help: "What each deployment runs now, and on which engine (value 1).",
		}, []string{"deployment", "environment", "engine", "image", "tag", "digest"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liftoff_last_deploy_success_timestamp_seconds",
			Help: "Unix time of each deployment's last successful deploy.",
		}, []string{"deployment"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liftoff_repairs_total",
			Help: "Repairs of interrupted deploys by reconcile, by deployment and outcome (finished, restored, removed, untouched, down).",
		}, []string{"deployment", "outcome"}),
		down: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liftoff_deployment_down",
			Help: "1 while a rollback or repair could not leave the deployment with a container that passes its health gate.",
		}, []string{"deployment"}),
		previews: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liftoff_previews",
			Help: "Previews (deployments[].previews) running now, by the deployment they preview.",
		}, []string{"deployment"}),
		deployedLabels: map[string]prometheus.Labels{},
	}
	reg.MustRegister(m.deploys, m.duration, m.phase, m.inProgress, m.queueDepth, m.deployed, m.lastSuccess, m.repairs, m.down, m.previews)
	return m
}

// outcomes are the values of liftoff_deploys_total's outcome label.
var outcomes = []Outcome{Succeeded, Failed, RolledBack, Unchanged, Superseded, Refused, Expired, Rejected, Deferred}

// seed makes a liftoff_deploys_total series at 0 for each outcome of each
// deployment, so that increase() sees a deployment's first failure (a
// series born at 1 would not count), and sets each deployment's last
// success from the journal, so that it survives a restart. A journal that
// cannot say leaves it unset.
func (e *Engine) seedMetrics(ctx context.Context) {
	cfg := e.opts.Config()
	if cfg == nil {
		return
	}
	for _, d := range cfg.All() {
		for _, o := range outcomes {
			e.metrics.deploys.WithLabelValues(d.Name, d.Environment, string(o))
		}
		j := e.opts.Journal
		if j == nil {
			continue
		}
		t, err := j.LastSucceededAt(ctx, d.Name)
		switch {
		case err != nil:
			e.log.Warn().Err(err).Str("deployment", d.Name).Msg("metrics: the last successful deploy could not be read from the journal")
		case !t.IsZero():
			e.metrics.lastSuccess.WithLabelValues(d.Name).Set(float64(t.Unix()))
		}
	}
}

// setDeployed makes l the only deployed_info series of its deployment;
// its engine label is the deployment's engine now, unless l has one.
func (m *metrics) setDeployed(l prometheus.Labels) {
	if _, ok := l["engine"]; !ok {
		l["engine"] = deployments.LocalEngine
		if m.engineOf != nil {
			l["engine"] = m.engineOf(l["deployment"])
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.deployedLabels[l["deployment"]]; ok {
		m.deployed.Delete(old)
	}
	m.deployedLabels[l["deployment"]] = l
	m.deployed.With(l).Set(1)
}
