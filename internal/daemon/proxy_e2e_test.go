package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// proxyExtra gives the deployment liftoff's front door on a free port.
const proxyExtra = `proxy: {listen: "127.0.0.1:0", port: 8000, drain_timeout: 10s}`

// proxyGate probes the new container as the proxy will reach it.
const proxyGate = `{url: "http://{upstream}/healthz", timeout: 8s, min_uptime: 500ms}`

// proxyLoad asks the front door for / at a steady rate until stopped, on
// keep-alive connections and on a new connection each time, and keeps
// every failure with its reason and the version each answer came from.
type proxyLoad struct {
	url      string
	ok       atomic.Int64
	mu       sync.Mutex
	failures []string
	versions map[string]int
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startProxyLoad(t *testing.T, addr string, every time.Duration) *proxyLoad {
	l := &proxyLoad{url: "http://" + addr + "/", versions: map[string]int{}, stop: make(chan struct{})}
	keepAlive := &http.Client{Timeout: 5 * time.Second}
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, c := range []*http.Client{keepAlive, fresh} {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				l.get(c)
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *proxyLoad) get(c *http.Client) {
	resp, err := c.Get(l.url)
	if err != nil {
		l.fail(err.Error())
		return
	}
	defer resp.Body.Close()
	var a struct{ Version string }
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK {
		l.fail(fmt.Sprintf("status %d, %v", resp.StatusCode, err))
		return
	}
	l.ok.Add(1)
	l.mu.Lock()
	l.versions[a.Version]++
	l.mu.Unlock()
}

func (l *proxyLoad) fail(why string) {
	l.mu.Lock()
	l.failures = append(l.failures, time.Now().Format("15:04:05.000")+" "+why)
	l.mu.Unlock()
}

func (l *proxyLoad) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// TestProxyZeroDowntime: behind liftoff's front door, deploys and a
// rollback lose no request, whether clients keep their connections or make
// a new one each time, and a long response the old container was giving
// when the switch came is given in full before the old one stops.
func TestProxyZeroDowntime(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemonWith(t, webYAML(proxyGate, "", proxyExtra), daemonOptions{})
	name := d.prefix + "-web"

	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	addr := d.app.ProxyAddr(name)
	if addr == nil {
		t.Fatal("no front door for the deployment")
	}
	load := startProxyLoad(t, addr.String(), 10*time.Millisecond) // 200 requests a second

	// A response that takes 3s, from v1, throughout the next swap.
	stream := make(chan string, 1)
	started := make(chan struct{})
	go func() {
		resp, err := http.Get("http://" + addr.String() + "/stream?n=30&every=100ms")
		if err != nil {
			stream <- "error: " + err.Error()
			close(started)
			return
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first, _ := br.ReadString('\n')
		close(started)
		rest, err := io.ReadAll(br)
		if err != nil {
			stream <- "error after " + first + string(rest) + ": " + err.Error()
			return
		}
		stream <- first + string(rest)
	}()
	<-started

	swaps := 4
	for i := 2; i <= swaps+1; i++ {
		v := fmt.Sprintf("v%d", i)
		d.pushImage("staging", testenv.AppImage{Version: v})
		r := d.deployOK("staging")
		// Every request after the deploy is answered by the new version.
		resp, err := http.Get("http://" + addr.String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ Version string }
		json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if a.Version != v {
			t.Errorf("after deploy %d the proxy answers with %q, want %s", i, a.Version, v)
		}
		if got := d.eng.ContainerID(t, name); got != r.ContainerID {
			t.Errorf("%s is %s, the deploy reports %s", name, got, r.ContainerID)
		}
		if i == 2 {
			select {
			case s := <-stream:
				if want := streamBody(30); s != want {
					t.Errorf("the response in flight at the switch was cut: got %q", s)
				}
			case <-time.After(30 * time.Second):
				t.Error("the response in flight at the switch never ended")
			}
		}
	}
	d.only(name)

	// A version that fails its gate is never served; the last one stays.
	d.pushImage("staging", testenv.AppImage{Version: "broken", Env: []string{"TESTAPP_HEALTH=fail"}})
	if r := d.deploy("staging"); r.Outcome != deploy.RolledBack {
		t.Errorf("the broken version: %s %v, want rolled_back", r.Outcome, r.Err)
	}
	d.only(name)
	time.Sleep(200 * time.Millisecond) // a few more requests after the rollback
	load.end()

	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("%d requests answered through %d swaps and a rollback; by version: %v", load.ok.Load(), swaps, load.versions)
	if len(load.failures) > 0 {
		t.Errorf("%d requests failed:\n%s", len(load.failures), strings.Join(load.failures, "\n"))
	}
	if load.versions["broken"] > 0 {
		t.Errorf("the version that failed its gate answered %d requests", load.versions["broken"])
	}
	for i := 1; i <= swaps+1; i++ {
		if load.versions[fmt.Sprintf("v%d", i)] == 0 && i <= swaps {
			t.Errorf("v%d answered no request", i)
		}
	}
	d.hasMetric(fmt.Sprintf(`liftoff_proxy_requests_in_flight{deployment="%s"} 0`, name))
	if !strings.Contains(d.get("/metrics"), fmt.Sprintf(`liftoff_proxy_requests_total{code="2xx",deployment="%s"}`, name)) {
		t.Error("/metrics counts no proxied request")
	}
}

func streamBody(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintln(&b, i)
	}
	return b.String()
}

// TestProxyServesAfterRestart: a liftoff that stops and starts again
// serves the deployment's container through the same front door, without
// a deploy; a request made before it finds the container waits rather than
// fails.
func TestProxyServesAfterRestart(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	// A fixed port, so that the second liftoff listens where the first did.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	extra := fmt.Sprintf(`proxy: {listen: "127.0.0.1:%d", port: 8000, drain_timeout: 10s}`, port)
	d := startDaemonWith(t, webYAML(proxyGate, "", extra), daemonOptions{})
	name := d.prefix + "-web"
	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Fatal("the front door still answers after liftoff stopped")
	}
	d.launch(d.configPath, d.lookup, liftoff.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	defer resp.Body.Close()
	var a struct{ Version string }
	json.NewDecoder(resp.Body).Decode(&a)
	if resp.StatusCode != http.StatusOK || a.Version != "v1" {
		t.Errorf("after the restart: %d %q, want 200 from v1", resp.StatusCode, a.Version)
	}
	d.only(name)
}

// TestProxyUpstreamNetwork: with upstream: network the proxy reaches each
// container at its address on the deployment's network and nothing is
// published (liftoff in a container on that network; here liftoff is on
// the host, which reaches a bridge network's addresses too).
func TestProxyUpstreamNetwork(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	extra := `proxy: {listen: "127.0.0.1:0", port: 8000, upstream: network}`
	d := startDaemonWith(t, webYAML(`{url: "http://{upstream}/healthz", timeout: 8s, min_uptime: 300ms}`,
		"networks: [%[1]s-net]", extra), daemonOptions{})
	name := d.prefix + "-web"
	d.eng.Network(t, d.prefix+"-net")
	for _, v := range []string{"v1", "v2"} {
		d.pushImage("staging", testenv.AppImage{Version: v})
		d.deployOK("staging")
		resp, err := http.Get("http://" + d.app.ProxyAddr(name).String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ Version string }
		json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if a.Version != v {
			t.Errorf("the proxy answers with %q, want %s", a.Version, v)
		}
	}
	if ports := d.eng.Inspect(t, name).NetworkSettings.Ports; len(ports) > 0 {
		for p, b := range ports {
			if len(b) > 0 {
				t.Errorf("%s publishes %s: %v", name, p, b)
			}
		}
	}
	d.only(name)
}
