package docker_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestCreateSettings creates a container with every setting of a
// deployment's container: the engine must hold each in the field docker
// run sets, and the app must run under them (read-only, as a user, with a
// tmpfs and an init).
func TestCreateSettings(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "1"})
	c, err := deployments.Parse([]byte(`deployments:
  - name: web
    image: acme/web
    tags: [x]
    container:
      memory: 96m
      memory_reservation: 48m
      cpus: 0.5
      pids_limit: 100
      shm_size: 16m
      logging: {driver: json-file, options: {max-size: 1m, max-file: "2"}}
      user: "65534:65534"
      working_dir: /tmp
      stop_signal: SIGINT
      entrypoint: [/app]
      init: true
      read_only: true
      tmpfs: ["/run:size=8m"]
      cap_add: [SYS_PTRACE]
      cap_drop: [NET_RAW]
      security_opt: ["no-new-privileges:true"]
      extra_hosts: ["db.internal:10.9.8.7"]
      ulimits: {nofile: "1024:2048"}
`), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Deployments[0].Container.Settings()
	id, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name, Image: f.ref, Settings: s,
		Labels: map[string]string{deploy.LabelManaged: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Start(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if version, _ := f.e.AppGet(t, f.name); version != "1" {
		t.Errorf("the app under the settings answers version %q", version)
	}

	in := f.e.Inspect(t, id)
	h, cfg := in.HostConfig, in.Config
	check := func(field string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", field, got, want)
		}
	}
	check("HostConfig.Memory", h.Memory, int64(96<<20))
	check("HostConfig.MemoryReservation", h.MemoryReservation, int64(48<<20))
	check("HostConfig.NanoCPUs", h.NanoCPUs, int64(500_000_000))
	check("HostConfig.PidsLimit", *h.PidsLimit, int64(100))
	check("HostConfig.ShmSize", h.ShmSize, int64(16<<20))
	check("HostConfig.LogConfig.Type", h.LogConfig.Type, "json-file")
	check("HostConfig.LogConfig.Config", h.LogConfig.Config, map[string]string{"max-size": "1m", "max-file": "2"})
	check("Config.User", cfg.User, "65534:65534")
	check("Config.WorkingDir", cfg.WorkingDir, "/tmp")
	check("Config.StopSignal", cfg.StopSignal, "SIGINT")
	check("Config.Entrypoint", []string(cfg.Entrypoint), []string{"/app"})
	check("HostConfig.Init", h.Init != nil && *h.Init, true)
	check("HostConfig.ReadonlyRootfs", h.ReadonlyRootfs, true)
	check("HostConfig.Tmpfs", h.Tmpfs, map[string]string{"/run": "size=8m"})
	check("HostConfig.CapAdd", []string(h.CapAdd), []string{"CAP_SYS_PTRACE"})
	check("HostConfig.CapDrop", []string(h.CapDrop), []string{"CAP_NET_RAW"})
	check("HostConfig.SecurityOpt", h.SecurityOpt, []string{"no-new-privileges:true"})
	check("HostConfig.ExtraHosts", h.ExtraHosts, []string{"db.internal:10.9.8.7"})
	if len(h.Ulimits) != 1 || h.Ulimits[0].Name != "nofile" || h.Ulimits[0].Soft != 1024 || h.Ulimits[0].Hard != 2048 {
		t.Errorf("HostConfig.Ulimits = %v, want nofile 1024:2048", h.Ulimits)
	}

	// What the container's own processes see.
	if ctr, err := f.c.Inspect(ctx(t), id); err != nil || !ctr.Running {
		t.Fatalf("not running under the settings: %+v, %v", ctr, err)
	}
	if err := f.c.Stop(ctx(t), id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestCreateDefaultLogging: a deployment that names no logging gets
// json-file with rotation, whatever the engine's own default driver.
func TestCreateDefaultLogging(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newFixture(t, testenv.AppImage{Version: "1"})
	c, err := deployments.Parse([]byte("deployments:\n  - {name: web, image: acme/web, tags: [x]}\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.c.Create(ctx(t), deploy.Spec{Name: f.name, Image: f.ref, Settings: c.Deployments[0].Container.Settings()})
	if err != nil {
		t.Fatal(err)
	}
	lc := f.e.Inspect(t, id).HostConfig.LogConfig
	if lc.Type != "json-file" || lc.Config["max-size"] != "10m" || lc.Config["max-file"] != "3" || len(lc.Config) != 2 {
		t.Errorf("log config = %+v, want json-file max-size 10m max-file 3", lc)
	}
}
