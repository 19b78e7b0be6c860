package poll

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	polls       *prometheus.CounterVec
	duration    prometheus.Histogram
	lastSuccess *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liftoff_polls_total",
			Help: "Polls of registries by registry and outcome (unchanged, new, error, rate_limited); new counts digests no webhook had delivered.",
		}, []string{"registry", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "liftoff_poll_duration_seconds",
			Help:    "Duration of one poll: the registry's answers, and the delivery of a new digest.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liftoff_poll_last_success_timestamp_seconds",
			Help: "Unix time of the last poll of the deployment's tags that the registry answered.",
		}, []string{"deployment"}),
	}
	if reg != nil {
		reg.MustRegister(m.polls, m.duration, m.lastSuccess)
	}
	return m
}
