package proxy

import "github.com/prometheus/client_golang/prometheus"

// metrics are the proxy's collectors, every series labelled by deployment.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	inflight *prometheus.GaugeVec
	waiting  *prometheus.GaugeVec
	unrouted prometheus.Counter
	weight   *prometheus.GaugeVec
	sides    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liftoff_proxy_requests_total",
			Help: "Requests answered by a deployment's proxy, by status class (1xx is an upgrade such as a WebSocket; 5xx includes the proxy's own 502, 503 and 504; a client that went away counts as 4xx).",
		}, []string{"deployment", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liftoff_proxy_request_duration_seconds",
			Help:    "Time from a request's arrival at the proxy to the end of its response body, waiting for an upstream included; upgraded connections are not observed.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"deployment"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liftoff_proxy_upstream_errors_total",
			Help: "Requests the deployment's container failed, by kind: connect (no connection: refused, unreachable, connect timeout), timeout (connected, no response headers in time), other (reset, closed, malformed response).",
		}, []string{"deployment", "kind"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liftoff_proxy_requests_in_flight",
			Help: "Requests a deployment's proxy is handling now, waiting ones and upgraded connections included.",
		}, []string{"deployment"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liftoff_proxy_waiting_requests",
			Help: "Requests waiting for the deployment to have a container to go to (before its first deploy, or while its upstream is unset).",
		}, []string{"deployment"}),
		unrouted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liftoff_front_door_unrouted_total",
			Help: "Requests to the front door whose Host and path no deployment's proxy names, answered 404 (without front_door.default).",
		}),
	}
	m.weight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "liftoff_canary_weight",
		Help: "Percent of a deployment's new clients its proxy sends to the canary (the new container) beside the current one; 0 without a canary.",
	}, []string{"deployment"})
	m.sides = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liftoff_canary_requests_total",
		Help: "Requests answered while a canary split is on, by side (old: the current container, new: the canary) and status class (5xx includes the proxy's own 502 and 504).",
	}, []string{"deployment", "side", "code"})
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.errors, m.inflight, m.waiting, m.unrouted, m.weight, m.sides)
	}
	return m
}

// siteMetrics are one deployment's series, looked up once per route rather
// than once per request. Removing the route deletes the series; handles
// held by requests still in flight then update nothing anyone scrapes.
type siteMetrics struct {
	codes                   [6]prometheus.Counter // by status / 100
	duration                prometheus.Observer
	connect, timeout, other prometheus.Counter
	inflight, waiting       prometheus.Gauge
	weight                  prometheus.Gauge
	sides                   [2][6]prometheus.Counter // [old, new][status / 100]
}

func (m *metrics) site(deployment string) *siteMetrics {
	s := &siteMetrics{
		duration: m.duration.WithLabelValues(deployment),
		connect:  m.errors.WithLabelValues(deployment, kindConnect),
		timeout:  m.errors.WithLabelValues(deployment, kindTimeout),
		other:    m.errors.WithLabelValues(deployment, kindOther),
		inflight: m.inflight.WithLabelValues(deployment),
		waiting:  m.waiting.WithLabelValues(deployment),
	}
	for i, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
		s.codes[i+1] = m.requests.WithLabelValues(deployment, class)
	}
	s.codes[0] = s.codes[5] // out of range: count it as the proxy's failure
	s.weight = m.weight.WithLabelValues(deployment)
	for i, side := range []string{"old", "new"} {
		for j, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
			s.sides[i][j+1] = m.sides.WithLabelValues(deployment, side, class)
		}
		s.sides[i][0] = s.sides[i][5]
	}
	return s
}

func (m *siteMetrics) count(status int) {
	i := status / 100
	if i < 1 || i > 5 {
		i = 0
	}
	m.codes[i].Inc()
}

// side counts a request answered while a canary split is on.
func (m *siteMetrics) side(canary bool, status int) {
	i, j := 0, status/100
	if canary {
		i = 1
	}
	if j < 1 || j > 5 {
		j = 0
	}
	m.sides[i][j].Inc()
}

// forget deletes the deployment's series.
func (m *metrics) forget(deployment string) {
	l := prometheus.Labels{"deployment": deployment}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
	m.inflight.DeletePartialMatch(l)
	m.waiting.DeletePartialMatch(l)
	m.weight.DeletePartialMatch(l)
	m.sides.DeletePartialMatch(l)
}
