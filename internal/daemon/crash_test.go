package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/rs/zerolog"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/history"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// Issue 3, crash safety: liftoff is SIGKILLed at each step of a deploy, then
// started again; its reconcile must leave exactly one container running,
// the right one, and a journal that says what happened.
//
// The test binary runs itself as the child that gets killed
// (TestCrashChild): the parent sets up the registry, images and config,
// deploys v1 with an in-process daemon, starts the child, sends it a push
// of v2, waits for it to die, and starts an in-process daemon again.

// Environment of the child process.
const (
	crashEnvConfig     = "LIFTOFF_CRASH_CONFIG"     // config file; set only in the child
	crashEnvDeployment = "LIFTOFF_CRASH_DEPLOYMENT" // deployment whose deploy dies
	crashEnvStep       = "LIFTOFF_CRASH_STEP"       // step before which it dies
	crashEnvDuring     = "LIFTOFF_CRASH_DURING"     // "1": die 300ms into the step instead
	// crashEnvMinUptime is read by the config: the child's gate must
	// still run when it dies during it; the parent uses the default.
	crashEnvMinUptime = "LIFTOFF_CRASH_MIN_UPTIME"
)

const crashToken = "crash-token-0123456789abcdef0123456789"

// crashConfig: %[1]s deployment (and container) name, %[2]s mirror, %[3]s
// repository, %[4]s history file, %[5]s the strategy's lines.
const crashConfig = `
listen: 127.0.0.1:0
history: %[4]s
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
    stop_timeout: 5s
    health: {min_uptime: "${` + crashEnvMinUptime + `:-300ms}", timeout: 30s}
%[5]s`

// TestCrashChild is not a test: run by TestCrashDuringDeploy as a child
// process, it serves as liftoff and SIGKILLs itself before the chosen step.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnvConfig)
	if path == "" {
		return
	}
	deployment, step, during := os.Getenv(crashEnvDeployment), os.Getenv(crashEnvStep), os.Getenv(crashEnvDuring) == "1"
	die := func(why string) {
		fmt.Printf("dying %s\n", why)
		os.Stdout.Sync()
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	cfg, err := deployments.Load(path, os.LookupEnv)
	if err != nil {
		fmt.Printf("exit: config: %v\n", err)
		os.Exit(7)
	}
	a, err := liftoff.New(cfg, liftoff.Options{
		Logger:     zerolog.New(os.Stderr).With().Timestamp().Logger(),
		ConfigPath: path,
		Lookup:     os.LookupEnv,
		BeforeStep: func(d, s string) {
			switch {
			case d != deployment || s != step:
			case during && (s == deploy.StepBackup || s == deploy.StepRelease):
				// Die while the one-off container runs, not before it
				// exists (a busy machine may take longer than 300ms).
				go func() { waitOneOff(deployment + ".liftoff-" + s); die("during " + s) }()
			case during:
				go func() { time.Sleep(300 * time.Millisecond); die("during " + s) }()
			default:
				die("at " + s)
			}
		},
		OnDeploy: func(r deploy.Result) {
			// Reaching the end means the step never came: say so, fast.
			fmt.Printf("exit: deploy ended %s (%v) without dying at step %s\n", r.Outcome, r.Err, step)
			os.Exit(7)
		},
	})
	if err != nil {
		fmt.Printf("exit: start: %v\n", err)
		os.Exit(7)
	}
	fmt.Printf("addr %s\n", a.Addr())
	err = a.Run(context.Background())
	fmt.Printf("exit: run returned: %v\n", err)
	os.Exit(7)
}

// waitOneOff waits, a minute at most, until the container name runs.
func waitOneOff(name string) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		fmt.Printf("exit: docker client: %v\n", err)
		os.Exit(7)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		res, err := cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
		if err == nil && res.Container.State != nil && res.Container.State.Running {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("exit: %s did not run within a minute\n", name)
	os.Exit(7)
}

// crashCase is one place to die in one strategy.
type crashCase struct {
	startFirst bool
	// proxy: the deployment has liftoff's front door; after the restart
	// it must answer with the version the repair kept.
	proxy bool
	// canary: the proxy has a canary of one step (50%, 1s): killed
	// during it, the restart sends all traffic to the old container, and
	// the push is deployed again, its canary from the first step.
	canary bool
	step   string
	during bool
	broken bool // deploy an image that fails its gate: the deploy rolls back
	// oneOffs: the environment has a backup and the deployment a release,
	// each running 2s in a one-off container.
	oneOffs bool
	// left is what the crash leaves, by name suffix ("" is the name
	// itself) → Docker state.
	left map[string]string
	want deploy.Outcome // of the interrupted deploy once reconciled
}

