package bench

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// bins holds the binaries built once per test process (go build is slow on
// two cores) in a directory TestMain removes.
var bins struct {
	dir string

	mu    sync.Mutex
	built map[string]string // by key
	errs  map[string]error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "liftoff-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds pkg (an import path of this module) once per process, with
// env added to the go command's environment.
func binary(tb testing.TB, key, pkg string, env ...string) string {
	tb.Helper()
	bins.mu.Lock()
	defer bins.mu.Unlock()
	if p, ok := bins.built[key]; ok {
		return p
	}
	if err, ok := bins.errs[key]; ok {
		tb.Fatalf("build %s: %v", pkg, err)
	}
	out := filepath.Join(bins.dir, key)
	cmd := exec.Command(goCommand(), "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	msg, err := cmd.CombinedOutput()
	if bins.built == nil {
		bins.built, bins.errs = map[string]string{}, map[string]error{}
	}
	if err != nil {
		bins.errs[key] = fmt.Errorf("%s: %v\n%s", cmd, err, msg)
		tb.Fatal(bins.errs[key])
	}
	tb.Logf("built %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	bins.built[key] = out
	return out
}

// goCommand is the go command: go test puts its own GOROOT/bin first on
// the PATH of the tests it runs.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// liftoffBinary is the daemon users run.
func liftoffBinary(tb testing.TB) string {
	return binary(tb, "liftoff", "github.com/liftoff-deploy/liftoff/cmd/liftoff")
}

// pollclientBinary is bench/pollclient for the machine the benchmark runs
// on, or (inContainer) static for the linux/amd64 test images.
func pollclientBinary(tb testing.TB, inContainer bool) string {
	if inContainer || runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		return binary(tb, "pollclient-linux-amd64", "github.com/liftoff-deploy/liftoff/bench/pollclient",
			"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	}
	return binary(tb, "pollclient", "github.com/liftoff-deploy/liftoff/bench/pollclient")
}

func needDockerCLI(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		tb.Skipf("SKIPPED, NO DOCKER CLI: this benchmark runs the docker command (%v)", err)
	}
}

// docker runs the docker CLI and returns how long it took.
func docker(tb testing.TB, args ...string) time.Duration {
	tb.Helper()
	start := time.Now()
	out, err := exec.Command("docker", args...).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		tb.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return took
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// event is one answer (or failure) seen by a pollclient.
type event struct {
	at      time.Time
	ok      bool
	version string // ok
	reason  string // !ok
	took    time.Duration
}

// start is when the request was sent.
func (e event) start() time.Time { return e.at.Add(-e.took) }

// recorder collects a pollclient's events as they come.
type recorder struct {
	mu     sync.Mutex
	events []event
	exited chan struct{}
	stderr testenv.SyncBuffer
}

// startPoller runs cmd, a pollclient on the host or "docker run" of one,
// and records what it prints. It is stopped with SIGTERM when the
// benchmark ends.
func startPoller(tb testing.TB, cmd *exec.Cmd) *recorder {
	tb.Helper()
	r := &recorder{exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = &r.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", cmd, err)
	}
	go func() {
		defer close(r.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ev, ok := parseEvent(sc.Text()); ok {
				r.mu.Lock()
				r.events = append(r.events, ev)
				r.mu.Unlock()
			}
		}
		cmd.Wait()
	}()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-r.exited
		}
	})
	return r
}

func parseEvent(line string) (event, bool) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return event{}, false
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return event{}, false
	}
	us, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return event{}, false
	}
	ev := event{at: time.Unix(0, ns), took: time.Duration(us) * time.Microsecond}
	switch f[1] {
	case "ok":
		ev.ok, ev.version = true, f[2]
	case "err":
		ev.reason = f[2]
	default:
		return event{}, false
	}
	return ev, true
}

