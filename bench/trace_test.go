package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// BenchmarkStopFirstTrace swaps a published-port container to a new
// version with liftoff's stop-first, the docker CLI (pull, stop, rm, run
// -d) and the engine's calls alone (floor: pull, stop, remove, create,
// start), in turn, each iteration one swap of each, so that the load of a
// shared machine falls on all alike. A client asks every 20ms, each time on
// a new connection, from the moment of the push (the webhook POSTed, the
// pull begun) until the new version answers. Every engine call goes
// through a callLog, so each swap can be told as a trace: each call's
// start and end as the swapper made it, the engine's container events and
// what the client got. serving-ms is push → the first answer of the new
// version; BENCH_TRACES=dir writes one trace a swap there, and -v logs the
// traces of the first iteration. BENCH_TRACE_HEALTH sets liftoff's health
// map (YAML flow; default {min_uptime: 1ms}), BENCH_TRACE_INTERVAL the
// client's interval (default 20ms).
func BenchmarkStopFirstTrace(b *testing.B) {
	needDockerCLI(b)
	eng := testenv.Engine(b)
	reg := eng.Registry(b)
	events := eng.WatchEvents(b)
	modes := []*traceMode{
		liftoffTraceMode(b, eng, reg),
		cliTraceMode(b, eng, reg),
		floorTraceMode(b, eng, reg),
	}
	interval := 20 * time.Millisecond
	if v := os.Getenv("BENCH_TRACE_INTERVAL"); v != "" {
		var err error
		if interval, err = time.ParseDuration(v); err != nil || interval <= 0 {
			b.Fatalf("BENCH_TRACE_INTERVAL=%q: want a positive duration (20ms)", v)
		}
	}
	var swaps []traceSwap
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		for _, m := range modes {
			version := m.push(i)
			time.Sleep(300 * time.Millisecond) // the engine settles after the last swap
			oldIP := containerIP(b, eng, m.names[0])
			p := startPolling(b, m.url, interval)
			t0 := time.Now()
			m.swap(i)
			served := p.waitVersion(b, t0, version, servingTimeout)
			polls := p.stop()
			newIP := containerIP(b, eng, m.names[0])
			end := m.done(i)
			end = later(end, served)
			swaps = append(swaps, traceSwap{mode: m.name, i: i, t0: t0, served: served, end: end, version: version,
				calls: m.log.between(t0, end), polls: polls, names: m.names, oldIP: oldIP, newIP: newIP})
		}
		b.StartTimer()
	}
	evs := events.Stop(b)
	for i := range swaps {
		s := &swaps[i]
		for _, ev := range evs {
			if ev.Type == "container" && !ev.Time.Before(s.t0) && !ev.Time.After(s.end) && s.ours(ev.Name) {
				s.events = append(s.events, ev)
			}
		}
	}
	dir := os.Getenv("BENCH_TRACES")
	for _, s := range swaps {
		text := s.trace()
		if dir != "" {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("trace-%s-%d.txt", s.mode, s.i)), []byte(text), 0o644)
		}
		if s.i == 1 {
			b.Logf("%s swap %d:\n%s", s.mode, s.i, text)
		}
	}
	for _, m := range modes {
		var serving, started []time.Duration
		var failed []float64
		moved := 0 // swaps where the new container got another address
		for _, s := range swaps {
			if s.mode != m.name {
				continue
			}
			serving = append(serving, s.served.Sub(s.t0))
			failed = append(failed, float64(s.failed()))
			if s.oldIP != s.newIP {
				moved++
			}
			if t, ok := s.eventAt("start"); ok {
				started = append(started, t.Sub(s.t0))
			}
		}
		parts := map[string][]time.Duration{}
		for _, s := range swaps {
			if s.mode == m.name {
				for k, v := range s.parts() {
					parts[k] = append(parts[k], v)
				}
			}
		}
		var steps []string
		for _, k := range traceParts {
			if len(parts[k]) > 0 {
				steps = append(steps, fmt.Sprintf("%s %.0f", k, ms(percentile(parts[k], 50))))
			}
		}
		b.Logf("%s: medians (ms): %s", m.name, strings.Join(steps, ", "))
		b.ReportMetric(ms(percentile(serving, 50)), m.name+"-serving-p50-ms")
		b.ReportMetric(ms(percentile(started, 50)), m.name+"-started-p50-ms")
		slices.Sort(failed)
		b.ReportMetric(failed[(len(failed)-1)/2], m.name+"-failed-p50")
		b.Logf("%s: %d swaps (%d with a new address), push → serving median %v (%v), push → engine's start event median %v",
			m.name, len(serving), moved, percentile(serving, 50).Round(time.Millisecond), roundAll(serving), percentile(started, 50).Round(time.Millisecond))
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// traceMode is one way of swapping, with its own container, port and
// engine call log.
type traceMode struct {
	name  string
	url   string
	log   *callLog
	names []string // container name prefixes of the mode
	push  func(i int) string
	swap  func(i int)
	done  func(i int) time.Time // when the swap ended; zero: when it served
}

func traceVersion(name string, i int) string { return fmt.Sprintf("%s.v%d", name[len(name)-12:], i) }

func liftoffTraceMode(b *testing.B, eng *testenv.Eng, reg *testenv.Reg) *traceMode {
	log := newCallLog(b)
	name := eng.UniqueName(b, "trace")
	port := freePort(b)
	health := os.Getenv("BENCH_TRACE_HEALTH")
	if health == "" {
		health = "{min_uptime: 1ms}"
	}
	d := startDaemon(b, reg, name, target{strategy: "stop-first", port: port, health: health, dockerHost: log.Host()})
	d.push(traceVersion(name, 0))
	d.hook()
	d.waitDeploys(1)
	return &traceMode{
		name: "liftoff", url: fmt.Sprintf("http://127.0.0.1:%d/", port), log: log, names: []string{name},
		push: func(i int) string { d.push(traceVersion(name, i)); return traceVersion(name, i) },
		swap: func(int) { d.hook() },
		done: func(i int) time.Time { _, end := d.waitDeploys(i + 1); return end },
	}
}

func cliTraceMode(b *testing.B, eng *testenv.Eng, reg *testenv.Reg) *traceMode {
	log := newCallLog(b)
	name := eng.UniqueName(b, "tracecli")
	repo := "acme/" + name
	port := freePort(b)
	ref := reg.Ref(repo, "staging")
	var digest string
	push := func(i int) string {
		digest = reg.Push(b, repo, "staging", testenv.AppImage{Version: traceVersion(name, i)})
		return traceVersion(name, i)
	}
	cli := func(args ...string) {
		cmd := exec.Command("docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+log.Host())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run := func() {
		args := []string{"run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:%d", port, testenv.AppPort)}
		for _, e := range benchEnv {
			args = append(args, "-e", e)
		}
		for _, l := range cliLabels(name, digest) {
			args = append(args, "-l", l)
		}
		cli(append(args, ref)...)
	}
	push(0)
	cli("pull", "-q", ref)
	run()
	return &traceMode{
		name: "cli", url: fmt.Sprintf("http://127.0.0.1:%d/", port), log: log, names: []string{name},
		push: push,
		swap: func(int) {
			cli("pull", "-q", ref)
			cli("stop", name)
			cli("rm", name)
			run()
		},
		done: func(int) time.Time { return time.Time{} },
	}
}

func floorTraceMode(b *testing.B, eng *testenv.Eng, reg *testenv.Reg) *traceMode {
	log := newCallLog(b)
	cli, err := client.New(client.WithHost(log.Host()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	name := eng.UniqueName(b, "tracefloor")
	repo := "acme/" + name
	port := freePort(b)
	digests := map[int]string{}
	ctx := context.Background()
	var cur string
	deploy := func(i int) {
		ref := reg.Host() + "/" + repo + "@" + digests[i]
		if err := enginePull(ctx, cli, ref); err != nil {
			b.Fatalf("pull %s: %v", ref, err)
		}
		if cur != "" {
			grace := 10
			if _, err := cli.ContainerStop(ctx, cur, client.ContainerStopOptions{Timeout: &grace}); err != nil {
				b.Fatalf("stop: %v", err)
			}
			if _, err := cli.ContainerRemove(ctx, cur, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				b.Fatalf("remove: %v", err)
			}
		}
		id, err := floorCreate(ctx, cli, name, ref, digests[i], port)
		if err != nil {
			b.Fatalf("create: %v", err)
		}
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			b.Fatalf("start: %v", err)
		}
		cur = id
	}
	push := func(i int) string {
		digests[i] = reg.Push(b, repo, "staging", testenv.AppImage{Version: traceVersion(name, i)})
		return traceVersion(name, i)
	}
	push(0)
	deploy(0)
	return &traceMode{
		name: "floor", url: fmt.Sprintf("http://127.0.0.1:%d/", port), log: log, names: []string{name},
		push: push, swap: deploy,
		done: func(int) time.Time { return time.Time{} },
	}
}

// polling asks url at a fixed interval, each request on a new connection
// and in its own goroutine (one that waits for a SYN sent again must not
// hold back the next).
type polling struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	polls  []poll
}

// poll is one request of a polling.
type poll struct {
	sent, at time.Time
	ok       bool
	version  string // ok
	reason   string // !ok
}

func startPolling(tb testing.TB, url string, interval time.Duration) *polling {
	ctx, cancel := context.WithCancel(context.Background())
	p := &polling{cancel: cancel}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for ctx.Err() == nil {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				q := poll{sent: time.Now()}
				q.version, q.reason = getVersion(ctx, c, url)
				q.at, q.ok = time.Now(), q.reason == ""
				if ctx.Err() != nil && !q.ok {
					return
				}
				p.mu.Lock()
				p.polls = append(p.polls, q)
				p.mu.Unlock()
			}()
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	tb.Cleanup(func() { p.stop() })
	return p
}

func getVersion(ctx context.Context, c *http.Client, url string) (version, reason string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", "other"
	}
	resp, err := c.Do(req)
	if err != nil {
		var ne net.Error
		s := err.Error()
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return "", "timeout"
		case strings.Contains(s, "connection refused"):
			return "", "refused"
		case strings.Contains(s, "connection reset"):
			return "", "reset"
		case strings.Contains(s, "EOF"):
			return "", "eof"
		}
		return "", "other"
	}
	defer resp.Body.Close()
	var a struct{ Version string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&a) != nil || a.Version == "" {
		return "", fmt.Sprintf("status-%d", resp.StatusCode)
	}
	return a.Version, ""
}

