package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// The crash soak: the liftoff binary, as users run it, is SIGKILLed at
// moments spread evenly over a deploy and while the engine carries out each
// kind of call it made (a proxy holds the call, liftoff dies, the engine
// does it afterwards — possibly while the next liftoff reconciles), for
// stop-first and start-first, and during the stop of a container that takes
// its whole grace period. After each restart:
//
//   - within stop_timeout + 10s exactly one container of the deployment
//     runs and answers;
//   - it still answers 5s later (a swap of the resumed deploy may be under
//     way then: it must answer within 5s of the swap's end);
//   - in the end the pushed version serves, from the one container left,
//     and the journal holds no unfinished deploy and no open request.
//
// Each case starts from the state the previous one ended in, as a real
// daemon would.

// soakKills is how many moments over a deploy each strategy is killed at.
const soakKills = 30

// soakCase is one way to die.
type soakCase struct {
	name string
	// after the 202, die at this fraction of a clean deploy's duration...
	frac float64
	// ...or when the engine is asked for this call (method, path pattern
	// without the API version), which the proxy then holds for delay
	// before passing it on, liftoff being dead by then...
	method, path string
	delay        time.Duration
	// landed: restart liftoff only once the held call was carried out.
	// (Docker 20.10 loses count of a network's endpoints when a container
	// is removed while a connect or disconnect of it is under way — the
	// network can no longer be removed — so a late connect is let land
	// before the restart's repair removes the container.)
	landed bool
	// ...or this long into the stop of the old container (which ignores
	// SIGTERM: the engine needs the whole grace period).
	intoStop time.Duration
}

// soakLane is one deployment and the cases run against it in turn.
type soakLane struct {
	name       string
	startFirst bool
	ignoreTerm bool
	cases      []soakCase
}

// Engine calls, as the Docker API names them.
const (
	pathCreate  = `/containers/create`
	pathStart   = `/containers/[^/]+/start`
	pathStop    = `/containers/[^/]+/stop`
	pathRename  = `/containers/[^/]+/rename`
	pathRemove  = `/containers/[^/]+`
	pathConnect = `/networks/[^/]+/(dis)?connect`
)

func soakLanes() []soakLane {
	held := func(startFirst bool) []soakCase {
		calls := []struct{ name, method, path string }{
			{"create", http.MethodPost, pathCreate},
			{"start", http.MethodPost, pathStart},
			{"stop", http.MethodPost, pathStop},
			{"rename", http.MethodPost, pathRename},
			{"remove", http.MethodDelete, pathRemove},
		}
		var cs []soakCase
		for i, c := range calls {
			// Passed on before or after the next liftoff has begun to
			// reconcile.
			delay := 300 * time.Millisecond
			if i%2 == 1 {
				delay = 1500 * time.Millisecond
			}
			cs = append(cs, soakCase{name: fmt.Sprintf("held-%s-%s", c.name, delay), method: c.method, path: c.path, delay: delay})
		}
		if startFirst {
			cs = append(cs, soakCase{name: "held-disconnect", method: http.MethodPost, path: pathConnect, delay: 300 * time.Millisecond, landed: true})
		}
		return cs
	}
	// The spread moments go to two lanes per strategy, alternately, so
	// that they run side by side.
	spread := func(lane int) []soakCase {
		var cs []soakCase
		for i := lane; i < soakKills; i += 2 {
			f := float64(i) / soakKills
			cs = append(cs, soakCase{name: fmt.Sprintf("at-%02.0f%%", f*100), frac: f})
		}
		return cs
	}
	return []soakLane{
		{name: "stop-first-a", cases: append(spread(0), held(false)[:3]...)},
		{name: "stop-first-b", cases: append(spread(1), held(false)[3:]...)},
		{name: "start-first-a", startFirst: true, cases: append(spread(0), held(true)[:3]...)},
		{name: "start-first-b", startFirst: true, cases: append(spread(1), held(true)[3:]...)},
		{name: "slow-stop", ignoreTerm: true, cases: []soakCase{
			{name: "into-stop-0.3s", intoStop: 300 * time.Millisecond},
			{name: "into-stop-1.5s", intoStop: 1500 * time.Millisecond},
			{name: "into-stop-2.7s", intoStop: 2700 * time.Millisecond},
		}},
	}
}