func (c crashCase) name() string {
	s := "stop-first/"
	if c.startFirst {
		s = "start-first/"
	}
	if c.proxy {
		s = "proxy/"
	}
	if c.canary {
		s = "proxy-canary/"
	}
	if c.during {
		return s + "during-" + c.step
	}
	return s + c.step
}

func TestCrashDuringDeploy(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	const (
		prev, next = deploy.PrevSuffix, deploy.NextSuffix
		up, exited = "running", "exited"
	)
	cases := []crashCase{
		// stop-first (with a published port): "after pull" is before
		// prepare, "after prepare" before rename, ... The old container
		// serves, set aside, until the step stop; the new one is created
		// beside it, holding the same port only once it starts.
		{step: deploy.StepPrepare, left: map[string]string{"": up}, want: deploy.Failed},
		{step: deploy.StepRename, left: map[string]string{"": up}, want: deploy.RolledBack},
		{step: deploy.StepCreate, left: map[string]string{prev: up}, want: deploy.RolledBack},
		{step: deploy.StepStop, left: map[string]string{"": "created", prev: up}, want: deploy.RolledBack},
		{step: deploy.StepStart, left: map[string]string{"": "created", prev: exited}, want: deploy.RolledBack},
		{step: deploy.StepGate, left: map[string]string{"": up, prev: exited}, want: deploy.RolledBack},
		{step: deploy.StepGate, during: true, left: map[string]string{"": up, prev: exited}, want: deploy.RolledBack},
		{step: deploy.StepCleanup, left: map[string]string{"": up, prev: exited}, want: deploy.Succeeded},
		{step: deploy.StepRollback, broken: true, left: map[string]string{"": exited, prev: exited}, want: deploy.RolledBack},
		// killed while a backup or a release runs (or is being created)
		{step: deploy.StepBackup, during: true, oneOffs: true, left: map[string]string{"": up}, want: deploy.Failed},
		{step: deploy.StepRelease, during: true, oneOffs: true, left: map[string]string{"": up}, want: deploy.Failed},
		{step: deploy.StepRelease, oneOffs: true, left: map[string]string{"": up}, want: deploy.Failed},
		// start-first
		{startFirst: true, step: deploy.StepCreate, left: map[string]string{"": up}, want: deploy.RolledBack},
		{startFirst: true, step: deploy.StepStart, left: map[string]string{"": up, next: "created"}, want: deploy.RolledBack},
		{startFirst: true, step: deploy.StepGate, left: map[string]string{"": up, next: up}, want: deploy.RolledBack},
		{startFirst: true, step: deploy.StepGate, during: true, left: map[string]string{"": up, next: up}, want: deploy.RolledBack},
		// past the gate but not yet published under the aliases: undone, safely
		{startFirst: true, step: deploy.StepPublish, left: map[string]string{"": up, next: up}, want: deploy.RolledBack},
		{startFirst: true, step: deploy.StepCleanup, left: map[string]string{"": up, next: up}, want: deploy.Succeeded},
		{startFirst: true, step: deploy.StepRollback, broken: true, left: map[string]string{"": up, next: exited}, want: deploy.RolledBack},
		// proxy: the new container beside the old one, switched to past
		// its gate (publish), then the old one drained, stopped, removed
		{proxy: true, step: deploy.StepStart, left: map[string]string{"": up, next: "created"}, want: deploy.RolledBack},
		{proxy: true, step: deploy.StepGate, during: true, left: map[string]string{"": up, next: up}, want: deploy.RolledBack},
		{proxy: true, step: deploy.StepPublish, left: map[string]string{"": up, next: up}, want: deploy.RolledBack},
		{proxy: true, step: deploy.StepCleanup, left: map[string]string{"": up, next: up}, want: deploy.Succeeded},
		{proxy: true, step: deploy.StepRollback, broken: true, left: map[string]string{"": up, next: exited}, want: deploy.RolledBack},
		{proxy: true, canary: true, step: deploy.StepCanary, during: true, left: map[string]string{"": up, next: up}, want: deploy.RolledBack},
	}

	eng := testenv.Engine(t)
	reg := eng.Registry(t)
	repo := "acme/" + eng.UniqueName(t, "crash")
	digests := map[string]string{
		"v1":        reg.Push(t, repo, "v1", testenv.AppImage{Version: "v1"}),
		"v2":        reg.Push(t, repo, "v2", testenv.AppImage{Version: "v2"}),
		"v2-broken": reg.Push(t, repo, "v2-broken", testenv.AppImage{Version: "v2-broken", Env: []string{"TESTAPP_EXIT=3"}}),
	}

	for _, tc := range cases {
		t.Run(tc.name(), func(t *testing.T) {
			t.Parallel()
			e := testenv.Engine(t)
			name := e.UniqueName(t, "crash")
			// stop-first publishes a port, as most stop-first deployments
			// do: the new container is created while the old one holds it.
			strategy := fmt.Sprintf("    container: {ports: [\"127.0.0.1:%d:8000\"]}\n", freeTCPPort(t))
			if tc.startFirst {
				network := e.UniqueName(t, "crashnet")
				e.Network(t, network)
				strategy = fmt.Sprintf("    strategy: start-first\n    container: {networks: [%s], aliases: [app]}\n", network)
			}
			proxyAddr := ""
			if tc.proxy {
				proxyAddr = fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
				strategy = fmt.Sprintf("    proxy: {listen: %q, port: 8000, drain_timeout: 5s}\n", proxyAddr)
				if tc.canary {
					strategy = fmt.Sprintf("    proxy: {listen: %q, port: 8000, drain_timeout: 5s, canary: {steps: [50], step_interval: 1s, min_requests: 1, max_wait: 1s}}\n", proxyAddr)
				}
			}
			dir := t.TempDir()
			db := filepath.Join(dir, "liftoff.db")
			path := filepath.Join(dir, "liftoff.yaml")
			if tc.oneOffs {
				strategy += "    env: {TESTAPP_RELEASE_SLEEP: 2s}\n    release: {command: [release], timeout: 1m}\n"
			}
			text := fmt.Sprintf(crashConfig, name, reg.Host(), repo, db, strategy)
			if tc.oneOffs {
				text = strings.Replace(text, `env: {DEBUG: "False"}`,
					`env: {DEBUG: "False"}`+"\n    backup: {command: [release], env: {TESTAPP_RELEASE_SLEEP: 2s}, timeout: 1m}", 1)
			}
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}

			// v1, deployed by a daemon that stops cleanly.
			d := startCrashDaemon(t, path, liftoff.Options{})
			d.hook(t, repo, "v1")
			if r := d.next(t); r.Outcome != deploy.Succeeded {
				t.Fatalf("deploy of v1: %s %v", r.Outcome, r.Err)
			}
			v1 := e.ContainerID(t, name)
			if err := d.stop(); err != nil {
				t.Fatalf("stopping the v1 daemon: %v", err)
			}

			// v2, deployed by a child that dies at the step.
			tag := "v2"
			if tc.broken {
				tag = "v2-broken"
			}
			var env []string
			if tc.broken {
				// The broken image exits at once; a gate of 2s cannot
				// miss that on a busy machine, where starting a process
				// may take longer than the default 300ms.
				env = append(env, crashEnvMinUptime+"=2s")
			}
			died := runCrashChild(t, path, name, tc.step, tc.during, env, func(base string) {
				crashHook(t, base, repo, tag, true)
			})
			want := "at " + tc.step
			if tc.during {
				want = "during " + tc.step
			}
			if died != want {
				t.Fatalf("the child died %q, want %q", died, want)
			}
			if got, want := containerStates(t, e, name), statesOf(name, tc.left); !slices.Equal(got, want) {
				t.Errorf("left by the crash: %v, want %v", got, want)
			} else {
				t.Logf("left by the crash: %v", got)
			}
			if tc.oneOffs && tc.during {
				// The child died while it ran: it is there (running, or
				// done by now), left to the restart to remove.
				want := name + ".liftoff-" + tc.step + " "
				if got := e.Containers(t, name+"."); !slices.ContainsFunc(got, func(c string) bool { return strings.HasPrefix(c, want) }) {
					t.Errorf("one-off containers at the crash: %v, want %s", got, want)
				}
			}
			un := unfinished(t, db)
			if len(un) != 1 || un[0].Step != tc.step || un[0].Tag != tag {
				t.Fatalf("journal after the crash: unfinished %+v, want the %s deploy at step %s", un, tag, tc.step)
			}

			// Start again: reconcile repairs, then the push accepted before
			// the crash is deployed again (resumed).
			startCrashDaemon(t, path, liftoff.Options{})
			waitSettled(t, db)
			if got := containerStates(t, e, name); !slices.Equal(got, []string{name + " running"}) {
				t.Fatalf("after reconcile and resume: %v, want only %s running", got, name)
			}
			for _, c := range e.Containers(t, name+".") {
				t.Errorf("after reconcile and resume, left: %s", c) // a backup or release container
			}
			// The pushed version serves, unless it is broken: then v1,
			// back after the interrupted deploy and after its resumption.
			want, wantResumed := tag, deploy.Succeeded
			if tc.broken {
				want, wantResumed = "v1", deploy.RolledBack
			}
			if version, _ := e.AppGet(t, name); version != want {
				t.Errorf("after the restart %s serves %q, want %s", name, version, want)
			}
			if tc.proxy {
				// The front door serves the container the repair kept.
				if version := proxiedVersion(t, proxyAddr); version != want {
					t.Errorf("after the restart the front door answers with %q, want %s", version, want)
				}
			}
			if id := e.ContainerID(t, name); (want == "v1") != (id == v1) {
				t.Errorf("%s is container %.12s (v1 was %.12s), want %s's", name, id, v1, want)
			}
			recs := list(t, db, name)
			wantLen := 3
			if tc.want == deploy.Succeeded {
				wantLen = 2 // the repair finished the deploy: nothing to resume
			}
			if len(recs) != wantLen || recs[len(recs)-1].Outcome != deploy.Succeeded || recs[len(recs)-1].Tag != "v1" {
				t.Fatalf("journal: %+v, want the v1 deploy, the interrupted one, and its resumption unless it was finished", recs)
			}
			r := recs[len(recs)-2]
			if r.Tag != tag || r.Digest != digests[tag] || r.Outcome != tc.want ||
				!strings.Contains(r.Error, "interrupted at step "+tc.step) || r.Ended.IsZero() {
				t.Errorf("journal of the interrupted deploy: tag %s digest %s outcome %s error %q; want %s %s, %s, \"interrupted at step %s\"",
					r.Tag, r.Digest, r.Outcome, r.Error, tag, digests[tag], tc.want, tc.step)
			}
			if wantLen == 3 {
				if res := recs[0]; res.Trigger != deploy.TriggerResume || res.Delivery != r.Delivery || res.Outcome != wantResumed {
					t.Errorf("journal of the resumed deploy: trigger %s delivery %s outcome %s; want %s, the interrupted one's delivery %s, %s",
						res.Trigger, res.Delivery, res.Outcome, deploy.TriggerResume, r.Delivery, wantResumed)
				}
			}
		})
	}
}

