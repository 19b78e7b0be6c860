package daemon_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// composeFile is a project of a web and a worker service on the test app,
// with most of what a compose user writes. {{APP}}, {{NET}} and {{VOL}} are replaced
// by the test's names; ${GREETING} comes from the project's .env.
const composeFile = `
services:
  web:
    image: acme/{{APP}}:staging
    build: .
    environment:
      GREETING: ${GREETING}
      LAYER: compose
    env_file: [app.env]
    ports: ["127.0.0.1::8000"]
    volumes:
      - data:/data
      - ./static:/srv/static:ro
    networks:
      back:
        aliases: [api]
    healthcheck:
      test: ["CMD", "/app", "healthcheck"]
      interval: 1s
      timeout: 3s
      retries: 3
      start_period: 2s
    logging:
      driver: json-file
      options: {max-size: 2m, max-file: "4"}
    mem_limit: 128m
    cpus: 0.5
    pids_limit: 64
    ulimits:
      nofile: {soft: 2048, hard: 4096}
    restart: unless-stopped
    labels: {team: shop}
  worker:
    image: acme/{{APP}}:staging
    environment: [LAYER=compose-worker]
    env_file: [app.env]
    networks: [back]
    user: "65534:65534"
    working_dir: /tmp
    stop_signal: SIGINT
    stop_grace_period: 3s
    init: true
    read_only: true
    tmpfs: [/run]
    cap_drop: [NET_RAW]
    cap_add: [SYS_PTRACE]
    security_opt: ["no-new-privileges:true"]
    extra_hosts: ["db.internal:10.9.8.7"]
    shm_size: 16m
    deploy:
      resources:
        limits: {memory: 64m, cpus: "0.25"}
        reservations: {memory: 32m}
  db:
    image: postgres:16
    profiles: [never]

networks:
  back: {name: {{NET}}, external: true}
volumes:
  data: {name: {{VOL}}}
`

// composeConfig deploys the web and worker services of the compose file
// FILE, in project PROJECT.
const composeConfig = configHead + `environments:
  staging:
    env: {STAGE: staging}
deployments:
  - name: %[1]s-web
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    env: {LAYER: liftoff}
    health: {min_uptime: 500ms}
    compose: {file: FILE, service: web, project: PROJECT}
  - name: %[1]s-worker
    tags: [staging]
    environment: staging
    health: {min_uptime: 500ms}
    compose: {file: FILE, service: worker, project: PROJECT}
`

