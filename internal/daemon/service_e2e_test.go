package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/rs/zerolog"

	liftoff "github.com/liftoff-deploy/liftoff/internal/daemon"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// serviceContainer puts a service on the test's attachable overlay
// network, NAME-net, as web, published on PORT by the routing mesh.
const serviceContainer = `networks: [%[1]s-net]
      aliases: [web]
      ports: ["PORT:8000"]`

// serviceYAML is webYAML for a service NAME-web of the given update order,
// with a reader token for the API. Its image's health check (200ms)
// proves a task; Swarm watches each new task for 2s.
func serviceYAML(order string, port int) string {
	extra := fmt.Sprintf("service: {replicas: 1, update: {order: %s, monitor: 2s}}", order)
	return webYAML(`{timeout: 20s, min_uptime: 500ms}`, strings.Replace(serviceContainer, "PORT", strconv.Itoa(port), 1), extra) +
		"api_tokens:\n  - {name: reader, token: " + tokRead + ", scopes: [read]}\n"
}

// startSwarmDaemon starts liftoff on a config made for its prefix, with
// the engine a swarm manager and NAME-net an attachable overlay network.
// The swarm is taken first, so that it is left last, after the daemon
// stopped and its services, networks and images were removed.
func startSwarmDaemon(t *testing.T, config func(port int) string) (*daemon, int) {
	t.Helper()
	testenv.Engine(t).Swarm(t)
	port := meshPort(t)
	d := startDaemon(t, config(port))
	d.eng.OverlayNetwork(t, d.prefix+"-net")
	return d, port
}

// meshPort returns a TCP port free on every address now, for the routing
// mesh to publish.
func meshPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// service returns the service as the engine shows it, and its tasks that
// run (desired and actual state running).
func (d *daemon) service(name string) (swarm.Service, []swarm.Task) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := d.eng.Client()
	s, err := cli.ServiceInspect(ctx, name, client.ServiceInspectOptions{})
	if err != nil {
		d.t.Fatalf("inspect service %s: %v", name, err)
	}
	f := client.Filters{}
	f.Add("service", s.Service.ID)
	f.Add("desired-state", "running")
	tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: f})
	if err != nil {
		d.t.Fatal(err)
	}
	var running []swarm.Task
	for _, task := range tasks.Items {
		if task.Status.State == swarm.TaskStateRunning {
			running = append(running, task)
		}
	}
	return s.Service, running
}

