package daemon_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// startFirstContainer puts the deployment on the test's network under the
// alias web, with no published port.
const startFirstContainer = `networks: [%[1]s-net]
      aliases: [web]`

// TestStartFirstZeroDowntime proves that a start-first deploy, and a
// start-first rollback, lose no request: a client on the deployment's
// network asks http://web:8000/ every 10ms, each time on a new connection
// to a freshly resolved address, throughout. Every failed request is
// classified (see classify); the only one excused is Docker's own (see
// dockerWindow), with the evidence in the test's output, and the test
// logs the swap's timeline, its steps and the engine's events, to place
// each failure.
//
// The network has a subnet of its own ("docker network create --subnet"),
// on which liftoff can drain the old container before its stop (see
// deploy's startFirst). Answers that took over 500ms are listed with the
// network event they waited out: a connection attempt that found no
// interface at the address it dialed succeeds when TCP tries again after
// 1s.
func TestStartFirstZeroDowntime(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	steps := &stepClock{}
	d := startDaemonWith(t, webYAML(`{url: "http://{container}:8000/healthz", timeout: 5s, min_uptime: 1s}`,
		startFirstContainer, "strategy: start-first"), daemonOptions{BeforeStep: steps.note})
	name, nw := d.prefix+"-web", d.prefix+"-net"
	d.eng.SubnetNetwork(t, nw)

	v1 := d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	v1ID := d.eng.ContainerID(t, name)
	v1IP := ipOn(t, d.eng, name, nw)

	c := d.eng.StartClient(t, d.eng.UniqueName(t, "client"), d.reg.Host()+"/"+d.repo+"@"+v1, nw,
		"http://web:8000/", 10*time.Millisecond)
	waitResults(t, c, time.Time{}, 50)
	events := d.eng.WatchEvents(t)

	// v2 passes its gate: the swap.
	d.pushImage("staging", testenv.AppImage{Version: "v2"})
	deployed := d.deployOK("staging")
	d.serving(name, "v2")
	d.only(name)
	if id := d.eng.ContainerID(t, name); id == v1ID || id != deployed.ContainerID {
		t.Errorf("%s is %s after the deploy; v1 was %s, the deploy reports %s", name, id, v1ID, deployed.ContainerID)
	}
	v2Started := d.eng.StartedAt(t, name)
	v2IP := ipOn(t, d.eng, name, nw)
	// On this network the drain keeps v1's address: one that had to give
	// it a new address would have cut its connections.
	if logs := d.logs.String(); !strings.Contains(logs, "drained the previous container") ||
		strings.Contains(logs, "would not give the container its address back") {
		t.Errorf("liftoff did not drain v1 at its address (see its log)")
	}
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
	sw := &swapLog{
		origin: deployed.Started, steps: steps.list(), events: events.Stop(t), network: nw, prefix: d.prefix,
		who: map[string]string{v1ID: "v1", deployed.ContainerID: "v2"},
		ips: map[string]string{v1IP: v1ID, v2IP: deployed.ContainerID},
	}
	sw.nameOthers()

	seen := map[string]int{}
	classes := map[string]int{}
	var failed, window []loss
	var lastV1, firstV2 time.Time
	var slowest time.Duration
	var late []testenv.ClientResult
	for _, r := range rs {
		if !r.Finished || r.Error != "" {
			l := sw.classify(r)
			if l.window != "" {
				window = append(window, l)
			} else {
				failed = append(failed, l)
				classes[l.class+" from "+l.owner]++
			}
			continue
		}
		seen[r.Version]++
		if took, err := time.ParseDuration(r.Took); err == nil {
			slowest = max(slowest, took)
			if took > 500*time.Millisecond {
				late = append(late, r)
			}
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
	t.Logf("start-first: %d requests, %d failed %v, %d lost to Docker alone; versions %v; v1 and v2 both answered for %s; slowest answer %s, %d took over 500ms",
		len(rs), len(failed), classes, len(window), seen, lastV1.Sub(firstV2).Round(time.Millisecond), slowest, len(late))
	t.Logf("timeline, from the start of v2's deploy (%s); v1 at %s, v2 at %s:\n%s",
		deployed.Started.Format(time.StampMicro), v1IP, v2IP, sw.timeline(deployed.Ended, rolled.Started, rolled.Ended))
	for _, r := range late {
		t.Logf("late: request %d at %s took %s: %s %q", r.Seq, sw.at(r.Start), r.Took, sw.whyLate(r), r.Trace)
	}
	for _, l := range window {
		t.Logf("lost to Docker: request %d at %s: %s", l.r.Seq, sw.at(l.r.Start), l.window)
	}
	for i, l := range failed {
		if i == 20 {
			t.Errorf("... and %d more", len(failed)-20)
			break
		}
		t.Errorf("lost: request %d at %s, took %s: %s from %s (dialed %s, connected %v, request written %v): %s %q",
			l.r.Seq, sw.at(l.r.Start), l.r.Took, l.class, l.owner, l.ip, l.connected, l.r.Wrote(), l.r.Error, l.r.Trace)
	}
	if seen["v1"] == 0 || seen["v2"] == 0 {
		t.Errorf("versions seen %v, want both v1 and v2", seen)
	}
	// v3 failed its gate: it never had the alias, so no client reached it.
	if seen["v3"] != 0 {
		t.Errorf("%d requests reached v3, which never passed its gate", seen["v3"])
	}
}

// ipOn returns the container's address on the network.
func ipOn(t *testing.T, e *testenv.Eng, container, network string) string {
	t.Helper()
	in := e.Inspect(t, container)
	if ns := in.NetworkSettings; ns != nil {
		if ep := ns.Networks[network]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	t.Fatalf("%s has no address on %s", container, network)
	return ""
}

// stepClock notes when the daemon began each deploy step.
type stepClock struct {
	mu    sync.Mutex
	steps []stepAt
}

type stepAt struct {
	step string
	at   time.Time
}

func (c *stepClock) note(_, step string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, stepAt{step, time.Now()})
}

func (c *stepClock) list() []stepAt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.steps)
}

