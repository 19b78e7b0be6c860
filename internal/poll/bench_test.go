package poll_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/poll"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// BenchmarkPollSteady polls 200 deployments on 20 repositories (10 each,
// one exact tag) against the in-memory test registry, in the steady state
// (nothing new), on the real clock with the interval compressed 100x:
// 100ms stands for 10s. It reports the process's CPU time over wall time
// divided by the compression (cpu_%_of_core_at_10s: the share of one core
// at a real 10s interval), and RSS at the start and after each quarter
// of the run. The registry
// serves in the same process, so the CPU figure is an upper bound for the
// poller. Run it alone, once:
//
//	POLL_BENCH_DURATION=60s go test -run '^$' -bench PollSteady -benchtime 1x ./internal/poll/
func BenchmarkPollSteady(b *testing.B) {
	const compress = 100
	const interval = 10 * time.Second / compress
	dur := 30 * time.Second
	if s := os.Getenv("POLL_BENCH_DURATION"); s != "" {
		var err error
		if dur, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	reg := testenv.Registry(b)
	var y strings.Builder
	y.WriteString("deployments:\n")
	digests := map[string][]string{}
	f := &fixture{reg: reg}
	for r := range 20 {
		repo := fmt.Sprintf("acme/bench%d", r)
		digest := f.push(b, repo, "staging")
		for i := range 10 {
			name := fmt.Sprintf("r%dd%d", r, i)
			digests[name] = []string{digest}
			fmt.Fprintf(&y, "  - name: %s\n    image: %s/%s\n    tags: [staging]\n    poll: {interval: %s}\n", name, reg.Host(), repo, time.Second)
		}
	}
	cfg, err := deployments.Parse([]byte(y.String()), b.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	dc, err := docker.New("unix:///nonexistent.sock", nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	f.metrics = metrics
	p := poll.New(poll.Options{
		Registry:   dc,
		Config:     func() *deployments.Config { return cfg },
		Deliver:    func(context.Context, poll.Push) error { b.Error("delivered in the steady state"); return nil },
		Current:    func(_ context.Context, d string) ([]string, error) { return digests[d], nil },
		Logger:     zerolog.Nop(),
		Registerer: metrics,
		// The config's 1s interval, compressed: After waits a hundredth.
		After: func(d time.Duration) <-chan time.Time { return time.After(d * interval / time.Second) },
		Now:   compressedClock(interval),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	time.Sleep(2 * interval) // every target polled once
	runtime.GC()
	rssStart := rssMB(b)
	pollsStart := f.count(b, "unchanged")
	cpuStart, wallStart := cpuTime(b), time.Now()
	b.ResetTimer()
	// RSS at the end of each quarter: flat, or growing with the polls.
	var quarters [4]float64
	for q := range quarters {
		time.Sleep(dur / 4)
		runtime.GC()
		quarters[q] = rssMB(b)
	}
	cpu, wall := cpuTime(b)-cpuStart, time.Since(wallStart)
	b.StopTimer()
	cancel()
	<-done
	polls := float64(f.count(b, "unchanged") - pollsStart)
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds()/compress, "cpu_%_of_core_at_10s")
	b.ReportMetric(float64(cpu.Microseconds())/polls, "cpu_µs/poll")
	b.ReportMetric(rssStart, "rss_MB_start")
	for q, mb := range quarters {
		b.ReportMetric(mb, fmt.Sprintf("rss_MB_q%d", q+1))
	}
	b.ReportMetric(polls, "polls")
	b.ReportMetric(polls/(wall.Seconds()*compress/10), "polls/10s")
}

// compressedClock runs time faster by the compression, so that a poll's
// "next" and the wait the poller asks After for agree.
func compressedClock(interval time.Duration) func() time.Time {
	start := time.Now()
	return func() time.Time {
		return start.Add(time.Since(start) * time.Second / interval)
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssMB(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}
