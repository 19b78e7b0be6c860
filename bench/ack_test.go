package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// The hook acknowledgement benchmarks load liftoff's webhook with
// deliveries that match no deployment (answered 202, nothing deployed),
// and compare it with ackbare, a bare net/http server that reads and
// parses the same JSON and answers 202, in the same run on the same
// machine. They need no Docker engine.
//
// The load is wrk (-t2 -c32, a Lua script POSTs the payload) when it is
// installed, else a Go load generator in this process (32 keep-alive
// connections; slower than wrk, so its numbers are lower for both).

// ackConns is the number of connections the load keeps open.
const ackConns = 32

// ackRepo is the repository of the deliveries: no deployment uses it.
const ackRepo = "acme/nobody-deploys-this"

// ackDuration is how long each measured load lasts: BENCH_ACK_DURATION,
// default 5s.
func ackDuration(tb testing.TB) time.Duration {
	s := os.Getenv("BENCH_ACK_DURATION")
	if s == "" {
		return 5 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		tb.Fatalf("BENCH_ACK_DURATION=%q: want a duration such as 5s", s)
	}
	return d
}

// BenchmarkHookAck measures how many deliveries a second liftoff
// acknowledges, and how fast, against the bare handler: each iteration
// loads liftoff, then ackbare (after one second of warm-up for each, once),
// for BENCH_ACK_DURATION (5s) shared among the iterations, at least a
// second each, so that run.sh's -benchtime 5x does not last five times as
// long. The columns, means over the iterations: req/s, p50-ms and
// p99-ms of each; ratio is liftoff's req/s over the bare handler's (the
// goal is 0.8 or more); log-lines is liftoff's log lines per delivery (1:
// the "webhook" line); cpu-us/req is each process's CPU time (user and
// system) per request answered, which depends less on what else the
// machine runs than req/s; rss-idle-MB and rss-after-MB are liftoff's
// resident memory before the first delivery and after the last.
//
//	go test -run '^$' -bench BenchmarkHookAck -benchtime 1x ./bench/
func BenchmarkHookAck(b *testing.B) {
	lo := startAckLiftoff(b)
	bare := startAckBare(b)
	load := ackLoader(b)
	d := ackDuration(b)
	rssIdle := vmRSS(b, lo.pid)

	load(lo.url, time.Second)
	load(bare.url, time.Second)
	var los, bares []ackResult
	var loCPU, bareCPU time.Duration
	d = max(d/time.Duration(b.N), time.Second)
	for b.Loop() {
		cpu := procCPU(b, lo.pid)
		los = append(los, load(lo.url, d))
		loCPU += procCPU(b, lo.pid) - cpu
		cpu = procCPU(b, bare.pid)
		bares = append(bares, load(bare.url, d))
		bareCPU += procCPU(b, bare.pid) - cpu
	}
	lr, br := meanResult(los), meanResult(bares)
	rssAfter := vmRSS(b, lo.pid)

	deliveries, other := lo.deliveries(b)
	lines := lo.logLines(b)
	b.ReportMetric(lr.rps, "liftoff-req/s")
	b.ReportMetric(lr.p50, "liftoff-p50-ms")
	b.ReportMetric(lr.p99, "liftoff-p99-ms")
	b.ReportMetric(br.rps, "bare-req/s")
	b.ReportMetric(br.p50, "bare-p50-ms")
	b.ReportMetric(br.p99, "bare-p99-ms")
	b.ReportMetric(lr.rps/br.rps, "ratio")
	// CPU time per delivery depends less on what else the machine runs.
	b.ReportMetric(float64(loCPU.Microseconds())/float64(lr.requests), "liftoff-cpu-us/req")
	b.ReportMetric(float64(bareCPU.Microseconds())/float64(br.requests), "bare-cpu-us/req")
	if deliveries > 0 {
		b.ReportMetric(float64(lines.total)/deliveries, "log-lines")
	}
	b.ReportMetric(rssIdle/(1<<20), "rss-idle-MB")
	b.ReportMetric(rssAfter/(1<<20), "rss-after-MB")
	b.Logf("%s, %d×%v: liftoff %.0f req/s (p50 %.2f ms, p99 %.2f ms, %d errors, %.0f µs CPU a delivery), bare %.0f req/s (p50 %.2f ms, p99 %.2f ms, %d errors, %.0f µs CPU): %.2f×",
		lr.tool, len(los), d, lr.rps, lr.p50, lr.p99, lr.errors, float64(loCPU.Microseconds())/float64(lr.requests),
		br.rps, br.p50, br.p99, br.errors, float64(bareCPU.Microseconds())/float64(br.requests), lr.rps/br.rps)
	b.Logf("liftoff: %.0f deliveries ignored (%.0f with another outcome), %s; RSS %.1f MB idle, %.1f MB after",
		deliveries, other, lines, rssIdle/(1<<20), rssAfter/(1<<20))
}

