package deployments

import (
	"slices"
	"strings"
	"testing"
)

const app = head + `deployments:
  - name: dblood
    image: acme/dblood
    tags: [latest]
    container: {networks: [backend], volumes: ["data:/data"], labels: {team: a}, restart: unless-stopped}
    processes:
      web: {command: [gunicorn], container: {ports: ["127.0.0.1:8001:8000"], aliases: [dblood], labels: {tier: web}}}
      worker: {command: [celery, worker], scale: 2, health: {min_uptime: 1s}}
      beat: {command: [celery, beat], scale: 1}
`

func TestProcessUnits(t *testing.T) {
	c, err := parseString(t, app)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Deployment("dblood")
	if !d.HasProcesses() {
		t.Fatal("HasProcesses is false")
	}
	var names, containers []string
	for _, u := range d.Units() {
		names = append(names, u.Deployment.Name)
		containers = append(containers, u.Deployment.ContainerName())
	}
	// By name, web last; replicas in order.
	if want := []string{"dblood/beat.1", "dblood/worker.1", "dblood/worker.2", "dblood/web.1"}; !slices.Equal(names, want) {
		t.Errorf("units %v, want %v", names, want)
	}
	if want := []string{"dblood-beat-1", "dblood-worker-1", "dblood-worker-2", "dblood-web-1"}; !slices.Equal(containers, want) {
		t.Errorf("containers %v, want %v", containers, want)
	}
	web := c.Unit("dblood/web.1").Deployment
	if !slices.Equal(web.Container.Ports, []string{"127.0.0.1:8001:8000"}) || !slices.Equal(web.Container.Aliases, []string{"dblood"}) ||
		!slices.Equal(web.Container.Networks, []string{"backend"}) || !slices.Equal(web.Container.Volumes, []string{"data:/data"}) ||
		web.Container.Labels["team"] != "a" || web.Container.Labels["tier"] != "web" || web.Container.Restart != "unless-stopped" ||
		!slices.Equal(web.Container.Command, []string{"gunicorn"}) {
		t.Errorf("web's container %+v", web.Container)
	}
	worker := c.Unit("dblood/worker.2").Deployment
	if len(worker.Container.Ports) > 0 || len(worker.Container.Aliases) > 0 || worker.Container.Labels["tier"] != "" {
		t.Errorf("worker got the web's settings: %+v", worker.Container)
	}
	if worker.Health.MinUptime.Seconds() != 1 || worker.Health.Timeout != DefaultHealthTimeout {
		t.Errorf("worker's health %+v: want its own, with defaults", worker.Health)
	}
	if web.Health.MinUptime != DefaultMinUptime {
		t.Errorf("web's health %+v: want the deployment's", web.Health)
	}
	if c.Unit("dblood/nope.1") != nil || c.Unit("dblood") != nil || c.Unit("other/web.1") != nil {
		t.Error("Unit found a unit that does not exist")
	}

	c, err = parseString(t, strings.Replace(app, "    processes:", "    order: [web, worker, beat]\n    processes:", 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Deployment("dblood").ProcessOrder(); !slices.Equal(got, []string{"web", "worker", "beat"}) {
		t.Errorf("order %v", got)
	}
}

func TestProcessErrors(t *testing.T) {
	dep := head + `deployments:
  - name: dblood
    image: acme/dblood
    tags: [latest]
`
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad name and scale", dep + `    processes:
      "-web": {}
      worker: {scale: 0}
`, []string{`deployments[0].processes: invalid process name "-web"`, "deployments[0].processes.worker.scale: want 1 or more replicas"}},
		{"reserved name", dep + "    processes: {x.liftoff-prev: {}}\n", []string{`process name "x.liftoff-prev" ends like`}},
		{"ports at the top", dep + "    container: {ports: [\"8000\"]}\n    processes: {web: {}}\n",
			[]string{"deployments[0].container.ports: with processes, ports belong to the process"}},
		{"proxy", dep + "    proxy: {listen: \"127.0.0.1:9001\", port: 8000}\n    processes: {web: {}}\n",
			[]string{"deployments[0].proxy: with processes, the front door belongs to the process that serves users: processes.<name>.proxy"}},
		{"two proxies", dep + "    processes: {web: {proxy: {listen: \"127.0.0.1:9001\", port: 8000}}, api: {proxy: {listen: \"127.0.0.1:9002\", port: 8000}}}\n",
			[]string{"deployments[0].processes: api and web each have a proxy: give the front door to one process"}},
		{"proxy with replicas and ports", dep + "    processes: {web: {scale: 2, proxy: {listen: \"127.0.0.1:9001\", port: 8000}, container: {ports: [\"8000\"]}}}\n",
			[]string{"deployments[0].processes.web.scale: the front door sends a process's requests to one container", "deployments[0].processes.web.container.ports: the front door reaches the process on a loopback port"}},
		{"bad proxy", dep + "    processes: {web: {proxy: {port: 0}}}\n",
			[]string{"deployments[0].processes.web.proxy.listen: missing", "deployments[0].processes.web.proxy.port: want the container's port"}},
		{"upstream without a proxy", dep + "    processes: {worker: {health: {url: \"http://{upstream}/healthz\"}}}\n",
			[]string{"deployments[0].processes.worker.health.url: {upstream} is the address liftoff's proxy reaches"}},
		{"proxy hosts without a front door", dep + "    processes: {web: {proxy: {hosts: [dblood.example.com], port: 8000}}}\n",
			[]string{"deployments[0].processes.web.proxy.hosts: hosts are served by the front door"}},
		{"process container name and command", dep + "    processes: {web: {container: {name: x, command: [y]}}}\n",
			[]string{"deployments[0].processes.web.container.name: a process's containers are named", "deployments[0].processes.web.container.command: give the process's command"}},
		{"order", dep + "    order: [web, web, nope]\n    processes: {web: {}, worker: {}}\n",
			[]string{`deployments[0].order[1]: process "web" listed twice`, `deployments[0].order[2]: unknown process "nope" (have: web, worker)`, `deployments[0].order: does not list process "worker"`}},
		{"order without processes", dep + "    order: [web]\n", []string{"deployments[0].order: order is the order of processes"}},
		{"replicas on one host port", dep + "    processes: {web: {scale: 2, container: {ports: [\"8000:8000\"]}}}\n",
			[]string{"host port 8000/tcp is also published by deployments[0].processes.web.container(replica 1).ports[0]"}},
		{"container name taken", dep + "    processes: {web: {}}\n  - {name: dblood-web-1, image: acme/x, tags: [x]}\n",
			[]string{`deployments[1].container.name: "dblood-web-1" is also the container of deployments[0]`}},
		{"start-first ports", dep + "    strategy: start-first\n    processes: {web: {container: {ports: [\"8000\"]}}}\n",
			[]string{"deployments[0].processes.web.container.ports: start-first runs two containers"}},
		{"unknown key", dep + "    processes: {web: {comand: [x]}}\n", []string{"comand"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, tt.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

// A front door on one process: its unit has the proxy, the others none,
// and the front door knows it by the unit's name.
func TestProcessProxy(t *testing.T) {
	c := mustParse(t, strings.Replace(app, "web: {command: [gunicorn], container: {ports: [\"127.0.0.1:8001:8000\"], aliases: [dblood], labels: {tier: web}}}",
		"web: {command: [gunicorn], proxy: {listen: \"127.0.0.1:8001\", port: 8000}}", 1))
	web := c.Unit("dblood/web.1").Deployment
	if web.Proxy == nil || web.Proxy.Listen != "127.0.0.1:8001" || web.Proxy.Port != 8000 || web.Proxy.DrainTimeout == 0 {
		t.Errorf("web's proxy %+v: want the process's, with defaults", web.Proxy)
	}
	if c.Unit("dblood/worker.1").Deployment.Proxy != nil || c.Deployment("dblood").Proxy != nil {
		t.Error("the worker or the app got the web's proxy")
	}
	var routes []string
	for _, d := range c.ProxyRoutes() {
		routes = append(routes, d.Name)
	}
	if !slices.Equal(routes, []string{"dblood/web.1"}) {
		t.Errorf("ProxyRoutes %v, want the web's unit", routes)
	}
}
