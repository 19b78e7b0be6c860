package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// BenchmarkSwap compares ways of replacing a running version by a new one,
// on the same images, the same machine and in the same run, under client
// load:
//
//   - floor: the engine's API calls a stop-first swap cannot do without,
//     and nothing else (moby client: pull by digest, stop, remove,
//     create, start): the fastest stop-first swap there is;
//   - cli: the same by hand with the docker CLI (pull, stop, rm, run -d);
//   - stop-first, start-first, proxy: liftoff, from the webhook, with
//     the smallest health gate (min_uptime 1ms; start-first and proxy
//     also wait for the app to answer on health.url, since they send it
//     traffic only once it passed).
//
// floor, cli, stop-first and proxy are polled from the host (a published
// port; liftoff's proxy's listener), start-first from a container on its
// network through the alias (it cannot publish ports).
//
// Each mode runs under each load: 100 or 1000 requests a second, each on
// a new connection or over kept-alive ones (the CLI only at 100 a second
// on new connections). serving-ms is the swap's start (webhook POSTed,
// or docker pull begun) → the first answer from the new version;
// serving-p50-ms its median, which run.sh divides by the floor's under the
// same load (x-floor). p99-idle-ms and p99-swap-ms are the 99th
// percentile of answered requests' durations in the second before the
// swap and during it (its start to 200ms past its end).
func BenchmarkSwap(b *testing.B) {
	for _, m := range swapModes {
		for _, l := range swapLoads {
			if m.name == "cli" && l != swapLoads[0] {
				continue // as the floor, at a crawl: one row is enough
			}
			b.Run(m.name+"/"+l.String(), func(b *testing.B) { runSwap(b, m, l) })
		}
	}
}

// swapLoad is the clients' load during a swap.
type swapLoad struct {
	rate      int // requests started per second
	keepAlive bool
}

func (l swapLoad) String() string {
	if l.keepAlive {
		return fmt.Sprintf("%drps-keepalive", l.rate)
	}
	return fmt.Sprintf("%drps-new", l.rate)
}

func (l swapLoad) args() []string {
	return []string{"-rate", strconv.Itoa(l.rate), "-keepalive=" + strconv.FormatBool(l.keepAlive)}
}

var swapLoads = []swapLoad{{100, false}, {100, true}, {1000, false}, {1000, true}}

// idleWindow is how long the client runs undisturbed before each swap:
// the p99-idle-ms sample.
const idleWindow = time.Second

// swapper is one way of swapping, set up with version 0 serving.
type swapper struct {
	rec  *recorder
	name string // the container's (the deployment's)
	// push makes version i available (outside the timed part) and
	// returns its name, as the app answers it.
	push func(i int) string
	// deploy starts the swap to version i; it returns once the calls it
	// makes have returned (floor, cli) or the webhook was answered
	// (liftoff), with the duration of each of its calls, if it timed
	// them.
	deploy func(i int) map[string]time.Duration
	// done waits for swap i to end (liftoff's "deploy finished") and
	// returns when it did; zero if the mode has no end beyond deploy.
	done func(i int) time.Time
	// phases returns liftoff's total time per deploy step so far (s), if
	// the mode is liftoff.
	phases func() map[string]float64
}

type swapMode struct {
	name  string
	setup func(b *testing.B, eng *testenv.Eng, reg *testenv.Reg, l swapLoad) *swapper
}

