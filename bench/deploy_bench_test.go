package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// Every benchmark here deploys a new version per iteration: a new image
// (the 6.6 MB test app, 3 MB compressed, in one layer no other image
// shares) is pushed to an in-memory registry on 127.0.0.1 that stands in
// for Docker Hub, outside the timed part. Run them with -benchtime=5x or
// so: an iteration takes seconds. See README.md for what the numbers mean.

// servingTimeout bounds the wait for a new version to answer.
const servingTimeout = 2 * time.Minute

// BenchmarkWebhookToServing measures webhook → the new version answers on
// the published port, through the liftoff binary with a stop-first
// deployment. ns/op is that time; serving-ms says the same in ms, done-ms
// is webhook → liftoff counts the deploy as succeeded (after the health
// gate), and the phase columns are liftoff's own timings of each step.
//
// min_uptime=1ms makes the gate nearly free (0 means the default, 3s), so
// that done-ms shows liftoff's own overhead; min_uptime=default is what a
// user gets without setting it.
func BenchmarkWebhookToServing(b *testing.B) {
	for _, c := range []struct{ name, minUptime string }{
		{"min_uptime=1ms", "1ms"},
		{"min_uptime=default", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			eng := testenv.Engine(b)
			port := freePort(b)
			runLiftoff(b, eng, target{strategy: "stop-first", minUptime: c.minUptime, port: port},
				func(b *testing.B, _ *testenv.Reg) *recorder { return hostPoller(b, port) })
		})
	}
}

// BenchmarkSwapDowntime measures what a client sending a request every
// 10ms (each on a new connection, without waiting for the previous one)
// sees during a swap, with the default health gate. By the time requests
// were sent: failed-req is the requests without an answer (error, or none
// within 2s); downtime-ms runs from the last answered request before the
// first failed one to the first answered one after the last failed one (0
// when nothing failed); outage-ms is the same for the longest run of
// failures in a row; stalled-req is answers slower than 200ms, and
// slowest-ok-ms the slowest.
//
// stop-first is polled on its published port from the host and, like
// start-first, through the network alias "app" from a container on the
// same network (start-first cannot publish ports).
func BenchmarkSwapDowntime(b *testing.B) {
	b.Run("stop-first/published-port", func(b *testing.B) {
		eng := testenv.Engine(b)
		port := freePort(b)
		runLiftoff(b, eng, target{strategy: "stop-first", port: port},
			func(b *testing.B, _ *testenv.Reg) *recorder { return hostPoller(b, port) })
	})
	for _, strategy := range []string{"stop-first", "start-first"} {
		b.Run(strategy+"/alias", func(b *testing.B) {
			needDockerCLI(b)
			eng := testenv.Engine(b)
			network := eng.UniqueName(b, "net")
			eng.Network(b, network)
			runLiftoff(b, eng, target{strategy: strategy, network: network},
				func(b *testing.B, reg *testenv.Reg) *recorder {
					return containerPoller(b, eng, reg, network, fmt.Sprintf("http://app:%d/", testenv.AppPort))
				})
		})
	}
}

// runLiftoff starts liftoff with one deployment, deploys a first version,
// then one new version per iteration through the DockerHub webhook.
func runLiftoff(b *testing.B, eng *testenv.Eng, t target, poll func(*testing.B, *testenv.Reg) *recorder) {
	reg := eng.Registry(b)
	name := eng.UniqueName(b, "bench")
	d := startDaemon(b, reg, name, t)
	version := func(i int) string { return fmt.Sprintf("%s.v%d", name[len(name)-12:], i) }

	d.push(version(0))
	d.hook()
	d.waitDeploys(1)
	rec := poll(b, reg)
	rec.waitServing(b, time.Time{}, version(0), servingTimeout)

	before := d.metrics()
	var serving, done []time.Duration
	var swaps []swapStats
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		d.push(version(i))
		b.StartTimer()

		t0 := time.Now()
		d.hook()
		served := rec.waitServing(b, t0, version(i), servingTimeout)
		b.StopTimer()

		started, finished := d.waitDeploys(i + 1)
		// Failures right after the swap count too.
		time.Sleep(200 * time.Millisecond)
		end := time.Now()
		swaps = append(swaps, rec.stats(b, t0, end))
		rec.trace(b, fmt.Sprintf("%s-%d", b.Name(), i), t0, end, map[string]time.Time{
			"hook": t0, "deploy started": started, "deploy finished": finished,
		})
		serving = append(serving, served.Sub(t0))
		done = append(done, finished.Sub(t0))
		b.StartTimer()
	}
	after := d.metrics()

	b.ReportMetric(ms(mean(serving)), "serving-ms")
	b.ReportMetric(ms(slices.Max(serving)), "serving-max-ms")
	b.ReportMetric(ms(mean(done)), "done-ms")
	reportSwaps(b, swaps)
	n := float64(len(serving))
	var steps []string
	for _, p := range phases {
		if v := (after.phaseSum[p] - before.phaseSum[p]) / n * 1000; v > 0 {
			b.ReportMetric(v, p+"-ms")
			steps = append(steps, fmt.Sprintf("%s %.0f", p, v))
		}
	}
	if c := after.durCount - before.durCount; c > 0 {
		b.ReportMetric((after.durSum-before.durSum)/c*1000, "liftoff-deploy-ms")
	}
	b.Logf("%s, %d deploys: webhook → serving %v (max %v), → done %v; liftoff's steps in ms: %s",
		t.strategy, len(serving), mean(serving).Round(time.Millisecond), slices.Max(serving).Round(time.Millisecond),
		mean(done).Round(time.Millisecond), strings.Join(steps, ", "))
}

