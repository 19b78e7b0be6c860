package deployments

import (
	"reflect"
	"strings"
	"testing"
)

func TestSettingsParsed(t *testing.T) {
	c, err := Parse([]byte(head+`deployments:
  - name: web
    image: acme/web
    tags: [x]
    container:
      memory: 512m
      memory_reservation: 256M
      cpus: 1.5
      pids_limit: 200
      shm_size: 64000000
      logging: {driver: json-file, options: {max-size: 20m, max-file: "5"}}
      user: "1000:1000"
      working_dir: /srv
      stop_signal: SIGQUIT
      entrypoint: [/app, --serve]
      init: true
      read_only: true
      tmpfs: ["/run:size=64m,mode=1777", /tmp]
      cap_add: [net_bind_service, CAP_SYS_PTRACE]
      cap_drop: [ALL]
      security_opt: ["no-new-privileges:true", "apparmor=unconfined"]
      extra_hosts: ["db:10.0.0.5", "gw=host-gateway", "v6:[::1]"]
      ulimits: {nofile: "1024:2048", nproc: 65535, core: "-1"}
  - name: plain
    image: acme/web
    tags: [y]
`), "", lookupMap(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Deployments[0].Container.Settings()
	want := Settings{
		Memory: 512 << 20, MemoryReservation: 256 << 20, NanoCPUs: 1_500_000_000, PidsLimit: 200, ShmSize: 64000000,
		LogDriver: "json-file", LogOptions: map[string]string{"max-size": "20m", "max-file": "5"},
		User: "1000:1000", WorkingDir: "/srv", StopSignal: "SIGQUIT", Entrypoint: []string{"/app", "--serve"},
		Init: true, ReadOnly: true, Tmpfs: map[string]string{"/run": "size=64m,mode=1777", "/tmp": ""},
		CapAdd: []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_PTRACE"}, CapDrop: []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges:true", "apparmor=unconfined"},
		ExtraHosts:  []string{"db:10.0.0.5", "gw:host-gateway", "v6:::1"},
		Ulimits:     []Ulimit{{"core", -1, -1}, {"nofile", 1024, 2048}, {"nproc", 65535, 65535}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings =\n%+v\nwant\n%+v", got, want)
	}
	// No logging given: the rotation liftoff documents as the default.
	plain := c.Deployments[1].Container.Settings()
	if plain.LogDriver != "json-file" || plain.LogOptions["max-size"] != "10m" || plain.LogOptions["max-file"] != "3" {
		t.Errorf("default logging = %s %v, want json-file max-size 10m max-file 3", plain.LogDriver, plain.LogOptions)
	}
}

func TestSettingsErrors(t *testing.T) {
	c := head + "deployments:\n  - name: web\n    image: acme/web\n    tags: [x]\n    container:\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"size", "      memory: lots\n", `deployments[0].container.memory: "lots": want a size like 512m`},
		{"tiny memory", "      memory: 1m\n", `deployments[0].container.memory: "1m" is below the engine's minimum of 6MiB`},
		{"reservation above limit", "      memory: 64m\n      memory_reservation: 128m\n", "deployments[0].container.memory_reservation: must not be above memory (64m)"},
		{"cpus", "      cpus: -1\n", "deployments[0].container.cpus: must be a positive number"},
		{"pids", "      pids_limit: -2\n", "deployments[0].container.pids_limit: want a number of processes"},
		{"capability", "      cap_add: [NET_ADMN]\n", `deployments[0].container.cap_add[0]: unknown capability "NET_ADMN"`},
		{"capability in drop", "      cap_drop: [ALL, \"--privileged\"]\n", `deployments[0].container.cap_drop[1]: unknown capability "--privileged"`},
		{"security opt", "      security_opt: [seccomp=./profile.json]\n", "deployments[0].container.security_opt[0]: \"seccomp=./profile.json\": liftoff takes seccomp=unconfined only"},
		{"unknown security opt", "      security_opt: [privileged]\n", "security_opt[0]: \"privileged\": unknown option"},
		{"extra host", "      extra_hosts: [db]\n", `deployments[0].container.extra_hosts[0]: "db": want host:ip`},
		{"extra host ip", "      extra_hosts: [\"db:ten\"]\n", "want host:ip with an IP address or host-gateway"},
		{"ulimit name", "      ulimits: {files: 10}\n", `deployments[0].container.ulimits.files: "10": unknown limit: want one of core`},
		{"ulimit order", "      ulimits: {nofile: \"10:5\"}\n", "deployments[0].container.ulimits.nofile: \"10:5\": the soft limit is above the hard one"},
		{"tmpfs", "      tmpfs: [run]\n", `deployments[0].container.tmpfs[0]: "run": want /path[:options]`},
		{"working dir", "      working_dir: srv\n", "deployments[0].container.working_dir: \"srv\": must be an absolute path"},
		{"stop signal", "      stop_signal: SIGFOO\n", "deployments[0].container.stop_signal: \"SIGFOO\": want a signal name"},
		{"user", "      user: \"app user\"\n", "deployments[0].container.user: \"app user\": want user[:group]"},
		{"log driver missing", "      logging: {options: {max-size: 1m}}\n", "deployments[0].container.logging.driver: missing"},
		{"log rotation", "      logging: {driver: json-file, options: {max-size: big, max-file: \"0\"}}\n", "logging.options.max-file: \"0\": want a number of files"},
		{"log none", "      logging: {driver: none, options: {max-size: 1m}}\n", "logging.options.max-size: the none driver takes no options"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(c+tc.yaml), "", lookupMap(testEnv()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSettingsRefusedOnService(t *testing.T) {
	_, err := Parse([]byte(head+"deployments:\n  - {name: web, image: acme/web, tags: [x], service: {}, container: {memory: 64m, init: true}}\n"), "", lookupMap(testEnv()))
	for _, want := range []string{"deployments[0].container.memory: applies to containers", "deployments[0].container.init: applies to containers"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant it to contain %q", err, want)
		}
	}
}

func TestSettingsSecretNotShown(t *testing.T) {
	_, err := Parse([]byte(head+"deployments:\n  - {name: web, image: acme/web, tags: [x], container: {user: \"${SECRET} x\", extra_hosts: [\"${SECRET}\"], memory: \"${SECRET}\"}}\n"), "", lookupMap(testEnv()))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), envSecret) {
		t.Errorf("error shows the secret: %v", err)
	}
}

// An item yaml cannot decode is dropped and the later ones move up: the
// ${VAR} written second is then checked as item 0, and stays hidden.
func TestSecretAfterADroppedItemNotShown(t *testing.T) {
	for _, list := range []string{
		`extra_hosts: [{a: b}, "${SECRET}"]`,
		`extra_hosts: [{a: b}, [c], db, "${SECRET}"]`,
		`cap_add: [{a: b}, "${SECRET}"]`,
	} {
		_, err := Parse([]byte(head+"deployments:\n  - {name: web, image: acme/web, tags: [x], container: {"+list+"}}\n"), "", lookupMap(testEnv()))
		if err == nil {
			t.Fatalf("%s: no error", list)
		}
		if strings.Contains(err.Error(), envSecret) {
			t.Errorf("%s: error shows the secret: %v", list, err)
		}
	}
}
