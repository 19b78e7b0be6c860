package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// Canary releases (proxy.canary) against the real engine: the test drives
// the traffic through the front door, with a client that keeps no cookie,
// so that every request is a new client the split rolls for.

// canaryConfig is webConfig with API tokens: NAME-web behind the front
// door with the canary CANARY (a YAML flow mapping).
const canaryConfig = configHead + `notifications:
  - {name: team, url: "NOTIFY_URL", format: slack, events: [canary_started, canary_promoted, canary_aborted, rolled_back]}
api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
  - {name: ci, token: ` + tokStaging + `, scopes: ["deploy:staging"]}
environments:
  staging:
    env: {STAGE: staging}
deployments:
  - name: %[1]s-web
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    proxy: {listen: "127.0.0.1:0", port: 8000, drain_timeout: 10s, canary: CANARY}
    health: ` + proxyGate + `
`

// notified is what the canary tests' Slack receiver got, a line each.
type notified struct {
	mu    sync.Mutex
	lines []string
}

func (n *notified) all() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.lines, "\n")
}

func startCanaryDaemon(t *testing.T, canary string) (*daemon, string, *notified) {
	t.Helper()
	n := &notified{}
	rv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		json.NewDecoder(r.Body).Decode(&m)
		n.mu.Lock()
		n.lines = append(n.lines, m.Text)
		n.mu.Unlock()
	}))
	t.Cleanup(rv.Close)
	// The config is a format: a percentage's % is %%.
	config := strings.Replace(canaryConfig, "CANARY", strings.ReplaceAll(canary, "%", "%%"), 1)
	d := startDaemon(t, strings.Replace(config, "NOTIFY_URL", rv.URL, 1))
	name := d.prefix + "-web"
	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging") // the first deploy has nothing to be judged against: no canary
	return d, name, n
}