// TestComposeServicesOnTheEngine deploys two services of a compose file
// and compares each container, field by field, with the service as
// compose-go (Docker Compose's loader) reads it; liftoff's environment
// layers go on top of the service's. A key liftoff cannot honour fails the
// reload by name and keeps the running configuration; a change of the
// file applies at the next deploy after a reload.
func TestComposeServicesOnTheEngine(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	eng := testenv.Engine(t)
	net, vol, project := eng.UniqueName(t, "back"), eng.UniqueName(t, "data"), eng.UniqueName(t, "proj")
	// Registered before the daemon's engine: runs after its sweep has
	// removed the containers that use the volume.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := eng.Client().VolumeRemove(ctx, vol, client.VolumeRemoveOptions{Force: true}); err != nil && !strings.Contains(err.Error(), "No such volume") {
			t.Errorf("remove volume %s: %v", vol, err)
		}
	})
	eng.Network(t, net)

	d := startDaemon(t, webYAML("{min_uptime: 500ms}", "", ""))
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "docker-compose.yml")
	compose := strings.NewReplacer("{{APP}}", d.prefix, "{{NET}}", net, "{{VOL}}", vol).Replace(composeFile)
	write(".env", "GREETING=hello\n")
	write("app.env", "DATABASE_URL=postgres://db/shop\nLAYER=env-file\n")
	config := strings.NewReplacer("FILE", file, "PROJECT", project).Replace(composeConfig)

	// A key liftoff cannot honour: the reload fails, naming file,
	// service and key.
	write("docker-compose.yml", strings.Replace(compose, "    init: true\n", "    init: true\n    privileged: true\n", 1))
	d.rewrite(config)
	if status, msg := d.reload(); status == http.StatusOK || !strings.Contains(msg, "deployments[1].compose: "+file+": service worker: privileged: liftoff cannot honour it") {
		t.Fatalf("reload of a compose file with privileged: %d %s", status, msg)
	}
	write("docker-compose.yml", compose)
	if status, msg := d.reload(); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, msg)
	}

	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	if status, ans := d.hook("staging"); status != http.StatusAccepted || ans.Accepted != 2 {
		t.Fatalf("push: %d %+v", status, ans)
	}
	for range 2 {
		if r := d.next(); r.Outcome != deploy.Succeeded {
			t.Fatalf("deploy of %s: %s %v", r.Request.Deployment, r.Outcome, r.Err)
		}
	}

	proj := loadCompose(t, file, project)
	web, worker := d.prefix+"-web", d.prefix+"-worker"
	sameAsCompose(t, proj, "web", d.eng.Inspect(t, web), net)
	sameAsCompose(t, proj, "worker", d.eng.Inspect(t, worker), net)

	// liftoff's layers over the service's environment.
	env := d.serving(web, "v1")
	for k, want := range map[string]string{"GREETING": "hello", "LAYER": "liftoff", "STAGE": "staging", "DATABASE_URL": "postgres://db/shop"} {
		if env[k] != want {
			t.Errorf("web %s = %q, want %q", k, env[k], want)
		}
	}
	if env := d.serving(worker, "v1"); env["LAYER"] != "compose-worker" || env["STAGE"] != "staging" {
		t.Errorf("worker env LAYER=%q STAGE=%q, want compose-worker, staging", env["LAYER"], env["STAGE"])
	}

	// A change of the compose file (its .env here, and a limit) applies
	// at the next deploy, without a reload, as env_files do.
	write(".env", "GREETING=bonjour\n")
	compose = strings.Replace(compose, "mem_limit: 128m", "mem_limit: 160m", 1)
	write("docker-compose.yml", compose)
	pushBoth := func(version string) map[string]deploy.Result {
		t.Helper()
		d.pushImage("staging", testenv.AppImage{Version: version})
		if status, ans := d.hook("staging"); status != http.StatusAccepted || ans.Accepted != 2 {
			t.Fatalf("push: %d %+v", status, ans)
		}
		out := map[string]deploy.Result{}
		for range 2 {
			r := d.next()
			out[r.Request.Deployment] = r
		}
		return out
	}
	for name, r := range pushBoth("v2") {
		if r.Outcome != deploy.Succeeded {
			t.Fatalf("deploy of %s: %s %v", name, r.Outcome, r.Err)
		}
	}
	if env := d.serving(web, "v2"); env["GREETING"] != "bonjour" {
		t.Errorf("after the change GREETING = %q, want bonjour", env["GREETING"])
	}
	sameAsCompose(t, loadCompose(t, file, project), "web", d.eng.Inspect(t, web), net)

	// A key liftoff cannot honour, added since: the deploy fails before
	// anything is stopped, naming it, and v2 serves on.
	write("docker-compose.yml", strings.Replace(compose, "    mem_limit: 160m\n", "    mem_limit: 160m\n    privileged: true\n", 1))
	results := pushBoth("v3")
	if r := results[web]; r.Outcome != deploy.Failed || r.Err == nil || !strings.Contains(r.Err.Error(), "service web: privileged: liftoff cannot honour it") {
		t.Errorf("deploy of web with privileged: %s %v", r.Outcome, r.Err)
	}
	if r := results[worker]; r.Outcome != deploy.Succeeded {
		t.Errorf("deploy of worker: %s %v", r.Outcome, r.Err)
	}
	d.serving(web, "v2")
}