// serviceRuns waits until the service's one running task is of digest,
// and returns its container's id.
func (d *daemon) serviceRuns(name, digest string) string {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, tasks := d.service(name)
		if len(tasks) == 1 && strings.HasSuffix(tasks[0].Spec.ContainerSpec.Image, "@"+digest) && tasks[0].Status.ContainerStatus != nil {
			if img := s.Spec.TaskTemplate.ContainerSpec.Image; !strings.HasSuffix(img, "@"+digest) {
				d.t.Fatalf("service %s's spec is %s, its task runs %s", name, img, digest)
			}
			return tasks[0].Status.ContainerStatus.ContainerID
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("service %s does not run one task of %s: %+v", name, digest, tasks)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServiceEndToEnd: pushes deploy a Swarm service with the
// environment's variables; the same digest again is unchanged; an image
// that fails its health check is rolled back by Swarm, and liftoff
// records rolled_back; the API shows the service.
func TestServiceEndToEnd(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, _ := startSwarmDaemon(t, func(port int) string { return serviceYAML("start-first", port) })
	name := d.prefix + "-web"

	v1 := d.pushImage("staging", testenv.AppImage{Version: "v1", Healthcheck: true, Env: []string{"IMAGE_ONLY=yes"}})
	r := d.deployOK("staging")
	if r.Digest != v1 || r.Previous != "" {
		t.Errorf("first deploy: %+v", r)
	}
	svc, _ := d.service(name)
	if r.ContainerID != svc.ID || svc.Spec.Labels[deploy.LabelDigest] != v1 || svc.Spec.Labels[deploy.LabelDeployment] != name {
		t.Errorf("deploy reports %s; service %s labels %v", r.ContainerID, svc.ID, svc.Spec.Labels)
	}
	task := d.serviceRuns(name, v1)
	env := d.eng.Inspect(t, task).Config.Env
	for _, kv := range []string{"STAGE=staging", "IMAGE_ONLY=yes"} {
		if !slices.Contains(env, kv) {
			t.Errorf("the task's env %v lacks %s", env, kv)
		}
	}

	// v2 replaces v1 through Swarm's rolling update.
	v2 := d.pushImage("staging", testenv.AppImage{Version: "v2", Healthcheck: true})
	r = d.deployOK("staging")
	if r.Digest != v2 || r.Previous != v1 || r.ContainerID != svc.ID {
		t.Errorf("update: %+v", r)
	}
	task2 := d.serviceRuns(name, v2)
	if env := d.eng.Inspect(t, task2).Config.Env; !slices.Contains(env, "STAGE=staging") {
		t.Errorf("the new task's env %v lacks STAGE=staging", env)
	}
	if svc, _ = d.service(name); svc.UpdateStatus == nil || svc.UpdateStatus.State != swarm.UpdateStateCompleted {
		t.Errorf("after the deploy Swarm's update is %+v", svc.UpdateStatus)
	}

	// The same push again: nothing happens.
	d.hook("staging")
	if r := d.next(); r.Outcome != deploy.Unchanged {
		t.Fatalf("repeated push: %s %v", r.Outcome, r.Err)
	}
	if got := d.serviceRuns(name, v2); got != task2 {
		t.Errorf("an unchanged deploy replaced the task: %s → %s", task2, got)
	}

	// v3 never becomes healthy: Swarm rolls back to v2.
	d.pushImage("staging", testenv.AppImage{Version: "v3", Healthcheck: true, Env: []string{"TESTAPP_HEALTH=fail"}})
	r = d.deploy("staging")
	if r.Outcome != deploy.RolledBack || r.Err == nil || !strings.Contains(r.Err.Error(), "Swarm rolled the update back") {
		t.Fatalf("unhealthy v3: %s %v, want rolled_back", r.Outcome, r.Err)
	}
	t.Logf("rolled back: %v", r.Err)
	if got := d.serviceRuns(name, v2); got != task2 {
		t.Errorf("after the rollback the task is %s, want v2's %s", got, task2)
	}

	// The API shows the service as what runs, and the deploys.
	view := d.apiOK(200, tokRead, "GET", "/api/v1/deployments/"+name, "")
	running, _ := view["running"].(map[string]any)
	if running == nil || running["container"] != name || running["id"] != svc.ID || running["digest"] != v2 ||
		running["state"] != "running" || running["health"] != "1/1 tasks" {
		t.Errorf("API running: %v", view["running"])
	}
	if last, _ := view["last"].(map[string]any); last == nil || last["outcome"] != "rolled_back" {
		t.Errorf("API last: %v", view["last"])
	}
	deploys := d.apiOK(200, tokRead, "GET", "/api/v1/deploys?deployment="+name, "")
	var outcomes []string
	for _, x := range deploys["deploys"].([]any) {
		outcomes = append(outcomes, fmt.Sprint(x.(map[string]any)["outcome"]))
	}
	if !slices.Equal(outcomes, []string{"rolled_back", "unchanged", "succeeded", "succeeded"}) {
		t.Errorf("API deploys: %v", outcomes)
	}
	for _, line := range []string{
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="staging",outcome="succeeded"} 2`, name),
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="staging",outcome="rolled_back"} 1`, name),
	} {
		d.hasMetric(line)
	}
	// No container of liftoff's own: Swarm's tasks only.
	for _, c := range d.eng.Containers(t, name) {
		if !strings.HasPrefix(c, name+".1.") {
			t.Errorf("a container besides the service's tasks: %s", c)
		}
	}
}

