package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// startFirstContainer puts the deployment on the test's network under the
// alias web, with no published port.
const startFirstContainer = `networks: [%[1]s-net]
      aliases: [web]`

// TestStartFirstZeroDowntime proves that a start-first deploy, and a
// start-first rollback, lose no request to liftoff: a client on the
// deployment's network asks http://web:8000/ every 10ms, each time on a new
// connection to a freshly resolved address, throughout. The one loss it
// excuses is Docker's own (see dockerWindow), and it says how many.
func TestStartFirstZeroDowntime(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, webYAML(`{url: "http://{container}:8000/healthz", timeout: 5s, min_uptime: 1s}`,
		startFirstContainer, "strategy: start-first"))
	name, nw := d.prefix+"-web", d.prefix+"-net"
	d.eng.Network(t, nw)

	v1 := d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	v1ID := d.eng.ContainerID(t, name)

	c := d.eng.StartClient(t, d.eng.UniqueName(t, "client"), d.reg.Host()+"/"+d.repo+"@"+v1, nw,
		"http://web:8000/", 10*time.Millisecond)
	waitResults(t, c, time.Time{}, 50)

	// v2 passes its gate: the swap.
	d.pushImage("staging", testenv.AppImage{Version: "v2"})
	deployed := d.deployOK("staging")
	d.serving(name, "v2")
	d.only(name)
	if id := d.eng.ContainerID(t, name); id == v1ID || id != deployed.ContainerID {
		t.Errorf("%s is %s after the deploy; v1 was %s, the deploy reports %s", name, id, v1ID, deployed.ContainerID)
	}
	v2Started := d.eng.StartedAt(t, name)
	waitResults(t, c, deployed.Ended, 100)

	// v3 fails its gate: the new container goes, v2 was never stopped.
	d.pushImage("staging", testenv.AppImage{Version: "v3", Env: []string{"TESTAPP_HEALTH=fail"}})
	rolled := d.deploy("staging")
	if rolled.Outcome != deploy.RolledBack || !strings.Contains(rolled.Err.Error(), "status 500") {
		t.Fatalf("v3: %s %v, want rolled back by health.url", rolled.Outcome, rolled.Err)
	}
	d.serving(name, "v2")
	d.only(name)
	if id := d.eng.ContainerID(t, name); id != deployed.ContainerID {
		t.Errorf("%s is %s after the rollback, want v2's %s", name, id, deployed.ContainerID)
	}
	if d.eng.StartedAt(t, name) != v2Started {
		t.Errorf("v2 was restarted by a start-first rollback")
	}
	waitResults(t, c, rolled.Ended, 100)

	rs := c.Stop(t)
	// Where each version answered from.
	addr := map[string]string{}
	for _, r := range rs {
		if r.Error == "" && r.Finished {
			addr[r.Version] = r.Addr
		}
	}
	seen := map[string]int{}
	var failed, window []testenv.ClientResult
	var lastV1, firstV2 time.Time
	var slowest time.Duration
	for _, r := range rs {
		switch {
		case !r.Finished:
			failed = append(failed, r)
			continue
		case r.Error != "":
			// Docker's window (see dockerWindow) while v1 went away in
			// the swap, or v3 in the rollback; any other failure counts.
			if dockerWindow(r, addr["v1"], deployed) || dockerWindow(r, addr["v3"], rolled) {
				window = append(window, r)
			} else {
				failed = append(failed, r)
			}
			continue
		}
		seen[r.Version]++
		if took, err := time.ParseDuration(r.Took); err == nil {
			slowest = max(slowest, took)
		}
		switch {
		case r.Version == "v1":
			lastV1 = r.Start
			if r.Start.After(deployed.Ended) {
				t.Errorf("request %d started %s after the deploy ended and got v1", r.Seq, r.Start.Sub(deployed.Ended))
			}
		case r.Version == "v2" && firstV2.IsZero():
			firstV2 = r.Start
		case r.Version != "v2" && r.Start.After(rolled.Ended):
			t.Errorf("request %d started %s after the rollback ended and got %s", r.Seq, r.Start.Sub(rolled.Ended), r.Version)
		}
	}
	t.Logf("start-first: %d requests, %d failed, %d lost to Docker's DNS window, versions %v; v1 and v2 both answered for %s; slowest answer %s",
		len(rs), len(failed), len(window), seen, lastV1.Sub(firstV2).Round(time.Millisecond), slowest)
	for _, r := range window {
		t.Logf("request %d (%s) dialed a container Docker was removing but still resolved: %s %q", r.Seq, r.Start.Format(time.StampMicro), r.Error, r.Trace)
	}
	for i, r := range failed {
		if i == 10 {
			t.Errorf("... and %d more", len(failed)-10)
			break
		}
		t.Errorf("request %d (%s, took %s, answered by %q) failed: %s %q", r.Seq, r.Start.Format(time.StampMicro), r.Took, r.Addr, r.Error, r.Trace)
	}
	if seen["v1"] == 0 || seen["v2"] == 0 {
		t.Errorf("versions seen %v, want both v1 and v2", seen)
	}
	// v3 failed its gate: it never had the alias, so no client reached it.
	if seen["v3"] != 0 {
		t.Errorf("%d requests reached v3, which never passed its gate", seen["v3"])
	}
	if len(failed) > 0 {
		t.Logf("deploy of v2: %s to %s; rollback of v3: %s to %s",
			deployed.Started.Format(time.StampMicro), deployed.Ended.Format(time.StampMicro),
			rolled.Started.Format(time.StampMicro), rolled.Ended.Format(time.StampMicro))
	}
}