// BenchmarkHookAckRSS sends BENCH_ACK_DELIVERIES deliveries that match
// nothing (say 1000000: about a minute) and reports liftoff's resident
// memory before, every tenth of the way, and after ten seconds of rest.
// Without BENCH_ACK_DELIVERIES it skips: it takes too long for every run.
//
//	BENCH_ACK_DELIVERIES=1000000 go test -run '^$' -bench BenchmarkHookAckRSS -benchtime 1x -timeout 30m ./bench/
func BenchmarkHookAckRSS(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("BENCH_ACK_DELIVERIES"))
	if n <= 0 {
		b.Skip("SKIPPED: set BENCH_ACK_DELIVERIES (say 1000000) to send that many deliveries and watch liftoff's memory")
	}
	for b.Loop() {
		lo := startAckLiftoff(b)
		rssIdle := vmRSS(b, lo.pid)
		b.Logf("RSS idle: %.1f MB", rssIdle/(1<<20))
		var samples []string
		peak := rssIdle
		next := n / 10
		done := ackUntil(b, lo.url, func() bool {
			got, _ := lo.deliveries(b)
			if int(got) >= next {
				rss := vmRSS(b, lo.pid)
				peak = max(peak, rss)
				samples = append(samples, fmt.Sprintf("%dk %.1f", int(got)/1000, rss/(1<<20)))
				next += n / 10
			}
			return int(got) >= n
		})
		rssAfter := vmRSS(b, lo.pid)
		time.Sleep(10 * time.Second)
		rssRested := vmRSS(b, lo.pid)
		delivered, other := lo.deliveries(b)
		b.ReportMetric(delivered, "deliveries")
		b.ReportMetric(rssIdle/(1<<20), "rss-idle-MB")
		b.ReportMetric(rssAfter/(1<<20), "rss-after-MB")
		b.ReportMetric(rssRested/(1<<20), "rss-rested-MB")
		b.ReportMetric(peak/(1<<20), "rss-peak-MB")
		b.ReportMetric(vmHWM(b, lo.pid)/(1<<20), "rss-hwm-MB")
		b.Logf("%.0f deliveries (%.0f with another outcome) in %v; RSS MB by deliveries: idle %.1f, %s; after %.1f, after 10s of rest %.1f; %s",
			delivered, other, done.Round(time.Second), rssIdle/(1<<20), strings.Join(samples, ", "),
			rssAfter/(1<<20), rssRested/(1<<20), lo.logLines(b))
	}
}

// ackProc is liftoff or ackbare, started for the ack benchmarks.
type ackProc struct {
	pid  int
	base string // http://127.0.0.1:PORT
	url  string // the hook's URL
	log  string // liftoff's log file
}