// waitServing waits for the first answer with version that came after
// since, and returns when it came.
func (r *recorder) waitServing(tb testing.TB, since time.Time, version string, timeout time.Duration) time.Time {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		r.mu.Lock()
		evs := r.events[seen:]
		for _, ev := range evs {
			if ev.ok && ev.version == version && ev.at.After(since) {
				r.mu.Unlock()
				return ev.at
			}
		}
		seen = len(r.events)
		r.mu.Unlock()
		select {
		case <-r.exited:
			tb.Fatalf("the poll client exited: %s", r.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("version %s not served within %s; last answers: %v", version, timeout, r.last(5))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *recorder) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, ev := range r.events[max(0, len(r.events)-n):] {
		if ev.ok {
			s = append(s, ev.at.Format("15:04:05.000")+" ok "+ev.version)
		} else {
			s = append(s, ev.at.Format("15:04:05.000")+" err "+ev.reason)
		}
	}
	return s
}

// trace writes the requests that ended in (from, to] to
// $BENCH_TRACES/<name>.txt, if set, with times relative to from: to see
// what a swap looked like.
func (r *recorder) trace(tb testing.TB, name string, from, to time.Time, marks map[string]time.Time) {
	dir := os.Getenv("BENCH_TRACES")
	if dir == "" {
		return
	}
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for k, t := range marks {
		lines = append(lines, line{t, "--- " + k})
	}
	r.mu.Lock()
	for _, ev := range r.events {
		if ev.at.After(from) && !ev.at.After(to) {
			s := "ok " + ev.version
			if !ev.ok {
				s = "err " + ev.reason
			}
			lines = append(lines, line{ev.at, fmt.Sprintf("%s (sent at %.1fms, took %v)", s, ms(ev.start().Sub(from)), ev.took.Round(100*time.Microsecond))})
		}
	}
	r.mu.Unlock()
	slices.SortStableFunc(lines, func(a, b line) int { return a.at.Compare(b.at) })
	var buf bytes.Buffer
	for _, l := range lines {
		fmt.Fprintf(&buf, "%8.1fms %s\n", ms(l.at.Sub(from)), l.text)
	}
	os.WriteFile(filepath.Join(dir, strings.NewReplacer("/", "_", "=", "_").Replace(name)+".txt"), buf.Bytes(), 0o644)
}

// slow is how long an answer may take before it counts as a stall: the
// test app answers in about a millisecond.
const slow = 200 * time.Millisecond

// swapStats is what a client saw during one swap. Requests are ordered by
// when they were sent.
type swapStats struct {
	failed int // requests that got no answer (error, or none within the client's timeout)
	// downtime runs from the last answered request before the first
	// failed one to the first answered request after the last failed one.
	// 0 without failures. Where answered and failed requests mix (start-
	// first sends some requests to a container that cannot answer yet),
	// it is the span of the trouble, not an outage.
	downtime time.Duration
	// outage is the longest run of failed requests in a row, measured the
	// same way: how long nothing at all was answered.
	outage  time.Duration
	stalled int           // answered, but slower than slow
	slowest time.Duration // the slowest answer
	reasons map[string]int
}

// stats looks at the requests sent in (from, to].
func (r *recorder) stats(tb testing.TB, from, to time.Time) swapStats {
	tb.Helper()
	r.mu.Lock()
	evs := slices.Clone(r.events)
	r.mu.Unlock()
	// Lines come as requests end; requests run concurrently.
	slices.SortStableFunc(evs, func(a, b event) int { return a.start().Compare(b.start()) })
	s := swapStats{reasons: map[string]int{}}
	var lastOK, firstBefore time.Time // starts
	inRun := false
	for _, ev := range evs {
		start := ev.start()
		if !start.After(from) {
			if ev.ok {
				lastOK = start
			}
			continue
		}
		if start.After(to) && !inRun {
			break
		}
		if !ev.ok {
			if start.After(to) {
				continue // past to, only the answer that ends a run counts
			}
			s.failed++
			s.reasons[ev.reason]++
			if !inRun {
				inRun = true
				if firstBefore.IsZero() {
					firstBefore = lastOK
				}
			}
			continue
		}
		if !start.After(to) {
			s.slowest = max(s.slowest, ev.took)
			if ev.took > slow {
				s.stalled++
			}
		}
		if inRun {
			inRun = false
			if lastOK.IsZero() {
				tb.Fatalf("failed requests without an answered one before them")
			}
			s.outage = max(s.outage, start.Sub(lastOK))
			s.downtime = start.Sub(firstBefore)
		}
		lastOK = start
	}
	if inRun {
		tb.Fatalf("failed requests without an answered one after them")
	}
	return s
}

// hostPoller polls the app on a published port from the host.
func hostPoller(tb testing.TB, port int) *recorder {
	tb.Helper()
	return startPoller(tb, exec.Command(pollclientBinary(tb, false),
		"-url", fmt.Sprintf("http://127.0.0.1:%d/", port)))
}

// containerPoller polls url from a container on network: through a network
// alias, as the other services of a compose project reach the app.
func containerPoller(tb testing.TB, eng *testenv.Eng, reg *testenv.Reg, network, url string) *recorder {
	tb.Helper()
	needDockerCLI(tb)
	ref := pushPollclient(tb, reg)
	docker(tb, "pull", "-q", ref)
	name := eng.UniqueName(tb, "poll")
	// Attached, not -d: its output streams to us. The sweep of testenv
	// removes the container; the SIGTERM of startPoller's cleanup is
	// passed on to it by the CLI.
	return startPoller(tb, exec.Command("docker", "run", "--name", name, "--network", network, ref, "-url", url))
}

// pushPollclient pushes an image holding only the pollclient to reg.
func pushPollclient(tb testing.TB, reg *testenv.Reg) string {
	tb.Helper()
	bin, err := os.ReadFile(pollclientBinary(tb, true))
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: "pollclient", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		tb.Fatal(err)
	}
	tw.Write(bin)
	tw.Close()
	zw.Close()
	gz := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil })
	if err != nil {
		tb.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		tb.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	cf = cf.DeepCopy()
	// Without os and architecture the engine refuses to run the image.
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{"/pollclient"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		tb.Fatal(err)
	}
	ref := reg.Ref("bench/pollclient", "latest")
	tag, err := name.NewTag(ref)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		tb.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// daemon is the liftoff binary serving one deployment, with DockerHub
// mirrored by a test registry.
type daemon struct {
	tb    testing.TB
	reg   *testenv.Reg
	base  string // http://127.0.0.1:PORT
	name  string // the deployment and its container
	repo  string // acme/<name>, as DockerHub names it
	logMu sync.Mutex
	log   bytes.Buffer
	// when liftoff logged "deploy started" and "deploy finished"
	started  []time.Time
	finished []finished
}

type finished struct {
	at      time.Time
	outcome string
}

// target is how the deployment runs.
type target struct {
	strategy  string // stop-first or start-first
	minUptime string // "" for the default
	port      int    // published on 127.0.0.1 unless 0
	network   string // with alias "app" on it, unless ""
}

const hookToken = "bench-token-0123456789abcdef0123456789"

// benchEnv is what the generated config's environment and deployment add
// to the test image's (empty) environment; BenchmarkDockerCLI passes the
// same with -e.
var benchEnv = []string{"APP_ENV=bench", "STATIC_URL=/static/", "SENTRY_ENV=bench"}

func startDaemon(tb testing.TB, reg *testenv.Reg, name string, t target) *daemon {
	tb.Helper()
	bin := liftoffBinary(tb)
	d := &daemon{tb: tb, reg: reg, name: name, repo: "acme/" + name}
	dir := tb.TempDir()
	var c strings.Builder
	fmt.Fprintf(&c, "listen: 127.0.0.1:0\nhistory: %q\n", filepath.Join(dir, "liftoff.db"))
	fmt.Fprintf(&c, "hooks:\n  - source: dockerhub\n    token: %s\n", hookToken)
	fmt.Fprintf(&c, "registries:\n  docker.io:\n    mirror: %q\n", reg.Host())
	fmt.Fprintf(&c, "environments:\n  bench:\n    env: {APP_ENV: bench, STATIC_URL: /static/}\n")
	fmt.Fprintf(&c, "deployments:\n  - name: %s\n    image: %s\n    tags: [staging]\n    environment: bench\n    env: {SENTRY_ENV: bench}\n", name, d.repo)
	fmt.Fprintf(&c, "    strategy: %s\n    container:\n      restart: \"no\"\n", t.strategy)
	if t.port != 0 {
		fmt.Fprintf(&c, "      ports: [\"127.0.0.1:%d:%d\"]\n", t.port, testenv.AppPort)
	}
	if t.network != "" {
		fmt.Fprintf(&c, "      networks: [%s]\n      aliases: [app]\n", t.network)
	}
	if t.minUptime != "" {
		fmt.Fprintf(&c, "    health: {min_uptime: %s}\n", t.minUptime)
	}
	path := filepath.Join(dir, "liftoff.yaml")
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		tb.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", "--config", path, "--log-level", "info")
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start liftoff: %v", err)
	}
	addr := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			// liftoff's timestamps have whole seconds; the arrival of the
			// line through the pipe says more.
			now := time.Now()
			var m struct{ Message, Listen, Outcome string }
			json.Unmarshal([]byte(line), &m)
			d.logMu.Lock()
			d.log.WriteString(now.Format("15:04:05.000 ") + line + "\n")
			switch m.Message {
			case "deploy started":
				d.started = append(d.started, now)
			case "deploy finished":
				d.finished = append(d.finished, finished{now, m.Outcome})
			}
			d.logMu.Unlock()
			if m.Message == "liftoff started" {
				select {
				case addr <- m.Listen:
				default:
				}
			}
		}
		cmd.Wait()
	}()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			tb.Errorf("liftoff did not stop within 30s of SIGTERM; killed")
			cmd.Process.Kill()
			<-exited
		}
		if dir := os.Getenv("BENCH_LIFTOFF_LOGS"); dir != "" {
			os.WriteFile(filepath.Join(dir, name+".log"), []byte(c.String()+"\n"+d.logText()), 0o644)
		}
		if tb.Failed() {
			tb.Logf("config:\n%s\nliftoff's log:\n%s", c.String(), d.logText())
		}
	})
	select {
	case a := <-addr:
		d.base = "http://" + a
	case <-exited:
		tb.Fatalf("liftoff exited at start:\n%s", d.logText())
	case <-time.After(30 * time.Second):
		tb.Fatalf("liftoff did not start within 30s:\n%s", d.logText())
	}
	// Ready once the engine answers.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(d.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("liftoff not ready within 15s (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