// crashDaemon is liftoff started in-process from a config file.
type crashDaemon struct{ *daemon }

func startCrashDaemon(t *testing.T, path string, opts liftoff.Options) *crashDaemon {
	t.Helper()
	d := &daemon{t: t, results: make(chan deploy.Result, 16), logs: &syncBuffer{}}
	d.launch(path, func(string) (string, bool) { return "", false }, opts)
	return &crashDaemon{d}
}

// next waits for the next deploy to finish.
func (d *crashDaemon) next(t *testing.T) deploy.Result {
	t.Helper()
	select {
	case r := <-d.results:
		return r
	case <-time.After(2 * time.Minute):
		t.Fatal("no deploy finished within 2m")
		return deploy.Result{}
	}
}

func (d *crashDaemon) hook(t *testing.T, repo, tag string) { crashHook(t, d.base, repo, tag, false) }

// crashHook delivers a DockerHub push of repo:tag to the daemon at base.
// lenient: the daemon may die while answering.
func crashHook(t *testing.T, base, repo, tag string, lenient bool) {
	t.Helper()
	body := fmt.Sprintf(`{"push_data": {"tag": %q, "pusher": "ci"}, "repository": {"repo_name": %q}}`, tag, repo)
	resp, err := http.Post(base+"/hooks/dockerhub/"+crashToken, "application/json", strings.NewReader(body))
	if err != nil {
		if lenient {
			t.Logf("push %s: %v (the daemon may have died answering)", tag, err)
			return
		}
		t.Fatalf("push %s: %v", tag, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || strings.Contains(string(answer), `"accepted":0,`) { // counts only
		t.Fatalf("push %s: %d %s", tag, resp.StatusCode, answer)
	}
}

// runCrashChild starts the test binary as a daemon that dies at step of
// deployment, calls send with its base URL, and waits for it to be
// SIGKILLed. It returns what the child said as it died ("at gate", ...).
func runCrashChild(t *testing.T, path, deployment, step string, during bool, env []string, send func(base string)) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(),
		crashEnvConfig+"="+path, crashEnvDeployment+"="+deployment, crashEnvStep+"="+step)
	if during {
		cmd.Env = append(cmd.Env, crashEnvDuring+"=1", crashEnvMinUptime+"=20s")
	}
	cmd.Env = append(cmd.Env, env...)
	// If the parent dies, so does the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the child: %v", err)
	}
	exited := make(chan struct{}) // closed once waitErr is set
	var waitErr error
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // an error only says it is gone already
		for range lines {
		}
		<-exited
		if t.Failed() {
			t.Logf("the child's log:\n%s", stderr.String())
		}
	})

	var said []string
	deadline := time.After(2 * time.Minute)
	out := lines
	for {
		select {
		case l, ok := <-out:
			if !ok {
				out = nil
				continue
			}
			said = append(said, l)
			if addr, ok := strings.CutPrefix(l, "addr "); ok {
				send("http://" + addr)
			}
		case <-exited:
			err := waitErr
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("the child exited with %v, not killed; it said %q", err, said)
			}
			ws, ok := ee.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the child ended with %v, not SIGKILL; it said %q", err, said)
			}
			for _, l := range said {
				if why, ok := strings.CutPrefix(l, "dying "); ok {
					return why
				}
			}
			t.Fatalf("the child was killed without saying why: %q", said)
		case <-deadline:
			t.Fatalf("the child did not die within 2m; it said %q", said)
		}
	}
}