// swapLog is what happened around the client's requests: liftoff's steps
// and the engine's events.
type swapLog struct {
	origin  time.Time // times are told relative to it
	steps   []stepAt
	events  []testenv.Event
	network string            // the deployment's network
	prefix  string            // of the test's containers
	who     map[string]string // container id -> what the test calls it
	ips     map[string]string // address on the network -> container id
}

// nameOthers names the containers the test did not know by id (v3, the
// client) after their first name in the events.
func (s *swapLog) nameOthers() {
	for _, ev := range s.events {
		if ev.Type == "container" && s.who[ev.ID] == "" && strings.HasPrefix(ev.Name, "lt-") {
			switch {
			case strings.Contains(ev.Name, "-client-"):
				s.who[ev.ID] = "client"
			default:
				s.who[ev.ID] = "v3"
			}
		}
	}
}

// at tells a time relative to the origin.
func (s *swapLog) at(t time.Time) string {
	return fmt.Sprintf("%+.1fms", float64(t.Sub(s.origin).Microseconds())/1000)
}

// ours tells whether the event concerns the test's deployment: its
// containers, or its network.
func (s *swapLog) ours(ev testenv.Event) bool {
	switch ev.Type {
	case "network":
		return ev.Name == s.network && s.who[ev.Container] != "client"
	case "container":
		return strings.HasPrefix(ev.Name, s.prefix) && !strings.HasPrefix(ev.Action, "exec_") &&
			!strings.HasPrefix(ev.Action, "health_status") && ev.Action != "attach"
	}
	return false
}