func (d *daemon) logText() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.String()
}

func (d *daemon) push(version string) string {
	d.tb.Helper()
	return d.reg.Push(d.tb, d.repo, "staging", testenv.AppImage{Version: version})
}

// hook delivers a DockerHub push of the staging tag.
func (d *daemon) hook() {
	d.tb.Helper()
	resp, err := http.Post(d.base+"/hooks/dockerhub/"+hookToken, "application/json",
		strings.NewReader(testenv.DockerHubPayload(d.repo, "staging")))
	if err != nil {
		d.tb.Fatalf("hook: %v", err)
	}
	defer resp.Body.Close()
	var a struct{ Accepted []string }
	body, _ := io.ReadAll(resp.Body)
	json.Unmarshal(body, &a)
	if resp.StatusCode != http.StatusAccepted || !slices.Contains(a.Accepted, d.name) {
		d.tb.Fatalf("hook: %d %s", resp.StatusCode, body)
	}
}

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

// waitDeploys waits until liftoff has logged n finished deploys, all
// succeeded, and returns when it logged the start and the end of the last.
func (d *daemon) waitDeploys(n int) (started, ended time.Time) {
	d.tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d.logMu.Lock()
		fin, st := slices.Clone(d.finished), slices.Clone(d.started)
		d.logMu.Unlock()
		if len(fin) >= n {
			for i, f := range fin {
				if f.outcome != "succeeded" {
					d.tb.Fatalf("deploy %d: %s, want succeeded", i+1, f.outcome)
				}
			}
			return st[n-1], fin[n-1].at
		}
		if time.Now().After(deadline) {
			d.tb.Fatalf("%d deploys not finished within 2m (%d finished)", n, len(fin))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// phases are liftoff's deploy steps, in order.
var phases = []string{"resolve", "pull", "prepare", "stop", "rename", "create", "start", "gate", "publish", "cleanup"}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}