// startAckLiftoff starts the liftoff binary with one deployment (of
// another repository than the deliveries'), its history in a temporary
// directory, logging JSON at info level to a file, as users run it. The
// rate limit is on, as by default, but high enough never to be reached
// from the one client address of the load.
func startAckLiftoff(tb testing.TB) *ackProc {
	tb.Helper()
	bin := liftoffBinary(tb)
	dir := tb.TempDir()
	var c strings.Builder
	fmt.Fprintf(&c, "listen: 127.0.0.1:0\nhistory: %q\nhook_rate_limit: 1000000000\n", filepath.Join(dir, "liftoff.db"))
	fmt.Fprintf(&c, "hooks:\n  - source: dockerhub\n    token: %s\n", hookToken)
	fmt.Fprintf(&c, "environments:\n  bench: {}\n")
	fmt.Fprintf(&c, "deployments:\n  - name: ack-web\n    image: acme/ack-web\n    tags: [staging]\n    environment: bench\n")
	config := filepath.Join(dir, "liftoff.yaml")
	if err := os.WriteFile(config, []byte(c.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	p := &ackProc{log: filepath.Join(dir, "liftoff.log")}
	logf, err := os.Create(p.log)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--config", config, "--log-level", "info")
	cmd.Env = os.Environ()
	cmd.Stderr = logf
	p.start(tb, cmd, func() (string, bool) {
		b, _ := os.ReadFile(p.log)
		for line := range strings.Lines(string(b)) {
			var m struct{ Message, Listen string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Message == "liftoff started" {
				return m.Listen, true
			}
		}
		return "", false
	})
	return p
}

// startAckBare starts bench/ackbare.
func startAckBare(tb testing.TB) *ackProc {
	tb.Helper()
	bin := binary(tb, "ackbare", "github.com/liftoff-deploy/liftoff/bench/ackbare")
	cmd := exec.Command(bin)
	var mu sync.Mutex
	var out bytes.Buffer
	cmd.Stdout = writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(b)
	})
	p := &ackProc{}
	p.start(tb, cmd, func() (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		addr, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "listening ")
		return addr, ok
	})
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// start starts cmd, waits until addr tells its address, and stops it with
// SIGTERM when tb ends.
func (p *ackProc) start(tb testing.TB, cmd *exec.Cmd, addr func() (string, bool)) {
	tb.Helper()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			tb.Errorf("%s did not stop within 30s of SIGTERM; killed", filepath.Base(cmd.Path))
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a, ok := addr(); ok {
			p.pid = cmd.Process.Pid
			p.base = "http://" + a
			p.url = p.base + "/hooks/dockerhub/" + hookToken
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(p.log)
			tb.Fatalf("%s exited at start: %s\n%s", filepath.Base(cmd.Path), cmd.ProcessState, b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not start within 30s", filepath.Base(cmd.Path))
		}
	}
}

// deliveries reads liftoff_webhooks_total of the dockerhub source: the
// deliveries ignored (all of the benchmark's, if all went well) and those
// with another outcome.
func (p *ackProc) deliveries(tb testing.TB) (ignored, other float64) {
	tb.Helper()
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		tb.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || !strings.HasPrefix(line, "liftoff_webhooks_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		if label(line[:i], "outcome") == "ignored" {
			ignored += v
		} else {
			other += v
		}
	}
	return ignored, other
}

// logCount is liftoff's log lines by message.
type logCount struct {
	total, webhook, access, other int
	others                        map[string]int
}

func (c logCount) String() string {
	var o []string
	for _, k := range slices.Sorted(maps.Keys(c.others)) {
		o = append(o, fmt.Sprintf("%q×%d", k, c.others[k]))
	}
	return fmt.Sprintf("log lines: %d \"webhook\", %d \"http request\", %d other (%s)", c.webhook, c.access, c.other, strings.Join(o, ", "))
}

func (p *ackProc) logLines(tb testing.TB) logCount {
	tb.Helper()
	f, err := os.Open(p.log)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	c := logCount{others: map[string]int{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		c.total++
		line := sc.Bytes()
		if bytes.Contains(line, []byte(hookToken)) {
			tb.Errorf("the hook token is in liftoff's log: %s", line)
		}
		switch {
		case bytes.Contains(line, []byte(`"message":"webhook"`)):
			c.webhook++
		case bytes.Contains(line, []byte(`"message":"http request"`)):
			c.access++
		default:
			c.other++
			var m struct{ Message string }
			json.Unmarshal(line, &m)
			c.others[m.Message]++
		}
	}
	return c
}

// vmRSS is the resident memory of process pid, in bytes.
func vmRSS(tb testing.TB, pid int) float64 { return procStatus(tb, pid, "VmRSS") }

// vmHWM is the peak resident memory of process pid, in bytes.
func vmHWM(tb testing.TB, pid int) float64 { return procStatus(tb, pid, "VmHWM") }

func procStatus(tb testing.TB, pid int, field string) float64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("memory of %d: %v", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				tb.Fatalf("%s: %q", field, line)
			}
			return kb * 1024
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// procCPU is the CPU time process pid has used, user and system.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatalf("CPU time of %d: %v", pid, err)
	}
	// After the command's name in parentheses: state, then 10 fields
	// before utime and stime, in clock ticks (USER_HZ, 100 on Linux).
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		tb.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// ackResult is one load's outcome.
type ackResult struct {
	tool     string
	requests int
	errors   int // non-2xx answers and socket errors
	rps      float64
	p50, p99 float64 // ms
}

func meanResult(rs []ackResult) ackResult {
	m := ackResult{tool: rs[0].tool}
	for _, r := range rs {
		m.requests += r.requests
		m.errors += r.errors
		m.rps += r.rps / float64(len(rs))
		m.p50 += r.p50 / float64(len(rs))
		m.p99 += r.p99 / float64(len(rs))
	}
	return m
}