// timeline lists the steps and the engine's events, one a line.
func (s *swapLog) timeline(deployEnded, rollStarted, rollEnded time.Time) string {
	type line struct {
		at   time.Time
		what string
	}
	lines := []line{{deployEnded, "v2's deploy ended"}, {rollStarted, "v3's deploy began"}, {rollEnded, "v3's deploy ended"}}
	for _, st := range s.steps {
		if !st.at.Before(s.origin) {
			lines = append(lines, line{st.at, "step " + st.step})
		}
	}
	for _, ev := range s.events {
		if !s.ours(ev) {
			continue
		}
		id := ev.ID
		if ev.Type == "network" {
			id = ev.Container
		}
		w := s.who[id]
		if w == "" {
			w = id[:min(12, len(id))]
		}
		what := fmt.Sprintf("%s %s %s", ev.Type, ev.Action, w)
		if ev.Signal != "" {
			what += " signal " + ev.Signal
		}
		if ev.Action == "rename" {
			what += " to " + ev.Name
		}
		lines = append(lines, line{ev.Time, what})
	}
	slices.SortStableFunc(lines, func(a, b line) int { return a.at.Compare(b.at) })
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  %s %s\n", s.at(l.at), l.what)
	}
	return b.String()
}

// first returns the time of the first event of container id with that
// type and action (on the deployment's network, for a network event) at
// or after from; ok is false if there is none.
func (s *swapLog) first(id, typ, action string, from time.Time) (time.Time, bool) {
	for _, ev := range s.events {
		switch {
		case ev.Type != typ || ev.Action != action || ev.Time.Before(from):
		case typ == "network" && (ev.Name != s.network || ev.Container != id):
		case typ == "container" && ev.ID != id:
		default:
			return ev.Time, true
		}
	}
	return time.Time{}, false
}

// loss is a failed request, classified.
type loss struct {
	r         testenv.ClientResult
	class     string // see classOf
	ip        string // the address dialed last, "" if none
	owner     string // whose address that was: v1, v2, v3 or "unknown"
	connected bool   // the TCP handshake with ip completed
	window    string // the evidence that Docker alone lost it, else ""
}

// classify says how r failed, and against which container.
func (s *swapLog) classify(r testenv.ClientResult) loss {
	l := loss{r: r, class: classOf(r), owner: "unknown"}
	var dialedAt time.Time
	l.ip, dialedAt, l.connected = r.Dialed()
	if id := s.owner(l.ip, dialedAt); id != "" {
		l.owner = s.who[id]
	}
	l.window = s.dockerWindow(r, l)
	return l
}

// owner returns the id of the container that had the address ip on the
// network at time at, or "" if the test does not know.
func (s *swapLog) owner(ip string, at time.Time) string {
	id := s.ips[ip]
	if id == "" {
		return ""
	}
	// An address freed by a container's removal may be given to the next
	// one: it is the old owner's only until then.
	if gone, ok := s.first(id, "container", "destroy", time.Time{}); ok && !at.Before(gone) {
		return ""
	}
	return id
}

// whyLate tells, of an answer that took long, whom the client dialed and
// what that container's last network event was before the connection was
// made: a SYN that found no interface is sent again after 1s, and so is
// an ARP request.
func (s *swapLog) whyLate(r testenv.ClientResult) string {
	ip, dialedAt, _ := r.Dialed()
	connectedAt := s.connectedAt(r)
	id := s.owner(ip, dialedAt)
	if id == "" || connectedAt.IsZero() {
		return fmt.Sprintf("dialed %s", ip)
	}
	why := fmt.Sprintf("%s (%s) connected after %s", s.who[id], ip, connectedAt.Sub(dialedAt).Round(time.Millisecond))
	var last *testenv.Event
	for i, ev := range s.events {
		if ev.Type == "network" && ev.Name == s.network && ev.Container == id && ev.Time.Before(connectedAt) {
			last = &s.events[i]
		}
	}
	if last != nil {
		why += fmt.Sprintf("; its last network event before: %s at %s, %s before the connection",
			last.Action, s.at(last.Time), connectedAt.Sub(last.Time).Round(time.Millisecond))
	}
	return why
}