// TestServiceStartFirstZeroDowntime measures the requests lost while
// Swarm updates a service start-first, three times: a client asks every
// 10ms, each time on a new connection. Through the routing mesh (the
// published port on 127.0.0.1) where the engine has one; and always from
// a container on the service's overlay network, by the DNS name
// tasks.NAME, which Docker answers with the running tasks' addresses
// (the service's own name would resolve to its virtual IP, served by the
// same IPVS as the routing mesh).
func TestServiceStartFirstZeroDowntime(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, port := startSwarmDaemon(t, func(port int) string { return serviceYAML("start-first", port) })
	name, nw := d.prefix+"-web", d.prefix+"-net"
	v1 := d.pushImage("staging", testenv.AppImage{Version: "v1", Healthcheck: true})
	d.deployOK("staging")
	d.serviceRuns(name, v1)

	mesh := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	meshWorks := probe(mesh, 10*time.Second)
	t.Logf("routing mesh on %s answers: %v", mesh, meshWorks)
	var host *poller
	if meshWorks {
		host = startPoller(mesh, 10*time.Millisecond)
	}
	// The client's results are read from the host, which cannot reach an
	// overlay network: it starts on a bridge, then joins the overlay.
	bridge := d.eng.UniqueName(t, "bridge")
	d.eng.Network(t, bridge)
	c := d.eng.StartClient(t, d.eng.UniqueName(t, "client"), d.reg.Host()+"/"+d.repo+"@"+v1, bridge,
		"http://tasks."+name+":8000/", 10*time.Millisecond)
	if _, err := d.eng.Client().NetworkConnect(context.Background(), nw, client.NetworkConnectOptions{Container: c.Name}); err != nil {
		t.Fatalf("connect the client to %s: %v", nw, err)
	}
	joined := time.Now()
	waitResults(t, c, joined, 50)

	for _, v := range []string{"v2", "v3", "v4"} {
		digest := d.pushImage("staging", testenv.AppImage{Version: v, Healthcheck: true})
		r := d.deployOK("staging")
		d.serviceRuns(name, digest)
		waitResults(t, c, r.Ended, 50)
	}
	results := c.Stop(t)
	var failed []testenv.ClientResult
	versions := map[string]int{}
	for _, r := range results {
		switch {
		case !r.Finished || r.Start.Before(joined):
		case r.Error != "":
			failed = append(failed, r)
		default:
			versions[r.Version]++
		}
	}
	t.Logf("overlay client, tasks.%s: %d requests, %d failed, answers by version %v", name, len(results), len(failed), versions)
	for _, r := range failed {
		t.Errorf("request %d at %s failed: %s (addr %s, took %s)", r.Seq, r.Start.Format(time.StampMicro), r.Error, r.Addr, r.Took)
	}
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		if versions[v] == 0 {
			t.Errorf("no answer from %s: %v", v, versions)
		}
	}
	if host != nil {
		n, errs := host.stop()
		t.Logf("routing mesh: %d requests, %d failed", n, len(errs))
		for _, e := range errs {
			t.Errorf("through the routing mesh: %s", e)
		}
	}
}

// probe tells whether url answers 200 within d.
func probe(url string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := (&http.Client{Timeout: time.Second}).Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// poller GETs a URL every interval on a new connection, from the host.
type poller struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	n     int
	errs  []string
}

func startPoller(url string, every time.Duration) *poller {
	p := &poller{stopc: make(chan struct{})}
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stopc:
				return
			case <-t.C:
			}
			p.wg.Add(1)
			go func(at time.Time) {
				defer p.wg.Done()
				resp, err := cl.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				p.mu.Lock()
				p.n++
				if err != nil {
					p.errs = append(p.errs, at.Format(time.StampMicro)+": "+err.Error())
				}
				p.mu.Unlock()
			}(time.Now())
		}
	}()
	return p
}

func (p *poller) stop() (int, []string) {
	close(p.stopc)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.errs
}

// TestServiceNeedsSwarmManager: liftoff does not start with a deployment
// that is a service on an engine that is no swarm manager. The engine is
// a stand-in that answers as Docker does outside a swarm, as the real
// one may be a manager for other tests.
func TestServiceNeedsSwarmManager(t *testing.T) {
	t.Parallel()
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			io.WriteString(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/info"):
			json.NewEncoder(w).Encode(map[string]any{"Swarm": map[string]any{"LocalNodeState": "inactive", "ControlAvailable": false}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer engine.Close()
	dir := t.TempDir()
	text := fmt.Sprintf(`
listen: 127.0.0.1:0
history: %s
docker_host: tcp://%s
hooks: [{source: dockerhub, token: %s}]
environments: {staging: {}}
deployments:
  - name: box
    image: acme/box
    tags: [staging]
    environment: staging
  - name: web
    image: acme/web
    tags: [staging]
    environment: staging
    service: {}
`, filepath.Join(dir, "liftoff.db"), strings.TrimPrefix(engine.URL, "http://"), hookToken)
	cfg, err := deployments.Parse([]byte(text), dir, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := liftoff.New(cfg, liftoff.Options{Logger: zerolog.Nop()})
	if err == nil {
		a.Close()
		t.Fatal("liftoff started with a service on an engine outside any swarm")
	}
	if want := `deployment web is a Swarm service, but its engine "local" is no swarm manager: the engine is not part of a swarm`; !strings.Contains(err.Error(), want) {
		t.Errorf("start-up error %q lacks %q", err, want)
	}
}