// loadCompose reads the file as Docker Compose does.
func loadCompose(t *testing.T, file, project string) *types.Project {
	t.Helper()
	o, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithName(project), cli.WithEnvFiles(), cli.WithDotEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := o.LoadProject(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sameAsCompose compares the container with the service, each field where
// Docker Compose sets it.
func sameAsCompose(t *testing.T, p *types.Project, service string, in container.InspectResponse, net string) {
	t.Helper()
	s, err := p.GetService(service)
	if err != nil {
		t.Fatal(err)
	}
	cfg, h := in.Config, in.HostConfig
	check := func(field string, got, want any) {
		t.Helper()
		if noElems(got) && noElems(want) {
			return // nil and empty are the same to the engine
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s = %#v, want %#v", service, field, got, want)
		}
	}
	for k, v := range s.Environment {
		if v != nil && k != "LAYER" && !slices.Contains(cfg.Env, k+"="+*v) {
			t.Errorf("%s: env %q lacks %s=%s", service, cfg.Env, k, *v)
		}
	}
	for k, v := range s.Labels {
		check("label "+k, cfg.Labels[k], v)
	}
	for k, v := range map[string]string{"com.docker.compose.project": p.Name, "com.docker.compose.service": service,
		"com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False"} {
		check("label "+k, cfg.Labels[k], v)
	}
	mem, cpus, pids := int64(s.MemLimit), int64(s.CPUS*1e9), s.PidsLimit
	var reservation int64
	if dp := s.Deploy; dp != nil {
		if l := dp.Resources.Limits; l != nil {
			mem, cpus = int64(l.MemoryBytes), int64(float64(l.NanoCPUs)*1e9)
		}
		if r := dp.Resources.Reservations; r != nil {
			reservation = int64(r.MemoryBytes)
		}
	}
	check("HostConfig.Memory", h.Memory, mem)
	check("HostConfig.MemoryReservation", h.MemoryReservation, reservation)
	check("HostConfig.NanoCPUs", h.NanoCPUs, cpus)
	if pids != 0 {
		check("HostConfig.PidsLimit", *h.PidsLimit, pids)
	}
	if s.ShmSize != 0 {
		check("HostConfig.ShmSize", h.ShmSize, int64(s.ShmSize))
	}
	if l := s.Logging; l != nil {
		check("HostConfig.LogConfig", h.LogConfig, container.LogConfig{Type: l.Driver, Config: l.Options})
	} else {
		check("HostConfig.LogConfig (liftoff's default)", h.LogConfig, container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}})
	}
	check("Config.User", cfg.User, s.User)
	check("Config.WorkingDir", cfg.WorkingDir, s.WorkingDir)
	check("Config.StopSignal", cfg.StopSignal, s.StopSignal)
	check("HostConfig.Init", h.Init != nil && *h.Init, s.Init != nil && *s.Init)
	check("HostConfig.ReadonlyRootfs", h.ReadonlyRootfs, s.ReadOnly)
	var tmpfs map[string]string
	for _, m := range s.Tmpfs {
		if tmpfs == nil {
			tmpfs = map[string]string{}
		}
		tmpfs[m] = ""
	}
	check("HostConfig.Tmpfs", h.Tmpfs, tmpfs)
	var caps []string
	for _, c := range s.CapAdd {
		caps = append(caps, "CAP_"+c)
	}
	check("HostConfig.CapAdd", []string(h.CapAdd), caps)
	caps = nil
	for _, c := range s.CapDrop {
		caps = append(caps, "CAP_"+c)
	}
	check("HostConfig.CapDrop", []string(h.CapDrop), caps)
	check("HostConfig.SecurityOpt", h.SecurityOpt, s.SecurityOpt)
	check("HostConfig.ExtraHosts", h.ExtraHosts, []string(s.ExtraHosts.AsList(":")))
	var ulimits []string
	for n, u := range s.Ulimits {
		ulimits = append(ulimits, n+"="+itoa(int64(u.Soft))+":"+itoa(int64(u.Hard)))
	}
	var got []string
	for _, u := range h.Ulimits {
		got = append(got, u.Name+"="+itoa(u.Soft)+":"+itoa(u.Hard))
	}
	check("HostConfig.Ulimits", got, ulimits)
	restart := s.Restart
	if restart == "" {
		restart = "no"
	}
	check("HostConfig.RestartPolicy.Name", string(h.RestartPolicy.Name), restart)

	if hc := s.HealthCheck; hc != nil {
		want := &container.HealthConfig{Test: hc.Test, Interval: time.Duration(*hc.Interval), Timeout: time.Duration(*hc.Timeout),
			StartPeriod: time.Duration(*hc.StartPeriod), Retries: int(*hc.Retries)}
		check("Config.Healthcheck", cfg.Healthcheck, want)
	} else if cfg.Healthcheck != nil {
		t.Errorf("%s: Config.Healthcheck = %+v, want none", service, cfg.Healthcheck)
	}

	// Networks, with the service's name and its aliases.
	ep := in.NetworkSettings.Networks[net]
	if ep == nil {
		t.Errorf("%s: not on network %s: %v", service, net, in.NetworkSettings.Networks)
	} else {
		want := []string{service}
		if c := s.Networks["back"]; c != nil {
			want = append(want, c.Aliases...)
		}
		for _, a := range want {
			if !slices.Contains(ep.Aliases, a) {
				t.Errorf("%s: aliases on %s = %v, want %v among them", service, net, ep.Aliases, want)
			}
		}
	}

	// Volumes: binds as docker run -v, the anonymous one in Config.Volumes.
	var binds []string
	anonymous := map[string]struct{}{}
	for _, v := range s.Volumes {
		switch {
		case v.Type == types.VolumeTypeVolume && v.Source == "":
			anonymous[v.Target] = struct{}{}
		case v.Type == types.VolumeTypeVolume:
			binds = append(binds, p.Volumes[v.Source].Name+":"+v.Target)
		case v.ReadOnly:
			binds = append(binds, v.Source+":"+v.Target+":ro")
		default:
			binds = append(binds, v.Source+":"+v.Target)
		}
	}
	check("HostConfig.Binds", h.Binds, binds)
	if len(anonymous) > 0 {
		check("Config.Volumes", cfg.Volumes, anonymous)
	}

	// Ports: the published ones, on the address the service gives.
	for _, port := range s.Ports {
		key := itoa(int64(port.Target)) + "/" + port.Protocol
		var found bool
		for p, bs := range h.PortBindings {
			if p.String() == key && len(bs) == 1 && bs[0].HostIP.String() == port.HostIP && bs[0].HostPort == port.Published {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: port bindings %v lack %s:%s:%s", service, h.PortBindings, port.HostIP, port.Published, key)
		}
	}
}

// noElems tells whether v is a slice or map without elements.
func noElems(v any) bool {
	r := reflect.ValueOf(v)
	return (r.Kind() == reflect.Slice || r.Kind() == reflect.Map) && r.Len() == 0
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