// waitVersion waits for the first answer of version sent after since and
// returns when it came.
func (p *polling) waitVersion(tb testing.TB, since time.Time, version string, timeout time.Duration) time.Time {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		var first time.Time
		for _, q := range p.polls {
			if q.ok && q.version == version && q.sent.After(since) && (first.IsZero() || q.at.Before(first)) {
				first = q.at
			}
		}
		p.mu.Unlock()
		if !first.IsZero() {
			return first
		}
		if time.Now().After(deadline) {
			tb.Fatalf("version %s not served within %s", version, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stop stops asking, waits for the requests in flight and returns every
// request, by send time.
func (p *polling) stop() []poll {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	slices.SortFunc(p.polls, func(a, b poll) int { return a.sent.Compare(b.sent) })
	return slices.Clone(p.polls)
}

// traceSwap is what one swap looked like.
type traceSwap struct {
	mode            string
	i               int
	t0, served, end time.Time
	version         string
	names           []string
	oldIP, newIP    string // the old and the new container's address
	calls           []engineCall
	events          []testenv.Event
	polls           []poll
}

// failed counts the requests of the swap that got no answer.
func (s *traceSwap) failed() int {
	n := 0
	for _, q := range s.polls {
		if !q.ok {
			n++
		}
	}
	return n
}

func (s *traceSwap) ours(name string) bool {
	return slices.ContainsFunc(s.names, func(p string) bool { return strings.HasPrefix(name, p) })
}

func (s *traceSwap) eventAt(action string) (time.Time, bool) {
	for _, ev := range s.events {
		if ev.Action == action {
			return ev.Time, true
		}
	}
	return time.Time{}, false
}

// trace tells the swap line by line, in ms from the push: each engine call
// (start → end), each container event, and the client's requests, runs of
// the same outcome folded into one line.
func (s *traceSwap) trace() string {
	type line struct {
		at   time.Time
		text string
	}
	rel := func(t time.Time) float64 { return ms(t.Sub(s.t0)) }
	var lines []line
	for _, c := range s.calls {
		if c.method == http.MethodHead && c.path == "/_ping" || c.method == http.MethodGet && c.path == "/_ping" {
			continue
		}
		lines = append(lines, line{c.start, fmt.Sprintf("call  %-52s %7.1f → %7.1f (%5.1f ms)", shortPath(c), rel(c.start), rel(c.end), ms(c.end.Sub(c.start)))})
	}
	for _, ev := range s.events {
		lines = append(lines, line{ev.Time, "event " + ev.Action})
	}
	// The client: runs of requests with the same outcome.
	outcome := func(q poll) string {
		switch {
		case q.ok && q.version == s.version:
			return "ok new"
		case q.ok:
			return "ok old"
		}
		return q.reason
	}
	for j := 0; j < len(s.polls); {
		k := j
		for k+1 < len(s.polls) && outcome(s.polls[k+1]) == outcome(s.polls[j]) {
			k++
		}
		first, last := s.polls[j], s.polls[k]
		text := fmt.Sprintf("client %d × %s, sent %.1f–%.1f, answered %.1f–%.1f", k-j+1, outcome(first), rel(first.sent), rel(last.sent), rel(first.at), rel(last.at))
		lines = append(lines, line{first.sent, text})
		j = k + 1
	}
	lines = append(lines, line{s.served, "FIRST ANSWER OF THE NEW VERSION"})
	lines = append(lines, line{s.end, fmt.Sprintf("(address: old %s, new %s)", s.oldIP, s.newIP)})
	slices.SortStableFunc(lines, func(a, b line) int { return a.at.Compare(b.at) })
	var sb strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&sb, "%7.1f  %s\n", rel(l.at), l.text)
	}
	return sb.String()
}

// shortPath names a call with container ids cut to 12 characters and
// without its query.
var longID = regexp.MustCompile(`[0-9a-f]{64}`)

func shortPath(c engineCall) string {
	p := longID.ReplaceAllStringFunc(c.path, func(id string) string { return id[:12] })
	return c.method + " " + p
}

// traceParts are the parts of a swap that parts reports, in their order.
var traceParts = []string{"to-pull", "pull", "pull-to-stop", "rename", "create", "stop", "kill-to-die", "die-to-stop", "stop-to-start", "rm", "start", "start-event-to-serving", "start-call-to-serving", "kill-to-serving"}

// parts splits the swap until its first answer of the new version: the
// engine calls made until then (by kind, the sum of their durations), the
// gaps between them, and the engine's own moments.
func (s *traceSwap) parts() map[string]time.Duration {
	out := map[string]time.Duration{}
	var pullStart, pullEnd, stopStart, stopEnd, startStart, startEnd time.Time
	for _, c := range s.calls {
		if !c.start.Before(s.served) {
			continue
		}
		kind := ""
		switch {
		case c.method == http.MethodPost && c.path == "/images/create":
			kind = "pull"
			if pullStart.IsZero() {
				pullStart = c.start
			}
			pullEnd = c.end
		case c.method == http.MethodPost && strings.HasSuffix(c.path, "/stop"):
			kind, stopStart, stopEnd = "stop", c.start, c.end
		case c.method == http.MethodPost && strings.HasSuffix(c.path, "/rename"):
			kind = "rename"
		case c.method == http.MethodPost && c.path == "/containers/create":
			kind = "create"
		case c.method == http.MethodPost && strings.HasSuffix(c.path, "/start"):
			kind, startStart, startEnd = "start", c.start, c.end
		case c.method == http.MethodDelete:
			kind = "rm"
		}
		if kind != "" {
			out[kind] += c.end.Sub(c.start)
		}
	}
	if !pullStart.IsZero() {
		out["to-pull"] = pullStart.Sub(s.t0)
	}
	if !pullEnd.IsZero() && !stopStart.IsZero() {
		out["pull-to-stop"] = stopStart.Sub(pullEnd)
	}
	if !stopEnd.IsZero() && !startStart.IsZero() {
		out["stop-to-start"] = startStart.Sub(stopEnd)
	}
	if !startEnd.IsZero() {
		out["start-call-to-serving"] = s.served.Sub(startEnd)
	}
	if t, ok := s.eventAt("start"); ok {
		out["start-event-to-serving"] = s.served.Sub(t)
	}
	kill, ok1 := s.eventAt("kill")
	die, ok2 := s.eventAt("die")
	stop, ok3 := s.eventAt("stop")
	if ok1 && ok2 {
		out["kill-to-die"] = die.Sub(kill)
	}
	if ok1 {
		out["kill-to-serving"] = s.served.Sub(kill)
	}
	if ok2 && ok3 {
		out["die-to-stop"] = stop.Sub(die)
	}
	return out
}

// containerIP returns the address of the container on its first network.
func containerIP(tb testing.TB, eng *testenv.Eng, name string) string {
	in := eng.Inspect(tb, name)
	if in.NetworkSettings != nil {
		for _, ep := range in.NetworkSettings.Networks {
			if ep != nil && ep.IPAddress.IsValid() {
				return ep.IPAddress.String()
			}
		}
	}
	return ""
}