// containerStates returns "NAME STATE" for each container named name,
// name.liftoff-prev or name.liftoff-next, sorted.
func containerStates(t *testing.T, e *testenv.Eng, name string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := e.Client().ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	var out []string
	for _, c := range list.Items {
		for _, n := range c.Names {
			if n = strings.TrimPrefix(n, "/"); n == name || n == name+deploy.PrevSuffix || n == name+deploy.NextSuffix {
				out = append(out, n+" "+string(c.State))
			}
		}
	}
	slices.Sort(out)
	return out
}

func statesOf(name string, left map[string]string) []string {
	var out []string
	for suffix, state := range left {
		out = append(out, name+suffix+" "+state)
	}
	slices.Sort(out)
	return out
}

// openHistory opens the daemon's history file beside it (SQLite WAL lets
// both read and write).
func openHistory(t *testing.T, path string) *history.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := history.Open(ctx, path)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	return s
}

func unfinished(t *testing.T, path string) []deploy.Record {
	t.Helper()
	s := openHistory(t, path)
	defer s.Close()
	recs, err := s.Unfinished(context.Background())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	return recs
}

func list(t *testing.T, path, deployment string) []deploy.Record {
	t.Helper()
	s := openHistory(t, path)
	defer s.Close()
	recs, err := s.List(context.Background(), deployment, 10)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	return recs
}

// waitSettled waits until the journal holds no unfinished deploy and no
// open request: reconcile has repaired, and every accepted push has
// reached an outcome.
func waitSettled(t *testing.T, path string) {
	t.Helper()
	s := openHistory(t, path)
	defer s.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		recs, err := s.Unfinished(context.Background())
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		open, err := s.OpenRequests(context.Background())
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		if len(recs) == 0 && len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still unfinished after 2m: deploys %+v, requests %+v", recs, open)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proxiedVersion asks liftoff's front door at addr for / and returns the
// version that answered (a request waits while no container is served).
func proxiedVersion(t *testing.T, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: 35 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Errorf("the front door: %v", err)
		return ""
	}
	defer resp.Body.Close()
	var a struct{ Version string }
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the front door: %d %v", resp.StatusCode, err)
	}
	return a.Version
}
