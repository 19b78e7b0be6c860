package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	"syscall"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

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
	strategy  string // stop-first or start-first; "" for none (the proxy has its own)
	minUptime string // "" for the default
	port      int    // published on 127.0.0.1 unless 0
	network   string // with alias "app" on it, unless ""
	// health, if set, is the deployment's health map in YAML flow style
	// ("{url: ..., min_uptime: 1ms}"), instead of minUptime's.
	health string
	// proxy, if not 0, puts liftoff's proxy in front, listening on
	// 127.0.0.1:proxy.
	proxy int
	// extra, if set, is YAML added to the deployment (its lines indented
	// by four spaces), then more to the deployments list: {name} in either
	// is the name, {repo} the repository.
	extra, more string
	// dockerHost, if set, is the config's docker_host (an engine proxy
	// that logs each call, say).
	dockerHost string
}

// proxyMissing begins the skip message of a benchmark of the proxy mode
// run on a liftoff without it (a build from before it landed).
const proxyMissing = "SKIPPED, NO PROXY MODE IN THIS LIFTOFF: the proxy benchmark runs once deployments[].proxy has landed"

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
	if t.dockerHost != "" {
		fmt.Fprintf(&c, "docker_host: %q\n", t.dockerHost)
	}
	fmt.Fprintf(&c, "hooks:\n  - source: dockerhub\n    token: %s\n", hookToken)
	fmt.Fprintf(&c, "registries:\n  docker.io:\n    mirror: %q\n", reg.Host())
	fmt.Fprintf(&c, "environments:\n  bench:\n    env: {APP_ENV: bench, STATIC_URL: /static/}\n")
	fmt.Fprintf(&c, "deployments:\n  - name: %s\n    image: %s\n    tags: [staging]\n    environment: bench\n    env: {SENTRY_ENV: bench}\n", name, d.repo)
	if t.strategy != "" {
		fmt.Fprintf(&c, "    strategy: %s\n", t.strategy)
	}
	fmt.Fprintf(&c, "    container:\n      restart: \"no\"\n")
	if t.port != 0 {
		fmt.Fprintf(&c, "      ports: [\"127.0.0.1:%d:%d\"]\n", t.port, testenv.AppPort)
	}
	if t.network != "" {
		fmt.Fprintf(&c, "      networks: [%s]\n      aliases: [app]\n", t.network)
	}
	switch {
	case t.health != "":
		fmt.Fprintf(&c, "    health: %s\n", t.health)
	case t.minUptime != "":
		fmt.Fprintf(&c, "    health: {min_uptime: %s}\n", t.minUptime)
	}
	if t.proxy != 0 {
		fmt.Fprintf(&c, "    proxy: {listen: \"127.0.0.1:%d\", port: %d, drain_timeout: 10s}\n", t.proxy, testenv.AppPort)
	}
	c.WriteString(strings.NewReplacer("{name}", name, "{repo}", d.repo).Replace(t.extra + t.more))
	path := filepath.Join(dir, "liftoff.yaml")
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput(); err != nil {
		if t.proxy != 0 && strings.Contains(string(out), ".proxy") {
			tb.Skipf("%s; liftoff validate refuses the config:\n%s", proxyMissing, out)
		}
		tb.Fatalf("liftoff validate: %v\n%s\nconfig:\n%s", err, out, c.String())
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
	if t.proxy != 0 {
		// A liftoff that takes the key but has no proxy yet.
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", t.proxy), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				tb.Skipf("%s; liftoff takes deployments[].proxy but nothing listens on 127.0.0.1:%d (%v)", proxyMissing, t.proxy, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
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
	var a struct{ Accepted int }
	body, _ := io.ReadAll(resp.Body)
	json.Unmarshal(body, &a)
	if resp.StatusCode != http.StatusAccepted || a.Accepted != 1 {
		d.tb.Fatalf("hook: %d %s", resp.StatusCode, body)
	}
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