var swapModes = []swapMode{
	{"floor", floorSwapper},
	{"cli", cliSwapper},
	{"stop-first", func(b *testing.B, eng *testenv.Eng, reg *testenv.Reg, l swapLoad) *swapper {
		port := freePort(b)
		return liftoffSwapper(b, reg, eng.UniqueName(b, "swap"), target{strategy: "stop-first", port: port, health: "{min_uptime: 1ms}"},
			func() *recorder { return hostPoller(b, port, l.args()...) })
	}},
	{"start-first", func(b *testing.B, eng *testenv.Eng, reg *testenv.Reg, l swapLoad) *swapper {
		needDockerCLI(b)
		network := eng.UniqueName(b, "net")
		eng.SubnetNetwork(b, network) // so that the old container is drained
		return liftoffSwapper(b, reg, eng.UniqueName(b, "swap"),
			target{strategy: "start-first", network: network, health: fmt.Sprintf(`{url: "http://{container}:%d/", min_uptime: 1ms}`, testenv.AppPort)},
			func() *recorder {
				return containerPoller(b, eng, reg, network, fmt.Sprintf("http://app:%d/", testenv.AppPort), l.args()...)
			})
	}},
	{"proxy", func(b *testing.B, eng *testenv.Eng, reg *testenv.Reg, l swapLoad) *swapper {
		port := freePort(b)
		return liftoffSwapper(b, reg, eng.UniqueName(b, "swap"),
			target{proxy: port, health: `{url: "http://{upstream}/", min_uptime: 1ms}`},
			func() *recorder { return hostPoller(b, port, l.args()...) })
	}},
}

func runSwap(b *testing.B, m swapMode, l swapLoad) {
	eng := testenv.Engine(b)
	reg := eng.Registry(b)
	s := m.setup(b, eng, reg, l)
	var before map[string]float64
	if s.phases != nil {
		before = s.phases()
	}
	var serving, done, idle, during []time.Duration
	var swaps []swapStats
	var starts []time.Time
	calls := map[string][]time.Duration{}
	events := eng.WatchEvents(b)
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		version := s.push(i)
		time.Sleep(idleWindow)
		b.StartTimer()

		t0 := time.Now()
		starts = append(starts, t0)
		took := s.deploy(i)
		served := s.rec.waitServing(b, t0, version, servingTimeout)
		b.StopTimer()

		end := s.done(i)
		if end.IsZero() {
			end = served
		}
		// Failures right after the swap count too.
		time.Sleep(200 * time.Millisecond)
		stop := time.Now()
		swaps = append(swaps, s.rec.stats(b, t0, stop))
		idle = append(idle, s.rec.latencies(t0.Add(-idleWindow), t0)...)
		during = append(during, s.rec.latencies(t0, stop)...)
		s.rec.trace(b, fmt.Sprintf("%s-%d", b.Name(), i), t0, stop, map[string]time.Time{"swap": t0, "done": end})
		serving = append(serving, served.Sub(t0))
		done = append(done, end.Sub(t0))
		for k, v := range took {
			calls[k] = append(calls[k], v)
		}
		b.StartTimer()
	}
	if len(serving) == 0 {
		return
	}
	started, window := engineTimes(b, events.Stop(b), s.name, starts)
	b.ReportMetric(ms(mean(started)), "started-ms")
	b.ReportMetric(ms(percentile(started, 50)), "started-p50-ms")
	if len(window) > 0 {
		b.ReportMetric(ms(mean(window)), "window-ms")
	}
	b.ReportMetric(ms(mean(serving)), "serving-ms")
	b.ReportMetric(ms(percentile(serving, 50)), "serving-p50-ms")
	b.ReportMetric(ms(slices.Max(serving)), "serving-max-ms")
	b.ReportMetric(ms(mean(done)), "done-ms")
	reportSwaps(b, swaps)
	b.ReportMetric(ms(percentile(idle, 99)), "p99-idle-ms")
	b.ReportMetric(ms(percentile(during, 99)), "p99-swap-ms")
	var steps []string
	for _, k := range slices.Sorted(maps.Keys(calls)) {
		b.ReportMetric(ms(mean(calls[k])), k+"-ms")
		steps = append(steps, fmt.Sprintf("%s %.0f", k, ms(mean(calls[k]))))
	}
	if s.phases != nil {
		after := s.phases()
		for _, p := range phases {
			if v := (after[p] - before[p]) / float64(len(serving)) * 1000; v > 0 {
				b.ReportMetric(v, p+"-ms")
				steps = append(steps, fmt.Sprintf("%s %.0f", p, v))
			}
		}
	}
	b.Logf("%s under %s, %d swaps: → started (engine) mean %v median %v, stop→start window %v; → serving mean %v median %v max %v, → done %v; p99 idle %v, during the swap %v; steps (ms): %s",
		strings.Split(b.Name(), "/")[1], l, len(serving), mean(started).Round(time.Millisecond), percentile(started, 50).Round(time.Millisecond),
		mean(window).Round(time.Millisecond), mean(serving).Round(time.Millisecond), percentile(serving, 50).Round(time.Millisecond),
		slices.Max(serving).Round(time.Millisecond), mean(done).Round(time.Millisecond),
		percentile(idle, 99).Round(100*time.Microsecond), percentile(during, 99).Round(100*time.Microsecond), strings.Join(steps, ", "))
}