// soakConfig: %[1]s name, %[2]s mirror, %[3]s repository, %[4]s history,
// %[5]s docker_host, %[6]s stop_timeout, %[7]s the container's and health's
// lines, %[8]s strategy.
const soakConfig = `
listen: 127.0.0.1:0
history: %[4]s
docker_host: %[5]s
hooks:
  - source: dockerhub
    token: ` + crashToken + `
registries:
  docker.io:
    mirror: %[2]s
environments:
  production:
    env: {DEBUG: "False"}
deployments:
  - name: %[1]s
    image: %[3]s
    tags: ["glob:v*"]
    environment: production
    strategy: %[8]s
    stop_timeout: %[6]s
%[7]s
`

func TestCrashSoak(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	bin := liftoffBinary(t)
	eng := testenv.Engine(t)
	reg := eng.Registry(t)
	lanes := soakLanes()
	var cases, failed atomic.Int64
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(lane.name, func(t *testing.T) {
				l := newSoak(t, bin, eng, reg, lane)
				for _, c := range lane.cases {
					cases.Add(1)
					if !t.Run(c.name, func(t *testing.T) { l.run(t, c) }) {
						failed.Add(1)
						// The state is unknown now: the lane stops here.
						return
					}
				}
			})
		}()
	}
	wg.Wait()
	t.Logf("crash soak: %d cases (SIGKILL at %d moments over a deploy for each strategy, during each engine call held, during a slow stop), %d failed",
		cases.Load(), soakKills, failed.Load())
}

// soak is a lane under way: its deployment, the running liftoff, and the
// version it serves.
type soak struct {
	t       *testing.T // the lane's: what outlives a case (the running liftoff)
	lane    soakLane
	bin     string
	eng     *testenv.Eng
	reg     *testenv.Reg
	proxy   *testenv.HoldProxy
	name    string // deployment and container
	repo    string // as Docker Hub names it
	config  string
	db      string
	stopFor time.Duration // stop_timeout
	child   *liftoffProcess
	version int           // the version that serves
	clean   time.Duration // a deploy without a crash, 202 to outcome
}