// dockerWindow tells whether r failed only because Docker's embedded DNS
// still resolved the alias to gone, a container's address, after the
// container's interface had left the network, while deploy d removed it.
//
// Docker 20.10 (libnetwork) removes a container's DNS records only after
// its interface: for a few milliseconds per removal, whatever the order of
// stop, disconnect and remove, a new connection to the alias may go to an
// address nobody answers for any more, and hangs until the client's
// timeout (Go gives its first address the whole 2s). The same happens with
// plain "docker stop", without liftoff. Nothing else is excused: a refused
// or reset connection, an error status, a request cut off in flight.
func dockerWindow(r testenv.ClientResult, gone string, d deploy.Result) bool {
	if gone == "" || !strings.Contains(r.Error, "Client.Timeout exceeded") ||
		r.Start.Before(d.Started) || r.Start.After(d.Ended) {
		return false
	}
	var last string
	done := map[string]bool{}
	for _, ev := range r.Trace {
		f := strings.Fields(ev)
		switch {
		case len(f) < 2:
		case f[0] == "connect":
			last = f[1]
		case f[0] == "connected":
			done[f[1]] = true
		}
	}
	return last == gone && !done[last]
}

// waitResults waits (bounded) until the client has n answered requests that
// started after since.
func waitResults(t *testing.T, c *testenv.Client, since time.Time, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		got := 0
		for _, r := range c.Results(t) {
			if r.Finished && r.Start.After(since) {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the client has %d requests after %s, want %d", got, since.Format(time.StampMicro), n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestStartFirstRefusesPublishedPorts: two containers cannot publish the
// same port, so validate refuses the combination.
func TestStartFirstRefusesPublishedPorts(t *testing.T) {
	t.Parallel()
	p := writeConfig(t, fmt.Sprintf(`
hooks: [{source: dockerhub, token: %s}]
environments: {staging: {}}
deployments:
  - name: web
    image: acme/web
    tags: [staging]
    environment: staging
    strategy: start-first
    container: {ports: ["127.0.0.1:8001:8000"]}
`, hookToken))
	var out, errOut strings.Builder
	code := run(context.Background(), []string{"validate", "--config", p}, &out, &errOut, func(string) (string, bool) { return "", false })
	if code != exitUsage {
		t.Errorf("validate: exit %d, want %d\n%s%s", code, exitUsage, out.String(), errOut.String())
	}
	if want := "deployments[0].strategy"; !strings.Contains(errOut.String(), want) || !strings.Contains(errOut.String(), "cannot publish ports") {
		t.Errorf("validate says:\n%s\nwant it to name %s and say it cannot publish ports", errOut.String(), want)
	}
}