// engineTimes reads, for each swap begun at starts[i], when the engine
// says it started the new container (its "start" event: the process
// runs), as a duration from the swap's start, and, where the old one was
// stopped first, the window from the old one's stop signal (its "kill"
// event) to that start. The engine's clock and ours are the machine's.
// These leave out what clients add (see the README: a client that tries
// during the window can delay its first answer by up to a second).
func engineTimes(b *testing.B, evs []testenv.Event, name string, starts []time.Time) (started, window []time.Duration) {
	ours := func(n string) bool { return n == name || strings.HasPrefix(n, name+".liftoff-") }
	for i, t0 := range starts {
		var kill time.Time
		found := false
		for _, ev := range evs {
			if ev.Type != "container" || ev.Time.Before(t0) || !ours(ev.Name) {
				continue
			}
			if ev.Action == "kill" && kill.IsZero() {
				kill = ev.Time
			}
			if ev.Action == "start" {
				started = append(started, ev.Time.Sub(t0))
				if !kill.IsZero() {
					window = append(window, ev.Time.Sub(kill))
				}
				found = true
				break
			}
		}
		if !found {
			b.Fatalf("swap %d: no start event of %s after %s", i+1, name, t0.Format("15:04:05.000"))
		}
	}
	return started, window
}

// liftoffSwapper starts liftoff with the deployment t, deploys version 0,
// and starts the client (poll) once it serves.
func liftoffSwapper(b *testing.B, reg *testenv.Reg, name string, t target, poll func() *recorder) *swapper {
	d := startDaemon(b, reg, name, t)
	version := func(i int) string { return fmt.Sprintf("%s.v%d", name[len(name)-12:], i) }
	d.push(version(0))
	d.hook()
	d.waitDeploys(1)
	rec := poll()
	rec.waitServing(b, time.Time{}, version(0), servingTimeout)
	return &swapper{
		rec:  rec,
		name: name,
		push: func(i int) string {
			d.push(version(i))
			return version(i)
		},
		deploy: func(int) map[string]time.Duration {
			d.hook()
			return nil
		},
		done: func(i int) time.Time {
			_, finished := d.waitDeploys(i + 1)
			return finished
		},
		phases: func() map[string]float64 { return d.metrics().phaseSum },
	}
}