// classOf is the kind of failure: "timeout" (no answer in the client's
// time), "refused", "reset", "EOF" (the connection was closed before the
// answer), "dns" (the name did not resolve), "unreachable", "status" (an
// answer that is not 200) or "other"; "unfinished" if it never ended.
func classOf(r testenv.ClientResult) string {
	e := r.Error
	switch {
	case !r.Finished:
		return "unfinished"
	case strings.Contains(e, "Client.Timeout exceeded"), strings.Contains(e, "i/o timeout"):
		return "timeout"
	case strings.Contains(e, "connection refused"):
		return "refused"
	case strings.Contains(e, "connection reset"):
		return "reset"
	case strings.Contains(e, "EOF"):
		return "EOF"
	case strings.Contains(e, "no such host"), strings.Contains(e, "server misbehaving"), strings.Contains(e, "lookup "):
		return "dns"
	case strings.Contains(e, "no route to host"), strings.Contains(e, "unreachable"):
		return "unreachable"
	case strings.HasPrefix(e, "status "):
		return "status"
	}
	return "other"
}

// dockerWindow returns the evidence that l was lost to Docker alone, or ""
// if it was not.
//
// Docker 20.10 (libnetwork's sbLeave) removes a container's interface
// first and its DNS records only after, and the longer it takes (a busy
// machine: up to a second and more), the longer the alias resolves to an
// address nobody answers for, not even with a refusal: a client that
// dials it hangs (Go gives its first address the whole 2s). liftoff keeps
// its containers out of that window where it can (see deploy's
// startFirst): it drains the old one, which gives the address back at
// once, and TCP sends a lost SYN again after 1s, which then connects. What
// it cannot help, and the only losses excused, each with all of its
// evidence:
//
//   - A container being stopped still resolved: the client dialed an
//     address whose container had got its stop signal before Docker's DNS
//     answered with it, got no answer at all, and no container came back
//     with that address before the client gave up. (Without a drain, as on
//     a network without a subnet of its own.)
//   - Docker slower to reconnect a drained container than TCP could wait:
//     Docker's DNS answered with the address before it reported the drain's
//     disconnect done, the client got no answer at all, and Docker gave the
//     address back more than 1s after the client dialed it, so that the
//     SYN sent again after 1s found nothing either and the next one (at
//     3s) came after the client's 2s.
//   - A request in flight to a drained container whose address Docker gave
//     back only after the client had given up: the connection was made
//     before Docker reported the drain's disconnect done.
//
// Nothing else is excused: not a refused or reset connection, an EOF, an
// error status, a request to an address that was back in time, or a
// lookup that found nobody (liftoff renames the containers while both
// hold the alias: Docker drops a renamed container's DNS records and adds
// them again, which a lone holder's clients would see as "no such host").
func (s *swapLog) dockerWindow(r testenv.ClientResult, l loss) string {
	if l.class != "timeout" || l.ip == "" || l.owner == "unknown" {
		return ""
	}
	id := s.ips[l.ip]
	ips, resolvedAt, ok := r.Resolved()
	if !ok || !slices.Contains(ips, l.ip) {
		return ""
	}
	_, dialedAt, _ := r.Dialed()
	took, err := time.ParseDuration(r.Took)
	if err != nil {
		return ""
	}
	gaveUp := r.Start.Add(took)
	killed, wasKilled := s.first(id, "container", "kill", s.origin)
	// The drain: a disconnect and a connect of the container on the
	// network, before its stop signal.
	var drainOff, drainBack time.Time
	if off, ok := s.first(id, "network", "disconnect", s.origin); ok && (!wasKilled || off.Before(killed)) {
		if back, ok := s.first(id, "network", "connect", off); ok && (!wasKilled || back.Before(killed)) {
			drainOff, drainBack = off, back
		}
	}
	what := fmt.Sprintf("Docker's DNS answered %v at %s; the client dialed %s (%s's address) at %s",
		ips, s.at(resolvedAt), l.ip, l.owner, s.at(dialedAt))
	switch {
	case !l.connected && wasKilled && !killed.After(resolvedAt):
		for _, ev := range s.events {
			// Back on the network with that address before the client gave up?
			if ev.Type == "network" && ev.Action == "connect" && ev.Name == s.network &&
				ev.Container == id && ev.Time.After(resolvedAt) && ev.Time.Before(gaveUp) {
				return ""
			}
		}
		left := "no disconnect event seen"
		if at, ok := s.first(id, "network", "disconnect", killed); ok {
			left = fmt.Sprintf("Docker reported it off the network at %s (%s after the DNS answer)",
				s.at(at), at.Sub(resolvedAt).Round(time.Microsecond))
		}
		died := "no die event seen"
		if at, ok := s.first(id, "container", "die", killed); ok {
			died = "its process exited at " + s.at(at)
		}
		return fmt.Sprintf("stale DNS of a container being stopped: %s, after %s got its stop signal at %s; %s; %s; "+
			"no answer at all in %s: %s", what, l.owner, s.at(killed), died, left, r.Took, r.Error)
	case !l.connected && !drainOff.IsZero() && !resolvedAt.After(drainOff) && drainBack.Sub(dialedAt) > time.Second:
		return fmt.Sprintf("Docker slower than TCP to reconnect a drained container: %s, before Docker reported %s's drain disconnect done at %s; "+
			"Docker gave the address back at %s, %s after the dial, so the SYN sent again after 1s found nothing either; no answer at all in %s: %s",
			what, l.owner, s.at(drainOff), s.at(drainBack), drainBack.Sub(dialedAt).Round(time.Millisecond), r.Took, r.Error)
	case l.connected && !drainOff.IsZero() && s.connectedAt(r).Before(drainOff) && !drainBack.Before(gaveUp):
		return fmt.Sprintf("in flight across a drain Docker was slower to finish than the client could wait: %s and connected at %s, "+
			"before Docker reported %s's drain disconnect done at %s; Docker gave the address back at %s, after the client gave up at %s: %s",
			what, s.at(s.connectedAt(r)), l.owner, s.at(drainOff), s.at(drainBack), s.at(gaveUp), r.Error)
	}
	return ""
}

