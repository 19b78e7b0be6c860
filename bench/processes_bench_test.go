package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// BenchmarkAppOfProcesses measures a push of the test app run as three
// processes — web (published port), worker, beat — two ways, with the
// default gate (min_uptime 3s) and stop-first:
//
//   - app: one deployment with processes: one deploy, the processes
//     swapped one after the other (web last), each held after its gate
//     until all passed;
//   - three-deployments: three deployments of the same image and tag, the
//     web one publishing the port: three deploys, side by side.
//
// ns/op is webhook → every process runs the new version (the app's deploy
// finished, or the last of the three); web-serving-ms is webhook → the web
// answers with the new version on its port.
func BenchmarkAppOfProcesses(b *testing.B) {
	const single = `  - name: {name}-%[1]s
    image: {repo}
    tags: [staging]
    environment: bench
    container: {command: [%[1]s]}
`
	for _, c := range []struct {
		name    string
		deploys int // per push
		target  func(port int) target
	}{
		{"app", 1, func(port int) target {
			return target{strategy: "stop-first", extra: `    processes:
      web: {command: [web], container: {ports: ["127.0.0.1:` + fmt.Sprint(port) + `:8000"]}}
      worker: {command: [worker]}
      beat: {command: [beat]}
`}
		}},
		{"three-deployments", 3, func(port int) target {
			more := ""
			for _, p := range []string{"worker", "beat"} {
				more += fmt.Sprintf(single, p)
			}
			return target{strategy: "stop-first", port: port, extra: "      command: [web]\n", more: more}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			eng := testenv.Engine(b)
			reg := eng.Registry(b)
			name := eng.UniqueName(b, "bench")
			port := freePort(b)
			d := startDaemon(b, reg, name, c.target(port))
			version := func(i int) string { return fmt.Sprintf("%s.v%d", name[len(name)-12:], i) }
			d.push(version(0))
			d.hook()
			d.waitDeploys(c.deploys)
			rec := hostPoller(b, port)
			rec.waitServing(b, time.Time{}, version(0), servingTimeout)

			var serving, done []time.Duration
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				d.push(version(i))
				b.StartTimer()
				t0 := time.Now()
				d.hook()
				_, finished := d.waitDeploys(c.deploys * (i + 1))
				b.StopTimer()
				served := rec.waitServing(b, t0, version(i), servingTimeout)
				// The last of the deploys of this push to finish.
				d.logMu.Lock()
				for _, f := range d.finished[c.deploys*i:] {
					if f.at.After(finished) {
						finished = f.at
					}
				}
				d.logMu.Unlock()
				serving = append(serving, served.Sub(t0))
				done = append(done, finished.Sub(t0))
				b.StartTimer()
			}
			b.ReportMetric(ms(mean(done)), "all-new-ms")
			b.ReportMetric(ms(slices.Max(done)), "all-new-max-ms")
			b.ReportMetric(ms(mean(serving)), "web-serving-ms")
			b.Logf("%s, %d pushes: webhook → every process on the new version %v (max %v), → the web serves it %v",
				c.name, len(done), mean(done).Round(time.Millisecond), slices.Max(done).Round(time.Millisecond),
				mean(serving).Round(time.Millisecond))
		})
	}
}