// canaryLoad asks the front door for / from a few clients without a
// cookie jar, as fast as it answers, and counts the answers by version and
// the failures.
type canaryLoad struct {
	url      string
	mu       sync.Mutex
	total    int
	failed   int
	versions map[string]int
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startCanaryLoad(t *testing.T, addr string, clients int) *canaryLoad {
	l := &canaryLoad{url: "http://" + addr + "/", versions: map[string]int{}, stop: make(chan struct{})}
	c := &http.Client{Timeout: 10 * time.Second}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				version, ok := "", false
				if resp, err := c.Get(l.url); err == nil {
					var a struct{ Version string }
					ok = json.NewDecoder(resp.Body).Decode(&a) == nil && resp.StatusCode == http.StatusOK
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					version = a.Version
				}
				l.mu.Lock()
				l.total++
				if ok {
					l.versions[version]++
				} else {
					l.failed++
				}
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *canaryLoad) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// frontVersion is the version the front door answers a new client with.
func frontVersion(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct{ Version string }
	json.NewDecoder(resp.Body).Decode(&a)
	return a.Version
}

// TestCanaryAbortsFailingVersion: a new version that answers 5xx to 5% of
// its requests is aborted at its first step (5% of the clients): all
// traffic back to the old container, the new one removed, the deploy
// rolled_back with the figures in its error; and no more than the step's
// share of all requests failed meanwhile.
func TestCanaryAbortsFailingVersion(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, name, notes := startCanaryDaemon(t, "{steps: [5, 50], step_interval: 1s, max_error_rate: 1%, min_requests: 40, max_wait: 2m}")
	addr := d.app.ProxyAddr(name).String()
	load := startCanaryLoad(t, addr, 4)

	d.pushImage("staging", testenv.AppImage{Version: "v2", Env: []string{"TESTAPP_FAIL_PERCENT=5"}})
	r := d.deploy("staging")
	load.end()
	if r.Outcome != deploy.RolledBack || r.Err == nil {
		t.Fatalf("deploy of the failing version: %s %v, want rolled_back", r.Outcome, r.Err)
	}
	for _, want := range []string{"canary step 1 (5%) failed: error rate", "above max_error_rate 1%", "answered 5xx", "; old: 0 of "} {
		if !strings.Contains(r.Err.Error(), want) {
			t.Errorf("error %q lacks %q", r.Err, want)
		}
	}
	t.Logf("%d requests, %d failed, by version %v; %v", load.total, load.failed, load.versions, r.Err)
	if load.versions["v2"] == 0 || load.failed == 0 {
		t.Errorf("the new version answered %d requests and %d failed: it was not given its share", load.versions["v2"], load.failed)
	}
	if load.failed*100 > 5*load.total {
		t.Errorf("%d of %d requests failed: more than the first step's 5%%", load.failed, load.total)
	}
	d.only(name)
	if v := frontVersion(t, addr); v != "v1" {
		t.Errorf("after the abort the front door answers with %q, want v1", v)
	}
	d.hasMetric(fmt.Sprintf(`liftoff_canary_weight{deployment="%s"} 0`, name))
	if m := d.get("/metrics"); !strings.Contains(m, `liftoff_deploy_phase_duration_seconds_count{phase="canary"}`) {
		t.Error("/metrics has no canary phase")
	}
	notes.want(t, "started a canary of `staging`", "aborted the canary of `staging`", "canary step 1 (5%) failed", "rolled back from `staging`")
}

// want waits (a minute at most) until the receiver got every text.
func (n *notified) want(t *testing.T, texts ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		all, missing := n.all(), ""
		for _, s := range texts {
			if !strings.Contains(all, s) {
				missing = s
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("notifications lack %q; got:\n%s", missing, all)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCanaryPromotesHealthyVersion: a healthy new version passes every
// step, taking a share of the clients at each, and is promoted: the usual
// switch, no request lost, the old container removed.
func TestCanaryPromotesHealthyVersion(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, name, notes := startCanaryDaemon(t, "{steps: [10, 50], step_interval: 1s, max_error_rate: 1%, max_p99: 3s, min_requests: 20, max_wait: 2m}")
	addr := d.app.ProxyAddr(name).String()
	load := startCanaryLoad(t, addr, 4)

	d.pushImage("staging", testenv.AppImage{Version: "v2"})
	r := d.deployOK("staging")
	load.end()
	t.Logf("%d requests, %d failed, by version %v", load.total, load.failed, load.versions)
	if load.failed > 0 {
		t.Errorf("%d requests failed", load.failed)
	}
	if load.versions["v1"] == 0 || load.versions["v2"] == 0 {
		t.Errorf("by version %v: want both during the canary", load.versions)
	}
	d.only(name)
	if id := d.eng.ContainerID(t, name); id != r.ContainerID {
		t.Errorf("%s is %s, the deploy reports %s", name, id, r.ContainerID)
	}
	for range 20 {
		if v := frontVersion(t, addr); v != "v2" {
			t.Fatalf("after the promotion the front door answers with %q, want v2 only", v)
		}
	}
	d.hasMetric(fmt.Sprintf(`liftoff_canary_weight{deployment="%s"} 0`, name))
	series := fmt.Sprintf(`liftoff_canary_requests_total{code="2xx",deployment="%s",side="new"} `, name)
	if n := metricValue(d.get("/metrics"), series); n == "" || n == "0" {
		t.Errorf("/metrics: %s%s, want the canary's requests counted", series, n)
	}
	notes.want(t, "started a canary of `staging`", "promoted the canary of `staging`")
}

// metricValue is the value of the series (its name and labels, then a
// space) in a /metrics text, "" if absent.
func metricValue(text, series string) string {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series); ok {
			return v
		}
	}
	return ""
}

// waitCanary waits until the deployment shows a canary in progress.
func (d *daemon) waitCanary(name string) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		out := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+name, "")
		if k, ok := out["canary"].(map[string]any); ok {
			return k
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("%s shows no canary within 90s", name)
	return nil
}

// TestCanaryPromoteAbortByAPI: a canary whose step lasts an hour is
// shown with live figures by the API and the CLI, promoted through the
// API, and the next one aborted with the CLI; both need deploy:<env>.
func TestCanaryPromoteAbortByAPI(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, name, _ := startCanaryDaemon(t, "{steps: [10, 50], step_interval: 1h, min_requests: 1}")
	addr := d.app.ProxyAddr(name).String()
	base := "/api/v1/deployments/" + name

	d.pushImage("staging", testenv.AppImage{Version: "v2"})
	if status, ans := d.hook("staging"); status != 202 || ans.Accepted != 1 {
		t.Fatalf("push of v2: %d %+v", status, ans)
	}
	k := d.waitCanary(name)
	if k["step"] != 1.0 || k["weight"] != 10.0 || k["tag"] != "staging" {
		t.Errorf("canary %v, want step 1 at 10%% of staging", k)
	}
	for range 50 {
		frontVersion(t, addr)
	}
	k = d.waitCanary(name)
	old, cur := k["old"].(map[string]any), k["new"].(map[string]any)
	if old["requests"].(float64)+cur["requests"].(float64) < 50 {
		t.Errorf("the canary's figures count %v + %v requests, want the 50 made", old["requests"], cur["requests"])
	}
	if status, _ := d.api(tokRead, "POST", base+"/canary/promote", ""); status != 403 {
		t.Errorf("promote with a read token: %d, want 403", status)
	}
	out := d.apiOK(202, tokStaging, "POST", base+"/canary/promote", "")
	if out["action"] != "promote" || out["delivery"] == "" {
		t.Errorf("promote answered %v", out)
	}
	if r := d.next(); r.Outcome != deploy.Succeeded {
		t.Fatalf("the promoted deploy: %s %v", r.Outcome, r.Err)
	}
	d.only(name)
	if v := frontVersion(t, addr); v != "v2" {
		t.Errorf("after the promotion the front door answers with %q, want v2", v)
	}
	if status, out := d.api(tokStaging, "POST", base+"/canary/abort", ""); status != 409 {
		t.Errorf("abort without a canary: %d %v, want 409", status, out)
	}

	// v3, aborted with the CLI.
	d.pushImage("staging", testenv.AppImage{Version: "v3"})
	if status, ans := d.hook("staging"); status != 202 || ans.Accepted != 1 {
		t.Fatalf("push of v3: %d %+v", status, ans)
	}
	d.waitCanary(name)
	if r := d.liftoffCLI(tokRead, "canary", "status", name); r.code != 0 || !strings.Contains(r.stdout, "canary of staging at step 1 of 2 (10% of clients)") {
		t.Errorf("liftoff canary status: %s", r)
	}
	if r := d.liftoffCLI(tokRead, "canary", "abort", name); r.code != 1 || !strings.Contains(r.stderr, "403") {
		t.Errorf("liftoff canary abort with a read token: %s", r)
	}
	if r := d.liftoffCLI(tokStaging, "canary", "abort", name); r.code != 0 || !strings.Contains(r.stdout, "aborted") {
		t.Errorf("liftoff canary abort: %s", r)
	}
	r := d.next()
	if r.Outcome != deploy.RolledBack || r.Err == nil || !strings.Contains(r.Err.Error(), "canary aborted by ci at step 1 (10%)") {
		t.Fatalf("the aborted deploy: %s %v, want rolled_back, aborted by ci", r.Outcome, r.Err)
	}
	d.only(name)
	if v := frontVersion(t, addr); v != "v2" {
		t.Errorf("after the abort the front door answers with %q, want v2", v)
	}
	if r := d.liftoffCLI(tokRead, "canary", "status", name); r.code != 0 || !strings.Contains(r.stdout, "no canary in progress") {
		t.Errorf("liftoff canary status after the abort: %s", r)
	}
}