// connectedAt is when r got its connection, or the zero time.
func (s *swapLog) connectedAt(r testenv.ClientResult) time.Time {
	for _, ev := range r.Events() {
		if ev.What == "conn" {
			return ev.At
		}
	}
	return time.Time{}
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

// TestStartFirstLossRules checks dockerWindow's rules on requests and
// events as TestStartFirstZeroDowntime saw them on a busy machine: each
// excuse holds only with all of its evidence.
func TestStartFirstLossRules(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 11, 29, 5, 13, 55, 0, time.UTC)
	ms := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Millisecond))) }
	const nw, v1, v2, v1IP, v2IP = "net", "id1", "id2", "172.27.0.2", "172.27.0.4"
	net := func(action, id string, at float64) testenv.Event {
		return testenv.Event{Time: ms(at), Type: "network", Action: action, ID: "netid", Name: nw, Container: id}
	}
	ctr := func(action, id string, at float64) testenv.Event {
		return testenv.Event{Time: ms(at), Type: "container", Action: action, ID: id, Name: "lt-e2e-x-web"}
	}
	timeout := `Get "http://web:8000/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`
	req := func(start float64, took, err string, trace ...string) testenv.ClientResult {
		return testenv.ClientResult{Start: ms(start), Took: took, Error: err, Finished: true, Trace: trace}
	}
	dial := []string{"dns [{172.27.0.2 } {172.27.0.4 }] <nil> +24.161ms", "connect 172.27.0.2:8000 +24.168ms"}
	inFlight := []string{"dns [{172.27.0.2 } {172.27.0.4 }] <nil> +1ms", "connect 172.27.0.2:8000 +1.1ms",
		"connected 172.27.0.2:8000 <nil> +1.5ms", "conn 172.27.0.3:41000 172.27.0.2:8000 +1.6ms", "wrote <nil> +1.7ms"}
	// v1 drained (off at +13918, back at +14507), then stopped.
	drained := []testenv.Event{
		net("disconnect", v1, 13918.1), net("connect", v1, 14507.5),
		ctr("kill", v1, 16919.0), ctr("die", v1, 17181.7), net("disconnect", v1, 18033.1), ctr("destroy", v1, 18809.3),
	}
	// v1 drained, then v1 and v2 renamed (the order before liftoff renamed
	// first, while both held the alias).
	renamed := []testenv.Event{
		net("disconnect", v1, 13918.1), net("connect", v1, 14507.5),
		ctr("rename", v1, 14590.0), {Time: ms(14650.0), Type: "container", Action: "rename", ID: v2, Name: "lt-e2e-x-web"},
	}
	noHost := "Get \"http://web:8000/\": dial tcp: lookup web on 127.0.0.11:53: no such host"
	// v1 stopped holding the alias, as before the drain.
	stopped := []testenv.Event{
		ctr("kill", v1, 2142.0), ctr("die", v1, 2201.7), net("disconnect", v1, 2279.3), ctr("destroy", v1, 2320.5),
	}
	for _, tc := range []struct {
		name   string
		events []testenv.Event
		r      testenv.ClientResult
		want   string // the start of the evidence, "" for no excuse
	}{
		{"dialed in the drain, address back 1.4s later", drained, req(13089.5, "2.001633606s", timeout, dial...), "Docker slower than TCP"},
		{"dialed in the drain, address back within 1s", drained, req(13600, "2.0s", timeout, dial...), ""},
		{"dialed after the drain's disconnect was done", drained, req(13950, "2.0s", timeout, dial...), ""},
		{"refused in the drain", drained, req(13089.5, "3ms", `dial tcp 172.27.0.2:8000: connect: connection refused`, dial...), ""},
		{"in flight, address back after the client gave up", drained, req(12400, "2.0s", timeout, inFlight...), "in flight across a drain"},
		{"in flight, address back in time", drained, req(13000, "2.0s", timeout, inFlight...), ""},
		{"reset in flight", drained, req(13000, "2ms", `read tcp 172.27.0.3:41000->172.27.0.2:8000: read: connection reset by peer`, inFlight...), ""},
		{"stopped holding the alias, resolved after the stop signal", stopped, req(2229.0, "2.002526372s", timeout,
			"dns [{172.27.0.2 } {172.27.0.4 }] <nil> +0.9ms", "connect 172.27.0.2:8000 +0.91ms"), "stale DNS of a container being stopped"},
		{"stopped holding the alias, resolved before the stop signal", stopped, req(2100, "2.0s", timeout,
			"dns [{172.27.0.2 } {172.27.0.4 }] <nil> +0.9ms", "connect 172.27.0.2:8000 +0.91ms"), ""},
		{"EOF from a container being stopped", stopped, req(2150, "5ms", "EOF", inFlight...), ""},
		{"no answer from the new container", drained, req(13089.5, "2.0s", timeout,
			"dns [{172.27.0.4 }] <nil> +1ms", "connect 172.27.0.4:8000 +1.1ms"), ""},
		{"no such host while v2, alone, was renamed", renamed, req(14600, "3ms", noHost, "dns [] "+noHost+" +2ms"), ""},
		{"no such host before v1 was drained", renamed, req(13000, "3ms", noHost, "dns [] "+noHost+" +2ms"), ""},
		{"no such host after the renames", renamed, req(14800, "3ms", noHost, "dns [] "+noHost+" +2ms"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := &swapLog{origin: t0, events: tc.events, network: nw,
				who: map[string]string{v1: "v1", v2: "v2"}, ips: map[string]string{v1IP: v1, v2IP: v2}}
			l := sw.classify(tc.r)
			if !strings.HasPrefix(l.window, tc.want) || (tc.want == "") != (l.window == "") {
				t.Errorf("%s from %s: excused as %q, want %q", l.class, l.owner, l.window, tc.want)
			}
		})
	}
}