func newSoak(t *testing.T, bin string, eng *testenv.Eng, reg *testenv.Reg, lane soakLane) *soak {
	t.Helper()
	s := &soak{t: t, lane: lane, bin: bin, eng: eng, reg: reg, proxy: testenv.NewHoldProxy(t), stopFor: 2 * time.Second}
	s.name = eng.UniqueName(t, "soak")
	s.repo = "acme/" + s.name
	dir := t.TempDir()
	s.db = filepath.Join(dir, "liftoff.db")
	s.config = filepath.Join(dir, "liftoff.yaml")
	strategy := deployments.StopFirst
	var lines string
	if lane.startFirst {
		strategy = deployments.StartFirst
		network := eng.UniqueName(t, "soaknet")
		eng.Network(t, network)
		lines = fmt.Sprintf("    container: {networks: [%s], aliases: [app]}\n    health: {url: \"http://{container}:8000/healthz\", min_uptime: 500ms, timeout: 20s}", network)
	} else {
		port := freeTCPPort(t)
		lines = fmt.Sprintf("    container: {ports: [\"127.0.0.1:%d:8000\"]}\n    health: {url: \"http://127.0.0.1:%d/healthz\", min_uptime: 500ms, timeout: 20s}", port, port)
	}
	if lane.ignoreTerm {
		s.stopFor = 3 * time.Second
	}
	text := fmt.Sprintf(soakConfig, s.name, reg.Host(), s.repo, s.db, s.proxy.Host(), s.stopFor, lines, strategy)
	if err := os.WriteFile(s.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.child = startLiftoff(t, bin, s.config)

	// v1, then v2 timed: what a deploy takes without a crash.
	s.push(t, 1)
	s.deploy(t, 1)
	s.push(t, 2)
	start := time.Now()
	s.deploy(t, 2)
	s.clean = time.Since(start)
	t.Logf("a clean deploy takes %s", s.clean.Round(time.Millisecond))
	return s
}

func (s *soak) push(t *testing.T, v int) {
	t.Helper()
	img := testenv.AppImage{Version: fmt.Sprintf("v%d", v)}
	if s.lane.ignoreTerm {
		img.Env = []string{"TESTAPP_IGNORE_TERM=1"}
	}
	s.reg.Push(t, s.repo, img.Version, img)
}

// deploy sends the hook for version v and waits until it serves.
func (s *soak) deploy(t *testing.T, v int) {
	t.Helper()
	crashHook(t, s.child.base, s.repo, fmt.Sprintf("v%d", v), false)
	waitSettled(t, s.db)
	s.serves(t, v)
	s.version = v
}

// serves checks that the deployment's one container serves version v.
func (s *soak) serves(t *testing.T, v int) {
	t.Helper()
	if got := s.eng.Containers(t, s.name); !slices.Equal(got, []string{s.name + " running"}) {
		t.Fatalf("containers %v, want only %s running", got, s.name)
	}
	if got, _ := s.eng.AppGet(t, s.name); got != fmt.Sprintf("v%d", v) {
		t.Fatalf("%s serves %q, want v%d", s.name, got, v)
	}
}

// run is one case: push the next version, kill liftoff as the case says,
// start it again, and check.
func (s *soak) run(t *testing.T, c soakCase) {
	v := s.version + 1
	s.push(t, v)
	var held, stopped <-chan string
	var call *testenv.HeldCall
	switch {
	case c.method != "":
		call = s.proxy.Hold(c.method, c.path, c.delay)
		held = call.Held
	case c.intoStop > 0:
		stopped = s.proxy.Hold(http.MethodPost, pathStop, 0).Held
	}
	defer s.proxy.Disarm()
	crashHook(t, s.child.base, s.repo, fmt.Sprintf("v%d", v), false)
	accepted := time.Now()
	var why string
	select {
	case call := <-held:
		why = "while the engine was asked for " + call
	case call := <-stopped:
		time.Sleep(c.intoStop)
		why = fmt.Sprintf("%s into %s", c.intoStop, call)
	case <-s.after(c):
		why = fmt.Sprintf("%s after the 202", time.Since(accepted).Round(time.Millisecond))
	case <-time.After(2 * time.Minute):
		t.Fatalf("the deploy never made the call the case waits for (%s %s)", c.method, c.path)
	}
	s.child.kill(t)
	if c.landed {
		<-call.Done
	}
	left := s.eng.Containers(t, s.name)
	t.Logf("killed %s; left: %v", why, left)

	s.child = startLiftoff(s.t, s.bin, s.config)
	restarted := time.Now()
	s.check(t, restarted, v)
	s.version = v
}

// after fires at the case's moment, if it has one.
func (s *soak) after(c soakCase) <-chan time.Time {
	if c.method != "" || c.intoStop > 0 {
		return nil
	}
	return time.After(time.Duration(c.frac * float64(s.clean)))
}

// check is what must hold after a restart (see the top of the file).
func (s *soak) check(t *testing.T, restarted time.Time, v int) {
	t.Helper()
	// 1. One container runs and answers, soon.
	deadline := restarted.Add(s.stopFor + 10*time.Second)
	var last string
	for {
		running := s.eng.RunningContainers(t, s.name)
		if len(running) == 1 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			a, err := s.eng.AppInfo(ctx, running[0])
			cancel()
			if err == nil {
				t.Logf("%s answered %s after the restart (%s)", running[0], time.Since(restarted).Round(time.Millisecond), a.Version)
				break
			}
			last = fmt.Sprintf("%s runs but does not answer: %v", running[0], err)
		} else {
			last = fmt.Sprintf("running: %v", running)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single container of %s ran and answered within %s of the restart (stop_timeout + 10s): %s\n%s",
				s.name, s.stopFor+10*time.Second, last, s.child.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// 2. Still answers 5s later.
	time.Sleep(5 * time.Second)
	s.stillAnswers(t)
	// 3. In the end the pushed version serves, alone; the journal is done.
	waitSettled(t, s.db)
	defer func() {
		if t.Failed() {
			t.Logf("liftoff's log since the restart:\n%s", s.child.logs.String())
		}
	}()
	s.serves(t, v)
	if recs := list(t, s.db, s.name); recs[0].Tag != fmt.Sprintf("v%d", v) || recs[0].Outcome != deploy.Succeeded {
		t.Errorf("the newest deploy %+v, want v%d succeeded", recs[0], v)
	}
}

// stillAnswers checks that the deployment answers within 5s. The
// excuses are a deploy swapping meanwhile, as the journal proves at each
// failed try (stop-first has nothing serving between the old container's
// stop and the new one's start), and the engine not answering the test's
// own inspection in time (a loaded machine: nothing is known of the app);
// then it must answer within 5s of the excuse's end (the engine may still
// be bringing the new container up when the journal's step has moved on,
// on a machine loaded by the rest of the suite: 2s failed 1 run in 3
// there), and within a minute in all.
func (s *soak) stillAnswers(t *testing.T) {
	t.Helper()
	const grace = 5 * time.Second
	deadline := time.Now().Add(grace)
	limit := time.Now().Add(time.Minute)
	var excused []string
	for {
		err := s.answers(t, 0)
		if err == nil {
			if len(excused) > 0 {
				t.Logf("5s later nothing answered while the resumed deploy swapped (steps %v); then it did", slices.Compact(excused))
			}
			return
		}
		if step, ok := s.swapping(t); ok {
			excused = append(excused, step)
			deadline = time.Now().Add(grace)
		} else if errors.Is(err, testenv.ErrInspect) {
			excused = append(excused, "the engine slow to answer the test")
			deadline = time.Now().Add(grace)
		}
		if now := time.Now(); now.After(deadline) || now.After(limit) {
			t.Fatalf("5s after it first answered, %s does not answer (%v), and no deploy swaps (seen swapping: %v)\ncontainers: %v\n%s",
				s.name, err, excused, s.eng.Containers(t, s.name), s.child.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// swapping tells whether a deploy of the deployment is between taking the
// old container down and proving the new one, by the journal.
func (s *soak) swapping(t *testing.T) (string, bool) {
	for _, r := range unfinished(t, s.db) {
		if r.Deployment == s.name && slices.Contains([]string{deploy.StepStop, deploy.StepRename, deploy.StepCreate, deploy.StepStart, deploy.StepGate}, r.Step) {
			return r.Step, true
		}
	}
	return "", false
}

// answers tells whether some running container of the deployment answers
// within d (one try when d is 0).
func (s *soak) answers(t *testing.T, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for first := true; first || time.Now().Before(deadline); first = false {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		for _, n := range s.eng.RunningContainers(t, s.name) {
			if _, err := s.eng.AppInfo(ctx, n); err == nil {
				cancel()
				return nil
			} else {
				last = err
			}
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	if last == nil {
		last = fmt.Errorf("nothing runs")
	}
	return last
}

// liftoffProcess is the liftoff binary running `serve`.
type liftoffProcess struct {
	cmd    *exec.Cmd
	base   string
	logs   *testenv.SyncBuffer
	exited chan struct{}
}

// startLiftoff runs `liftoff serve --config config` and waits until it
// listens. The process is killed when the test ends.
func startLiftoff(t testing.TB, bin, config string) *liftoffProcess {
	t.Helper()
	p := &liftoffProcess{logs: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--config", config, "--log-level", "debug")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	p.cmd.Stderr = io.MultiWriter(p.logs, pw)
	p.cmd.Stdout = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start liftoff: %v", err)
	}
	go func() {
		p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill(t) })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l struct{ Message, Listen string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "liftoff started" {
				addr <- l.Listen
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-p.exited:
		t.Fatalf("liftoff exited at start:\n%s", p.logs.String())
	case <-time.After(time.Minute):
		t.Fatalf("liftoff did not start within 1m:\n%s", p.logs.String())
	}
	return p
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *liftoffProcess) kill(t testing.TB) {
	p.cmd.Process.Kill() // an error only says it is gone already
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("liftoff %d did not die within 30s of SIGKILL", p.cmd.Process.Pid)
	}
}

// liftoffBinary builds the liftoff command once per test process (into
// binDir, which TestMain removes).
func liftoffBinary(t testing.TB) string {
	t.Helper()
	builtOnce.Do(func() {
		built = filepath.Join(binDir, "liftoff")
		out, err := exec.Command("go", "build", "-o", built, "../../cmd/liftoff").CombinedOutput()
		if err != nil {
			builtErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtErr != nil {
		t.Fatalf("build liftoff: %v", builtErr)
	}
	return built
}

var (
	binDir    string
	builtOnce sync.Once
	built     string
	builtErr  error
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "liftoff-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// freeTCPPort returns a port free on 127.0.0.1 now.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestCrashQueuedPushIsDeployed: a push accepted (202) while another
// deploy of the same deployment runs waits in the queue; liftoff is
// SIGKILLed before it starts. After the restart it is deployed: the
// interrupted deploy is undone, the waiting push resumed with its own
// delivery, the interrupted one superseded by it.
func TestCrashQueuedPushIsDeployed(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	bin := liftoffBinary(t)
	eng := testenv.Engine(t)
	reg := eng.Registry(t)
	s := newSoak(t, bin, eng, reg, soakLane{name: "queued"})
	// v3 takes 3s to listen: its gate holds the deploy while v4 is pushed.
	reg.Push(t, s.repo, "v3", testenv.AppImage{Version: "v3", Env: []string{"TESTAPP_START_DELAY=3s"}})
	s.push(t, 4)
	crashHook(t, s.child.base, s.repo, "v3", false)
	deadline := time.Now().Add(time.Minute)
	for !slices.Contains(s.eng.RunningContainers(t, s.name), s.name) || !slices.Contains(s.eng.Containers(t, s.name), s.name+deploy.PrevSuffix+" exited") {
		if time.Now().After(deadline) {
			t.Fatalf("v3's deploy did not reach its gate within 1m: %v\n%s", s.eng.Containers(t, s.name), s.child.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	crashHook(t, s.child.base, s.repo, "v4", false) // 202: queued behind v3
	s.child.kill(t)
	t.Logf("killed with v3 in its gate and v4 waiting; left: %v", s.eng.Containers(t, s.name))

	s.child = startLiftoff(t, bin, s.config)
	s.check(t, time.Now(), 4)
	// Newest first: v4 resumed; v3's push superseded by it (v3 is not
	// tried again); v3's deploy, interrupted in its gate and undone.
	recs := list(t, s.db, s.name)
	if len(recs) < 3 {
		t.Fatalf("journal: %+v", recs)
	}
	v4, v3push, v3 := recs[0], recs[1], recs[2]
	if v4.Tag != "v4" || v4.Trigger != deploy.TriggerResume || v4.Outcome != deploy.Succeeded {
		t.Errorf("newest deploy: %s %s %s, want v4 resumed, succeeded", v4.Tag, v4.Trigger, v4.Outcome)
	}
	if v3push.Tag != "v3" || v3push.Outcome != deploy.Superseded || v3push.Delivery != v3.Delivery {
		t.Errorf("v3's push: %s %s %s, want superseded by v4", v3push.Tag, v3push.Outcome, v3push.Delivery)
	}
	if v3.Tag != "v3" || v3.Outcome != deploy.RolledBack || !strings.Contains(v3.Error, "interrupted at step gate") {
		t.Errorf("v3's deploy: %s %s %q, want rolled back, interrupted in its gate", v3.Tag, v3.Outcome, v3.Error)
	}
	if v4.Delivery == v3.Delivery {
		t.Errorf("v4 was resumed with v3's delivery %s", v3.Delivery)
	}
}
