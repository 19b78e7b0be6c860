package daemon_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// Issue 3, the engine half: the Docker engine goes away under a deploy.
// Restarting this machine's dockerd would disturb every other test, so
// liftoff talks to the engine through a Unix-socket proxy that the test
// takes down (connections refused, open ones cut) and brings back.

// engineProxy forwards a Unix socket to the Docker engine's socket.
type engineProxy struct {
	path            string // the proxy's socket, for docker_host
	network, target string // the engine's

	mu    sync.Mutex
	ln    net.Listener // nil while down
	conns map[net.Conn]bool
}

func newEngineProxy(t *testing.T) *engineProxy {
	t.Helper()
	p := &engineProxy{network: "unix", target: "/var/run/docker.sock", conns: map[net.Conn]bool{}}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		scheme, addr, _ := strings.Cut(h, "://")
		switch scheme {
		case "unix":
			p.target = addr
		case "tcp":
			p.network, p.target = "tcp", addr
		default:
			t.Fatalf("engine proxy: DOCKER_HOST %q: only unix:// and tcp:// are proxied", h)
		}
	}
	// Socket paths are limited to about 100 bytes: t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "lt-px-")
	if err != nil {
		t.Fatal(err)
	}
	p.path = filepath.Join(dir, "engine.sock")
	t.Cleanup(func() {
		p.down()
		os.RemoveAll(dir)
	})
	p.up(t)
	return p
}

func (p *engineProxy) host() string { return "unix://" + p.path }

// up makes the engine answer again.
func (p *engineProxy) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatalf("engine proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(ln, c)
		}
	}()
}