// floorSwapper swaps with the engine's API calls alone, as fast as they
// can follow one another: what any stop-first swap must wait for.
func floorSwapper(b *testing.B, eng *testenv.Eng, reg *testenv.Reg, l swapLoad) *swapper {
	cli := eng.Client()
	name := eng.UniqueName(b, "floor")
	repo := "acme/" + name
	port := freePort(b)
	version := func(i int) string { return fmt.Sprintf("%s.v%d", name[len(name)-12:], i) }
	digests := map[int]string{}
	push := func(i int) string {
		digests[i] = reg.Push(b, repo, "staging", testenv.AppImage{Version: version(i)})
		return version(i)
	}
	ctx := context.Background()
	// pull pulls version i by digest; create creates and starts it. Each
	// call is timed into took.
	pull := func(i int, took map[string]time.Duration) string {
		ref := reg.Host() + "/" + repo + "@" + digests[i]
		t := time.Now()
		if err := enginePull(ctx, cli, ref); err != nil {
			b.Fatalf("pull %s: %v", ref, err)
		}
		took["pull"] = time.Since(t)
		return ref
	}
	create := func(i int, ref string, took map[string]time.Duration) string {
		t := time.Now()
		id, err := floorCreate(ctx, cli, name, ref, digests[i], port)
		if err != nil {
			b.Fatalf("create: %v", err)
		}
		took["create"] = time.Since(t)
		t = time.Now()
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			b.Fatalf("start: %v", err)
		}
		took["start"] = time.Since(t)
		return id
	}
	push(0)
	cur := create(0, pull(0, map[string]time.Duration{}), map[string]time.Duration{})
	rec := hostPoller(b, port, l.args()...)
	rec.waitServing(b, time.Time{}, version(0), servingTimeout)
	return &swapper{
		rec:  rec,
		name: name,
		push: push,
		deploy: func(i int) map[string]time.Duration {
			took := map[string]time.Duration{}
			ref := pull(i, took)
			t := time.Now()
			grace := 10
			if _, err := cli.ContainerStop(ctx, cur, client.ContainerStopOptions{Timeout: &grace}); err != nil {
				b.Fatalf("stop: %v", err)
			}
			took["stop"] = time.Since(t)
			t = time.Now()
			if _, err := cli.ContainerRemove(ctx, cur, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				b.Fatalf("remove: %v", err)
			}
			took["rm"] = time.Since(t)
			cur = create(i, ref, took)
			return took
		},
		done: func(int) time.Time { return time.Time{} },
	}
}

// floorCreate creates the container BenchmarkDockerCLI's docker run does.
func floorCreate(ctx context.Context, cli *client.Client, name, ref, digest string, port int) (string, error) {
	p, err := network.ParsePort(fmt.Sprintf("%d/tcp", testenv.AppPort))
	if err != nil {
		return "", err
	}
	labels := map[string]string{}
	for _, l := range cliLabels(name, digest) {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image: ref, Env: benchEnv, Labels: labels,
			ExposedPorts: network.PortSet{p: {}},
		},
		HostConfig: &container.HostConfig{
			PortBindings: network.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}}},
		},
	})
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// enginePull pulls ref and reads the engine's progress to its end: the
// pull is done only then, and an error may come in it.
func enginePull(ctx context.Context, cli *client.Client, ref string) error {
	stream, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer stream.Close()
	sc := bufio.NewScanner(stream)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Error != "" {
			return errors.New(m.Error)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// cliSwapper swaps with the docker CLI, as BenchmarkDockerCLI does.
func cliSwapper(b *testing.B, eng *testenv.Eng, reg *testenv.Reg, l swapLoad) *swapper {
	needDockerCLI(b)
	name := eng.UniqueName(b, "cli")
	repo := "acme/" + name
	port := freePort(b)
	ref := reg.Ref(repo, "staging")
	version := func(i int) string { return fmt.Sprintf("%s.v%d", name[len(name)-12:], i) }
	var digest string
	push := func(i int) string {
		digest = reg.Push(b, repo, "staging", testenv.AppImage{Version: version(i)})
		return version(i)
	}
	push(0)
	docker(b, "pull", "-q", ref)
	cliRun(b, name, port, ref, digest)
	rec := hostPoller(b, port, l.args()...)
	rec.waitServing(b, time.Time{}, version(0), servingTimeout)
	return &swapper{
		rec:  rec,
		name: name,
		push: push,
		deploy: func(i int) map[string]time.Duration {
			return map[string]time.Duration{
				"pull": docker(b, "pull", "-q", ref),
				"stop": docker(b, "stop", name),
				"rm":   docker(b, "rm", name),
				"run":  cliRun(b, name, port, ref, digest),
			}
		},
		done: func(int) time.Time { return time.Time{} },
	}
}

// latencies returns how long the answered requests sent in [from, to)
// took.
func (r *recorder) latencies(from, to time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, ev := range r.events {
		if s := ev.start(); ev.ok && !s.Before(from) && s.Before(to) {
			out = append(out, ev.took)
		}
	}
	return out
}

// percentile returns the p-th percentile (nearest rank) of ds; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}
