package bench

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
)

// metrics is what the benchmarks read from /metrics.
type metrics struct {
	outcomes map[string]float64 // liftoff_deploys_total of the deployment, by outcome
	phaseSum map[string]float64 // liftoff_deploy_phase_duration_seconds_sum, by phase
	durSum   float64            // liftoff_deploy_duration_seconds_sum
	durCount float64
}

func (d *daemon) metrics() metrics {
	d.tb.Helper()
	resp, err := http.Get(d.base + "/metrics")
	if err != nil {
		d.tb.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	m := metrics{outcomes: map[string]float64{}, phaseSum: map[string]float64{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		switch {
		case strings.HasPrefix(series, "liftoff_deploys_total{") && strings.Contains(series, `deployment="`+d.name+`"`):
			m.outcomes[label(series, "outcome")] += v
		case strings.HasPrefix(series, "liftoff_deploy_phase_duration_seconds_sum{"):
			m.phaseSum[label(series, "phase")] += v
		case strings.HasPrefix(series, "liftoff_deploy_duration_seconds_sum{"):
			m.durSum += v
		case strings.HasPrefix(series, "liftoff_deploy_duration_seconds_count{"):
			m.durCount += v
		}
	}
	return m
}

func label(series, key string) string {
	_, rest, ok := strings.Cut(series, key+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// phases are liftoff's deploy steps, in order.
var phases = []string{"resolve", "pull", "prepare", "stop", "rename", "create", "start", "gate", "publish", "cleanup"}