// down makes the engine unreachable: the socket is gone (connections are
// refused) and the connections open through it are cut.
func (p *engineProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close() // also removes the socket file
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// track keeps c to be cut by down, unless the proxy went down since ln
// accepted it.
func (p *engineProxy) track(ln net.Listener, c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != ln {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *engineProxy) forward(ln net.Listener, c net.Conn) {
	if !p.track(ln, c) {
		return
	}
	u, err := net.Dial(p.network, p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(ln, u) {
		c.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// outage is one deployment of a test registry image behind an engine
// proxy that goes down just before step, with an in-process liftoff.
type outage struct {
	e        *testenv.Eng
	proxy    *engineProxy
	d        *crashDaemon
	name     string
	repo     string
	db       string
	v1       string        // id of the v1 container
	wentDown chan struct{} // closed when the proxy went down
}

// newOutage starts liftoff with the engine behind a proxy that goes down
// just before the v2 deploy takes step; backoff is liftoff's RetryBackoff
// (0: the default, 1s).
func newOutage(t *testing.T, reg *testenv.Reg, repo string, startFirst bool, step string, backoff time.Duration) *outage {
	t.Helper()
	o := &outage{e: testenv.Engine(t), repo: repo, wentDown: make(chan struct{})}
	o.proxy = newEngineProxy(t)
	o.name = o.e.UniqueName(t, "outage")
	strategy := ""
	if startFirst {
		network := o.e.UniqueName(t, "outagenet")
		o.e.Network(t, network)
		strategy = fmt.Sprintf("    strategy: start-first\n    container: {networks: [%s], aliases: [app]}\n", network)
	}
	dir := t.TempDir()
	o.db = filepath.Join(dir, "liftoff.db")
	path := filepath.Join(dir, "liftoff.yaml")
	text := fmt.Sprintf(crashConfig, o.name, reg.Host(), repo, o.db, strategy) + "docker_host: " + o.proxy.host() + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool
	o.d = startCrashDaemon(t, path, liftoff.Options{
		WatchInterval: 200 * time.Millisecond,
		RetryBackoff:  backoff,
		BeforeStep: func(d, s string) {
			if d == o.name && s == step && armed.CompareAndSwap(true, false) {
				o.proxy.down()
				close(o.wentDown)
			}
		},
	})
	o.d.hook(t, repo, "v1")
	if r := o.d.next(t); r.Outcome != deploy.Succeeded {
		t.Fatalf("deploy of v1: %s %v", r.Outcome, r.Err)
	}
	o.v1 = o.e.ContainerID(t, o.name)
	if got := o.d.status(t, "/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz with the engine up: %d", got)
	}
	armed.Store(true)
	o.d.hook(t, repo, "v2")
	select {
	case <-o.wentDown:
	case r := <-o.d.results:
		t.Fatalf("the v2 deploy ended (%s %v) before step %s", r.Outcome, r.Err, step)
	case <-time.After(2 * time.Minute):
		t.Fatalf("the v2 deploy did not reach step %s within 2m", step)
	}
	return o
}

// whileDown checks what liftoff says while the engine is away: not ready,
// and the failures counted; it returns once the deploy's op failed n times.
func (o *outage) whileDown(t *testing.T, op string, n float64) {
	t.Helper()
	if got := o.d.status(t, "/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the engine away: %d, want 503", got)
	}
	deadline := time.Now().Add(time.Minute)
	for o.d.dockerErrors(t, op) < n {
		if time.Now().After(deadline) {
			t.Fatalf("liftoff_docker_errors_total{op=%q} still below %v a minute into the outage", op, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := o.d.dockerErrors(t, "ping"); n < 1 {
		t.Errorf("liftoff_docker_errors_total{op=\"ping\"} = %v after a failed /readyz", n)
	}
}

// after checks that exactly one container of the deployment runs, as
// version, and that the journal's v2 deploy has outcome o and, if
// interrupted is set, says where it was interrupted; a v2 deploy that did
// not succeed must have been resumed, successfully.
func (o *outage) after(t *testing.T, version string, want deploy.Outcome, interrupted string) {
	t.Helper()
	waitSettled(t, o.db)
	if got := containerStates(t, o.e, o.name); !slices.Equal(got, []string{o.name + " running"}) {
		t.Fatalf("after the outage: %v, want only %s running", got, o.name)
	}
	got, _ := o.e.AppGet(t, o.name)
	id := o.e.ContainerID(t, o.name)
	if got != version || (version == "v1") != (id == o.v1) {
		t.Errorf("%s serves %q from container %.12s (v1 was %.12s), want %s", o.name, got, id, o.v1, version)
	}
	if got := o.d.status(t, "/readyz"); got != http.StatusOK {
		t.Errorf("/readyz with the engine back: %d", got)
	}
	recs := list(t, o.db, o.name)
	if want != deploy.Succeeded {
		if len(recs) != 3 || recs[0].Trigger != deploy.TriggerResume || recs[0].Outcome != deploy.Succeeded {
			t.Fatalf("journal: %+v, want the v1 deploy, the interrupted v2 one, and v2 resumed, successfully", recs)
		}
		recs = recs[1:]
	}
	if len(recs) != 2 {
		t.Fatalf("journal: %+v, want 2 deploys", recs)
	}
	if r := recs[0]; r.Tag != "v2" || r.Outcome != want || !strings.Contains(r.Error, interrupted) {
		t.Errorf("journal of the v2 deploy: outcome %s error %q, want %s %q", r.Outcome, r.Error, want, interrupted)
	}
}

// status GETs path on the daemon and returns the status code.
func (d *crashDaemon) status(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get(d.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// dockerErrors reads liftoff_docker_errors_total{engine="local",op} from
// /metrics.
func (d *crashDaemon) dockerErrors(t *testing.T, op string) float64 {
	t.Helper()
	resp, err := http.Get(d.base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	prefix := fmt.Sprintf("liftoff_docker_errors_total{engine=\"local\",op=%q} ", op)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no %s", strings.TrimSpace(prefix))
	return 0
}

func pushVersions(t *testing.T, reg *testenv.Reg, repo string) {
	t.Helper()
	reg.Push(t, repo, "v1", testenv.AppImage{Version: "v1"})
	reg.Push(t, repo, "v2", testenv.AppImage{Version: "v2"})
}

// TestEngineAwayDuringDeploy: the engine goes away just before a step and
// comes back within the retries: the step is retried with backoff and the
// deploy completes.
func TestEngineAwayDuringDeploy(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	eng := testenv.Engine(t)
	reg := eng.Registry(t)
	repo := "acme/" + eng.UniqueName(t, "outage")
	pushVersions(t, reg, repo)
	for _, tc := range []struct {
		startFirst bool
		step, op   string // op: what fails, as liftoff_docker_errors_total names it
	}{
		{false, deploy.StepRename, "rename"},
		{false, deploy.StepCreate, "create"},
		{false, deploy.StepStop, "stop"},
		{false, deploy.StepGate, "inspect"},
		{false, deploy.StepCleanup, "remove"},
		{true, deploy.StepStart, "start"},
		{true, deploy.StepCleanup, "rename"},
	} {
		name := "stop-first/" + tc.step
		if tc.startFirst {
			name = "start-first/" + tc.step
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := newOutage(t, reg, repo, tc.startFirst, tc.step, 0)
			// Down for two tries: the first, and the second after a
			// backoff of 1s; the third, after 2s more, finds it back.
			o.whileDown(t, tc.op, 2)
			o.proxy.up(t)
			r := o.d.next(t)
			if r.Outcome != deploy.Succeeded {
				t.Fatalf("deploy through the outage: %s %v", r.Outcome, r.Err)
			}
			retried := func(l string) bool {
				return strings.Contains(l, "retrying") && strings.Contains(l, `"step":"`+tc.step+`"`) && strings.Contains(l, `"try":2`)
			}
			if logs := o.d.logs.String(); !slices.ContainsFunc(strings.Split(logs, "\n"), retried) {
				t.Errorf("the log does not show step %s retried:\n%s", tc.step, logs)
			}
			o.after(t, "v2", deploy.Succeeded, "")
		})
	}
}

// TestEngineAwayLongerThanRetries: the engine goes away in the middle of a
// swap and stays away past every retry, the rollback's too, so the deploy
// fails with its swap half done. When the engine answers again, the Watch
// loop's reconcile must repair it: exactly one container runs.
//
// The cases wait out every retry (the step's and then the rollback's):
// with a first backoff of 50ms rather than the default 1s, that is about
// 3s, not a minute; what is tested is what the retries leave when they run
// out, not how long they take (TestEngineAwayDuringDeploy waits out the
// default backoff). The cases still run side by side.
func TestEngineAwayLongerThanRetries(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	eng := testenv.Engine(t)
	reg := eng.Registry(t)
	repo := "acme/" + eng.UniqueName(t, "outage")
	pushVersions(t, reg, repo)
	cases := []struct {
		name       string
		startFirst bool
		step, op   string
		version    string // what runs after the repair
		want       deploy.Outcome
		repaired   string // the journal's word on the repair
	}{
		// The old container was stopped and the engine vanished before
		// the new one started: without a repair nothing would run at
		// all. The repair puts v1 back, then the push, never deployed,
		// is resumed.
		{"stop-first/start", false, deploy.StepStart, "start", "v2", deploy.RolledBack, "interrupted at step rollback"},
		// The new container had passed its gate: the swap is finished.
		{"start-first/cleanup", true, deploy.StepCleanup, "rename", "v2", deploy.Succeeded, "interrupted at step cleanup"},
	}
	var wg sync.WaitGroup
	for _, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(tc.name, func(t *testing.T) {
				o := newOutage(t, reg, repo, tc.startFirst, tc.step, 50*time.Millisecond)
				o.whileDown(t, tc.op, 1)
				r := o.d.next(t)
				if r.Outcome != deploy.Failed || !errors.Is(r.Err, deploy.ErrUnavailable) {
					t.Fatalf("deploy with the engine away: %s %v", r.Outcome, r.Err)
				}
				t.Logf("with the engine away the deploy ended %s: %v; left: %v", r.Outcome, r.Err, containerStates(t, o.e, o.name))
				if un := unfinished(t, o.db); len(un) != 1 {
					t.Errorf("journal: %+v, want the half-done deploy unfinished, for reconcile", un)
				}
				if got := o.d.status(t, "/readyz"); got != http.StatusServiceUnavailable {
					t.Errorf("/readyz with the engine away: %d, want 503", got)
				}
				o.proxy.up(t)
				o.after(t, tc.version, tc.want, tc.repaired)
			})
		}()
	}
	wg.Wait()
}