func reportSwaps(b *testing.B, swaps []swapStats) {
	var downtime, outage []time.Duration
	var slowest time.Duration
	failed, stalled := 0, 0
	reasons := map[string]int{}
	for _, s := range swaps {
		downtime = append(downtime, s.downtime)
		outage = append(outage, s.outage)
		slowest = max(slowest, s.slowest)
		failed += s.failed
		stalled += s.stalled
		for k, v := range s.reasons {
			reasons[k] += v
		}
	}
	n := float64(len(swaps))
	b.ReportMetric(float64(failed)/n, "failed-req")
	b.ReportMetric(ms(mean(downtime)), "downtime-ms")
	b.ReportMetric(ms(slices.Max(downtime)), "downtime-max-ms")
	b.ReportMetric(ms(mean(outage)), "outage-ms")
	b.ReportMetric(float64(stalled)/n, "stalled-req")
	b.ReportMetric(ms(slowest), "slowest-ok-ms")
	var rs []string
	for _, k := range slices.Sorted(maps.Keys(reasons)) {
		rs = append(rs, fmt.Sprintf("%s×%d", k, reasons[k]))
	}
	b.Logf("%d swaps: %d failed requests (%s), downtime mean %v max %v, longest outage mean %v; %d answers slower than %v, slowest %v",
		len(swaps), failed, strings.Join(rs, " "), mean(downtime).Round(time.Millisecond), slices.Max(downtime).Round(time.Millisecond),
		mean(outage).Round(time.Millisecond), stalled, slow, slowest.Round(time.Millisecond))
}

// BenchmarkDockerCLI does by hand what a stop-first deploy does, with the
// docker CLI on the same kind of image, env and labels: docker pull, docker
// stop, docker rm, docker run -d, then poll until the new version answers
// on the published port. ns/op and serving-ms are that whole time; the
// other columns are each command's share and run→serving.
func BenchmarkDockerCLI(b *testing.B) {
	needDockerCLI(b)
	eng := testenv.Engine(b)
	reg := eng.Registry(b)
	name := eng.UniqueName(b, "cli")
	repo := "acme/" + name
	port := freePort(b)
	ref := reg.Ref(repo, "staging")
	version := func(i int) string { return fmt.Sprintf("%s.v%d", name[len(name)-12:], i) }
	run := func(i int, digest string) time.Duration { return cliRun(b, name, port, ref, digest) }

	digest := reg.Push(b, repo, "staging", testenv.AppImage{Version: version(0)})
	docker(b, "pull", "-q", ref)
	run(0, digest)
	rec := hostPoller(b, port)
	rec.waitServing(b, time.Time{}, version(0), servingTimeout)

	var serving, pull, stop, rm, start, listen []time.Duration
	var swaps []swapStats
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		digest := reg.Push(b, repo, "staging", testenv.AppImage{Version: version(i)})
		b.StartTimer()

		t0 := time.Now()
		pull = append(pull, docker(b, "pull", "-q", ref))
		stopping := time.Now()
		stop = append(stop, docker(b, "stop", name))
		rm = append(rm, docker(b, "rm", name))
		running := time.Now()
		start = append(start, run(i, digest))
		ran := time.Now()
		served := rec.waitServing(b, t0, version(i), servingTimeout)
		b.StopTimer()

		time.Sleep(200 * time.Millisecond)
		end := time.Now()
		swaps = append(swaps, rec.stats(b, t0, end))
		rec.trace(b, fmt.Sprintf("%s-%d", b.Name(), i), t0, end, map[string]time.Time{
			"docker pull": t0, "docker stop": stopping, "docker run": running, "docker run returned": ran,
		})
		serving = append(serving, served.Sub(t0))
		listen = append(listen, served.Sub(ran))
		b.StartTimer()
	}
	b.ReportMetric(ms(mean(serving)), "serving-ms")
	b.ReportMetric(ms(slices.Max(serving)), "serving-max-ms")
	reportSwaps(b, swaps)
	for _, c := range []struct {
		unit string
		ds   []time.Duration
	}{{"pull-ms", pull}, {"stop-ms", stop}, {"rm-ms", rm}, {"run-ms", start}, {"run-to-serving-ms", listen}} {
		b.ReportMetric(ms(mean(c.ds)), c.unit)
	}
	b.Logf("docker CLI, %d deploys: pull %v, stop %v, rm %v, run -d %v, run→serving %v; total → serving %v",
		len(serving), mean(pull).Round(time.Millisecond), mean(stop).Round(time.Millisecond), mean(rm).Round(time.Millisecond),
		mean(start).Round(time.Millisecond), mean(listen).Round(time.Millisecond), mean(serving).Round(time.Millisecond))
}

// cliRun runs ref (pinned to digest) as container name with docker run -d,
// as liftoff would run it: port published on 127.0.0.1, the same env and
// labels. It returns how long docker run took.
func cliRun(tb testing.TB, name string, port int, ref, digest string) time.Duration {
	tb.Helper()
	args := []string{"run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:%d", port, testenv.AppPort)}
	for _, e := range benchEnv {
		args = append(args, "-e", e)
	}
	for _, l := range cliLabels(name, digest) {
		args = append(args, "-l", l)
	}
	return docker(tb, append(args, ref)...)
}

// cliLabels are the labels liftoff would give the container.
func cliLabels(name, digest string) []string {
	return []string{
		"liftoff.managed=true", "liftoff.deployment=" + name, "liftoff.environment=bench",
		"liftoff.image=docker.io/acme/" + name, "liftoff.tag=staging", "liftoff.digest=" + digest,
	}
}