// ackLoader returns what loads a hook URL with the payload for a while:
// wrk if it is installed (and BENCH_ACK_LOAD is not "go"), else the Go
// load generator.
func ackLoader(tb testing.TB) func(url string, d time.Duration) ackResult {
	tb.Helper()
	body := []byte(testenv.DockerHubPayload(ackRepo, "staging"))
	if wrk, err := exec.LookPath("wrk"); err == nil && os.Getenv("BENCH_ACK_LOAD") != "go" {
		script := wrkScript(tb, body)
		return func(url string, d time.Duration) ackResult { return runWrk(tb, wrk, script, url, d) }
	}
	tb.Logf("wrk is not installed (Debian: apt-get install wrk) or BENCH_ACK_LOAD=go: the load is a Go generator in the test")
	return func(url string, d time.Duration) ackResult {
		return goLoad(tb, url, body, func(start time.Time) bool { return time.Since(start) < d })
	}
}

// ackUntil loads url with the payload until done says so (asked every
// second), and returns how long it took.
func ackUntil(tb testing.TB, url string, done func() bool) time.Duration {
	tb.Helper()
	body := []byte(testenv.DockerHubPayload(ackRepo, "staging"))
	start := time.Now()
	var stop func()
	if wrk, err := exec.LookPath("wrk"); err == nil && os.Getenv("BENCH_ACK_LOAD") != "go" {
		// wrk runs for a set time: run it for long and interrupt it.
		cmd := exec.Command(wrk, "-t2", "-c"+strconv.Itoa(ackConns), "-d1h", "-s", wrkScript(tb, body), url)
		if err := cmd.Start(); err != nil {
			tb.Fatalf("wrk: %v", err)
		}
		stop = func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	} else {
		var halt atomic.Bool
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			goLoad(tb, url, body, func(time.Time) bool { return !halt.Load() })
		}()
		stop = func() { halt.Store(true); <-finished }
	}
	for !done() {
		time.Sleep(time.Second)
	}
	stop()
	return time.Since(start)
}

// wrkScript writes the Lua script that makes wrk POST body, and print its
// results in one line that runWrk reads.
func wrkScript(tb testing.TB, body []byte) string {
	tb.Helper()
	dir := tb.TempDir()
	bodyPath := filepath.Join(dir, "body.json")
	if err := os.WriteFile(bodyPath, body, 0o644); err != nil {
		tb.Fatal(err)
	}
	script := filepath.Join(dir, "post.lua")
	lua := fmt.Sprintf(`local f = assert(io.open(%q, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("ACK requests=%%d duration_us=%%d p50_us=%%d p99_us=%%d status_errors=%%d socket_errors=%%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`, bodyPath)
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		tb.Fatal(err)
	}
	return script
}

func runWrk(tb testing.TB, wrk, script, url string, d time.Duration) ackResult {
	tb.Helper()
	out, err := exec.Command(wrk, "-t2", "-c"+strconv.Itoa(ackConns), "-d"+strconv.Itoa(max(int(d.Seconds()), 1))+"s", "--latency", "-s", script, url).CombinedOutput()
	if err != nil {
		tb.Fatalf("wrk: %v\n%s", err, out)
	}
	var requests, durationUS, p50, p99, statusErrs, socketErrs int
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(line, "ACK "); ok {
			_, err = fmt.Sscanf(rest, "requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d socket_errors=%d",
				&requests, &durationUS, &p50, &p99, &statusErrs, &socketErrs)
		}
	}
	if err != nil || durationUS == 0 {
		tb.Fatalf("wrk's output has no results (%v):\n%s", err, out)
	}
	return ackResult{
		tool:     "wrk -t2 -c" + strconv.Itoa(ackConns),
		requests: requests,
		errors:   statusErrs + socketErrs,
		rps:      float64(requests) / (float64(durationUS) / 1e6),
		p50:      float64(p50) / 1000,
		p99:      float64(p99) / 1000,
	}
}

// goLoad POSTs body to url on ackConns keep-alive connections while more
// says so.
func goLoad(tb testing.TB, url string, body []byte, more func(start time.Time) bool) ackResult {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: ackConns, MaxConnsPerHost: ackConns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	lat := make([][]time.Duration, ackConns)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ackConns {
		wg.Go(func() {
			for more(start) {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs.Add(1)
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := ackResult{tool: fmt.Sprintf("Go load generator, %d connections", ackConns), requests: len(all), errors: int(errs.Load())}
	if len(all) > 0 {
		r.rps = float64(len(all)) / took.Seconds()
		r.p50 = ms(all[len(all)*50/100])
		r.p99 = ms(all[len(all)*99/100])
	}
	return r
}
