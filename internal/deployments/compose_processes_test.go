package deployments

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeCompose writes a compose file in a directory of its own and
// returns its path.
func writeCompose(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "docker-compose.yml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

const appCompose = `name: dblood
services:
  web:
    image: acme/dblood:dev
    command: [gunicorn, dblood.wsgi]
    environment: {ROLE: web, SHARED: compose}
    networks: [back]
    healthcheck: {test: [CMD, /app, health], interval: 2s}
    stop_grace_period: 7s
    mem_limit: 64m
  worker:
    image: acme/dblood
    command: [celery, worker]
    environment: {ROLE: worker}
    env_file: [worker.env]
  db:
    image: postgres:16
networks:
  back: {}
`

// An app whose processes name the services of one compose file: each
// unit takes its service's command, env, healthcheck, settings and
// Compose's labels for its replica; liftoff's layers go on top.
func TestComposeProcesses(t *testing.T) {
	file := writeCompose(t, appCompose)
	if err := os.WriteFile(filepath.Join(filepath.Dir(file), "worker.env"), []byte("BROKER=s3cr3t-broker\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, head+`deployments:
  - name: dblood
    tags: [latest]
    env: {SHARED: liftoff}
    compose: {file: `+file+`}
    processes:
      web: {service: web, health: {min_uptime: 1s}}
      worker: {service: worker, scale: 2}
`)
	d := c.Deployment("dblood")
	if d.Image != "docker.io/acme/dblood" {
		t.Errorf("image %q, want the services' repository", d.Image)
	}
	var names []string
	for _, u := range d.Units() {
		names = append(names, u.Deployment.ContainerName()+"="+u.Deployment.Container.Labels[ComposeServiceLabel]+"#"+u.Deployment.Container.Labels[ComposeNumberLabel])
	}
	if want := []string{"dblood-worker-1=worker#1", "dblood-worker-2=worker#2", "dblood-web-1=web#1"}; !slices.Equal(names, want) {
		t.Errorf("units %v, want %v", names, want)
	}
	web := c.Unit("dblood/web.1").Deployment
	if !slices.Equal(web.Container.Command, []string{"gunicorn", "dblood.wsgi"}) || !slices.Equal(web.Container.Networks, []string{"dblood_back"}) ||
		web.Container.Settings().Memory != 64<<20 || web.Container.Settings().Healthcheck == nil ||
		web.StopTimeout != 7*time.Second || web.Health.MinUptime != time.Second ||
		web.Container.Labels[ComposeProjectLabel] != "dblood" {
		t.Errorf("web unit: container %+v, stop %v, health %+v", web.Container, web.StopTimeout, web.Health)
	}
	worker := c.Unit("dblood/worker.2").Deployment
	if !slices.Equal(worker.Container.Command, []string{"celery", "worker"}) || !slices.Equal(worker.Container.Networks, []string{"dblood_default"}) ||
		worker.StopTimeout != DefaultStopTimeout || worker.Container.Settings().Healthcheck != nil {
		t.Errorf("worker unit: container %+v, stop %v", worker.Container, worker.StopTimeout)
	}
	webEnv, err := c.Env(web, nil)
	if err != nil {
		t.Fatal(err)
	}
	workerEnv, err := c.Env(worker, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ROLE=web", "SHARED=liftoff"} {
		if !slices.Contains(webEnv, want) {
			t.Errorf("web env %q lacks %s", webEnv, want)
		}
	}
	if !slices.Contains(workerEnv, "ROLE=worker") || !slices.Contains(workerEnv, "BROKER=s3cr3t-broker") || slices.Contains(workerEnv, "ROLE=web") {
		t.Errorf("worker env %q", workerEnv)
	}
	// The app's secrets are those of every process: the release's output
	// is redacted with them.
	if keys := c.SecretKeys(d); !keys["BROKER"] || keys["ROLE"] {
		t.Errorf("app's secret keys %v: want BROKER (from worker's env_file), not ROLE", keys)
	}
	// A unit is read again at each deploy, its replica's labels kept.
	f, err := c.Fresh(worker)
	if err != nil {
		t.Fatal(err)
	}
	if f.Container.Name != "dblood-worker-2" || f.Container.Labels[ComposeNumberLabel] != "2" || f.Container.Labels[ComposeServiceLabel] != "worker" {
		t.Errorf("fresh worker.2: %+v", f.Container)
	}
	if got, _ := c.Fresh(d); got != d {
		t.Error("Fresh of the app is not the app: its units are read again one by one")
	}
}

func TestComposeProcessesErrors(t *testing.T) {
	file := writeCompose(t, appCompose)
	if err := os.WriteFile(filepath.Join(filepath.Dir(file), "worker.env"), []byte("X=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dep := head + "deployments:\n  - name: dblood\n    tags: [latest]\n"
	cm := "    compose: {file: " + file + "}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"two images", dep + cm + "    processes: {web: {service: web}, db: {service: db}}\n",
			[]string{"deployments[0].processes: the services of " + file + " run different images (web (service web) runs docker.io/acme/dblood; db (service db) runs docker.io/library/postgres)"}},
		{"unknown service", dep + cm + "    processes: {web: {service: nope}}\n",
			[]string{"deployments[0].processes.web.service: " + file + ": ", "nope"}},
		{"one without service", dep + cm + "    processes: {web: {service: web}, beat: {command: [celery, beat]}}\n",
			[]string{"deployments[0].processes.beat.service: missing: with compose: and a process naming its service, every process names one"}},
		{"compose.service too", dep + "    compose: {file: " + file + ", service: web}\n    processes: {web: {service: web}}\n",
			[]string{"deployments[0].compose.service: the processes name their services"}},
		{"command and container beside service", dep + cm + "    processes: {web: {service: web, command: [x], container: {ports: [\"80\"]}}}\n",
			[]string{"deployments[0].processes.web.command: comes from service web of " + file, "deployments[0].processes.web.container: comes from service web of " + file}},
		{"health.cmd and a healthcheck", dep + cm + "    processes: {web: {service: web, health: {cmd: [x]}}}\n",
			[]string{"deployments[0].processes.web.health.cmd: service web of " + file + " has a healthcheck"}},
		{"app container keys", dep + cm + "    container: {volumes: [\"a:/a\"]}\n    processes: {web: {service: web}}\n",
			[]string{"deployments[0].container.volumes: comes from each process's service of " + file}},
		{"another image", dep + "    image: acme/other\n" + cm + "    processes: {web: {service: web}}\n",
			[]string{`deployments[0].image: "acme/other", but the services of ` + file + " run docker.io/acme/dblood"}},
		{"service without compose", dep + "    image: acme/dblood\n    processes: {web: {service: web}}\n",
			[]string{"deployments[0].processes.web.service: names a compose service: give compose: {file: ...}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, tt.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "image: missing") {
				t.Errorf("error repeats a missing image:\n%v", err)
			}
		})
	}
}

// The front door reaches a proxied process on a loopback port: a service
// that publishes its own is refused, not silently unpublished.
func TestComposeProcessProxyPorts(t *testing.T) {
	file := writeCompose(t, "services:\n  web:\n    image: acme/dblood\n    ports: [\"8000:8000\"]\n  worker:\n    image: acme/dblood\n")
	yaml := head + "deployments:\n  - name: dblood\n    tags: [latest]\n    compose: {file: " + file + "}\n" +
		"    processes: {web: {service: web, proxy: {listen: \"127.0.0.1:9001\", port: 8000}}, worker: {service: worker}}\n"
	_, err := parseString(t, yaml)
	if want := "deployments[0].processes.web.proxy: service web of " + file + " publishes ports"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant %q", err, want)
	}
	plain := writeCompose(t, "services:\n  web:\n    image: acme/dblood\n  worker:\n    image: acme/dblood\n")
	c := mustParse(t, strings.Replace(yaml, file, plain, 1))
	if web := c.Unit("dblood/web.1").Deployment; web.Proxy == nil || web.Container.Labels[ComposeServiceLabel] != "web" {
		t.Errorf("web unit: proxy %+v, labels %v", web.Proxy, web.Container.Labels)
	}
}
