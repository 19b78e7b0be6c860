package deployments

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const shopDeployments = `
  - name: shop-web
    environment: staging
    tags: [latest]
    compose: {file: compose/shop/docker-compose.yml, service: web}
    env: {WORKERS: "8"}
  - name: shop-worker
    environment: staging
    tags: [latest]
    compose: {file: compose/shop/docker-compose.yml, service: worker, project: dblood}
`

func TestComposeService(t *testing.T) {
	c := mustParse(t, head+"deployments:"+shopDeployments)
	web := c.Deployment("shop-web")
	if web.Image != "ghcr.io/acme/shop" {
		t.Errorf("image = %q, want the service's repository without its tag", web.Image)
	}
	dir, _ := filepath.Abs("testdata/compose/shop")
	ct := web.Container
	want := Container{
		Name:     "shop-web",
		Command:  []string{"gunicorn", "shop.wsgi"},
		Ports:    []string{"127.0.0.1:8000:8000"},
		Volumes:  []string{"shop_media:/srv/media", dir + "/static:/srv/static:ro"},
		Networks: []string{"shop_back", "shop-front"},
		Aliases:  []string{"web", "app", "www"},
		Restart:  "unless-stopped",
		Labels: map[string]string{"team": "shop",
			"com.docker.compose.project": "shop", "com.docker.compose.service": "web",
			"com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False",
			"com.docker.compose.project.working_dir":  dir,
			"com.docker.compose.project.config_files": dir + "/docker-compose.yml",
			"com.docker.compose.version":              "2.0.0"},
		Memory: "268435456", CPUs: 0.5, PidsLimit: 200,
		Logging:     &Logging{Driver: "json-file", Options: map[string]string{"max-size": "5m", "max-file": "2"}},
		User:        "1000:1000",
		WorkingDir:  "/srv",
		StopSignal:  "SIGINT",
		Init:        true,
		ReadOnly:    true,
		Tmpfs:       []string{"/tmp/cache:size=16777216"},
		CapDrop:     []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges:true"},
		ExtraHosts:  []string{"db.local:10.1.2.3"},
		Ulimits:     map[string]string{"nofile": "1024:2048"},
	}
	got := ct
	got.settings, got.healthcheck = Settings{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("container =\n%+v\nwant\n%+v", got, want)
	}
	wantHC := &Healthcheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: 10 * time.Second, Retries: 4}
	if s := ct.Settings(); !reflect.DeepEqual(s.Healthcheck, wantHC) || s.Memory != 256<<20 || s.LogOptions["max-size"] != "5m" {
		t.Errorf("settings = %+v", s)
	}
	if web.StopTimeout != 30*time.Second {
		t.Errorf("stop timeout = %v, want the service's stop_grace_period", web.StopTimeout)
	}

	// The service's environment (env_file, then environment with .env
	// interpolated), under liftoff's deployment env.
	env, err := c.Env(web, []string{"PATH=/bin", "WORKERS=1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{"PATH=/bin", "WORKERS=8", "DJANGO_SETTINGS_MODULE=shop.settings", "DATABASE_URL=postgres://shop:FILESECRET-db@db/shop"} {
		if !slices.Contains(env, kv) {
			t.Errorf("env %q lacks %s", env, kv)
		}
	}
	// From env_file and from ${VAR}: secret; written as is: not.
	if sk := c.SecretKeys(web); !sk["DATABASE_URL"] || !sk["WORKERS"] || sk["DJANGO_SETTINGS_MODULE"] {
		t.Errorf("secret keys %v: want DATABASE_URL (env_file) and WORKERS (${WORKERS}), not DJANGO_SETTINGS_MODULE", sk)
	}

	// extends, deploy.resources, a project given in liftoff's config.
	worker := c.Deployment("shop-worker")
	if worker.Container.Restart != "on-failure:5" || worker.Container.Memory != "134217728" ||
		worker.Container.Labels["com.docker.compose.project"] != "dblood" || !slices.Equal(worker.Container.Networks, []string{"dblood_default"}) {
		t.Errorf("worker container = %+v", worker.Container)
	}
	env, _ = c.Env(worker, nil)
	if !slices.Contains(env, "CELERY_CONCURRENCY=4") {
		t.Errorf("worker env %q lacks what extends brings", env)
	}
}

func TestComposeRefused(t *testing.T) {
	for _, tc := range []struct {
		name, dep string
		want      []string
	}{
		{"keys liftoff cannot honour", "  - {name: bad, tags: [x], compose: {file: compose/shop/docker-compose.yml}}\n", []string{
			"deployments[0].compose: compose/shop/docker-compose.yml: service bad: privileged: liftoff cannot honour it",
			"deployments[0].compose: compose/shop/docker-compose.yml: service bad: network_mode: liftoff cannot honour it",
			"service bad: deploy.replicas: 3: liftoff runs one container per deployment",
			"service bad: depends_on.db.condition: service_healthy",
		}},
		{"no such service", "  - {name: api, tags: [x], compose: {file: compose/shop/docker-compose.yml}}\n", []string{
			`deployments[0].compose.service: compose/shop/docker-compose.yml: no service "api" (the file has bad, beat, db, web, worker)`}},
		{"no such file", "  - {name: api, tags: [x], compose: {file: compose/nope.yml}}\n", []string{"deployments[0].compose: compose/nope.yml:"}},
		{"container keys beside compose", "  - {name: w, tags: [x], compose: {file: compose/shop/docker-compose.yml, service: web}, container: {ports: [\"80:80\"], memory: 1g}}\n", []string{
			"deployments[0].container.ports: comes from service web of compose/shop/docker-compose.yml",
			"deployments[0].container.memory: comes from service web"}},
		{"another image", "  - {name: w, image: acme/other, tags: [x], compose: {file: compose/shop/docker-compose.yml, service: web}}\n", []string{
			`deployments[0].image: "acme/other", but service web of compose/shop/docker-compose.yml runs ghcr.io/acme/shop`}},
		{"two healthchecks", "  - {name: w, tags: [x], health: {cmd: [true]}, compose: {file: compose/shop/docker-compose.yml, service: web}}\n", []string{
			"deployments[0].health.cmd: service web of compose/shop/docker-compose.yml has a healthcheck"}},
		{"project name", "  - {name: w, tags: [x], compose: {file: compose/shop/docker-compose.yml, service: web, project: Shop}}\n", []string{
			`deployments[0].compose.project: "Shop": want lowercase letters`}},
		{"no file", "  - {name: w, tags: [x], compose: {service: web}}\n", []string{"deployments[0].compose.file: missing"}},
		{"on a service", "  - {name: w, tags: [x], service: {}, compose: {file: compose/shop/docker-compose.yml, service: db}}\n", []string{
			"deployments[0].compose: a service deployment takes its spec from container:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(t, head+"deployments:\n"+tc.dep)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
			noLeak(t, err.Error())
		})
	}
}

func TestComposeProfiles(t *testing.T) {
	// beat is in the cron profile, which is not active: naming it
	// enables it, as `docker compose up beat` does.
	c := mustParse(t, head+"deployments:\n  - {name: beat, tags: [x], compose: {file: compose/shop/docker-compose.yml}}\n")
	d := c.Deployment("beat")
	if !slices.Equal(d.Container.Command, []string{"celery", "-A", "shop", "beat"}) {
		t.Errorf("command = %q", d.Container.Command)
	}
}

func TestComposeErrorsHideSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(".env", "DOTENV=FILESECRET-dotenv-value\n")
	for _, tc := range []struct{ name, file string }{
		{"from liftoff's environment", "services:\n  web:\n    image: acme/web\n    mem_limit: ${SECRET}\n"},
		{"from .env", "services:\n  web:\n    image: acme/web\n    cpus: ${DOTENV}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write("docker-compose.yml", tc.file)
			_, err := parseString(t, head+"deployments:\n  - {name: web, tags: [x], compose: {file: "+filepath.Join(dir, "docker-compose.yml")+"}}\n")
			if err == nil || !strings.Contains(err.Error(), "deployments[0].compose: ") {
				t.Fatalf("error = %v", err)
			}
			noLeak(t, err.Error())
			for _, part := range []string{"0f1e2d3c", "dotenv-value"} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error shows part of a secret: %v", err)
				}
			}
		})
	}
}

func TestComposeFresh(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "docker-compose.yml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("services:\n  web:\n    image: acme/web\n    environment: {A: one}\n")
	c := mustParse(t, head+"deployments:\n  - {name: web, tags: [x], compose: {file: "+file+"}}\n  - {name: plain, image: acme/web, tags: [y]}\n")
	d := c.Deployment("web")
	if plain := c.Deployment("plain"); func() *Deployment { f, _ := c.Fresh(plain); return f }() != plain {
		t.Error("Fresh of a deployment without compose is not the deployment itself")
	}

	write("services:\n  web:\n    image: acme/web\n    environment: {A: two}\n    stop_grace_period: 5s\n    mem_limit: 64m\n")
	f, err := c.Fresh(d)
	if err != nil {
		t.Fatal(err)
	}
	if env, _ := c.Env(f, nil); !slices.Contains(env, "A=two") || f.StopTimeout != 5*time.Second || f.Container.Settings().Memory != 64<<20 {
		t.Errorf("fresh: env %q, stop %v, settings %+v", env, f.StopTimeout, f.Container.Settings())
	}
	if env, _ := c.Env(d, nil); !slices.Contains(env, "A=one") || d.StopTimeout != DefaultStopTimeout {
		t.Errorf("Fresh changed the loaded deployment: env %q, stop %v", env, d.StopTimeout)
	}

	for _, tc := range []struct{ file, want string }{
		{"services:\n  web:\n    image: acme/other\n", `deployments[0].image: "docker.io/acme/web", but service web of ` + file + ` runs docker.io/acme/other`},
		{"services:\n  web:\n    image: acme/web\n    container_name: web2\n", "deployments[0].container.name: service web of " + file + " now names the container web2, not web: reload"},
		{"services:\n  web:\n    image: acme/web\n    privileged: true\n", "service web: privileged: liftoff cannot honour it"},
		{"services:\n  web:\n    image: acme/web\n    cap_add: [NOPE]\n", `deployments[0].container.cap_add[0]: unknown capability "NOPE"`},
	} {
		write(tc.file)
		if _, err := c.Fresh(d); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Fresh of\n%s: error %v\nwant %q", tc.file, err, tc.want)
		}
	}
}

// The project's name as Docker Compose decides it: project:, else
// COMPOSE_PROJECT_NAME, else the file's name:, else its directory's name.
func TestComposeProjectName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My.Shop")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	for _, tc := range []struct {
		name, top, project, envName, want string
	}{
		{"directory", "", "", "", "myshop"},
		{"name:", "name: dblood\n", "", "", "dblood"},
		{"COMPOSE_PROJECT_NAME", "name: dblood\n", "", "fromenv", "fromenv"},
		{"project:", "name: dblood\n", "given", "fromenv", "given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.top+"services:\n  web:\n    image: acme/web\n    networks: [back]\nnetworks: {back: {}}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			env := testEnv()
			if tc.envName != "" {
				env["COMPOSE_PROJECT_NAME"] = tc.envName
			}
			project := ""
			if tc.project != "" {
				project = ", project: " + tc.project
			}
			c, err := Parse([]byte(head+"deployments:\n  - {name: web, tags: [x], compose: {file: "+file+project+"}}\n"), "", lookupMap(env))
			if err != nil {
				t.Fatal(err)
			}
			ct := c.Deployment("web").Container
			if got := ct.Labels[ComposeProjectLabel]; got != tc.want || !slices.Equal(ct.Networks, []string{tc.want + "_back"}) {
				t.Errorf("project %q, networks %v; want %q", got, ct.Networks, tc.want)
			}
		})
	}
}

// BenchmarkComposeFresh is what each deploy of a compose deployment adds:
// reading the fixture's file (anchors, extends, .env, env_file) again.
func BenchmarkComposeFresh(b *testing.B) {
	c, err := Parse([]byte(head+"deployments:"+shopDeployments), "testdata", lookupMap(testEnv()))
	if err != nil {
		b.Fatal(err)
	}
	d := c.Deployment("shop-web")
	for b.Loop() {
		if _, err := c.Fresh(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkComposeLoad is loading a config of two services of one file.
func BenchmarkComposeLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Parse([]byte(head+"deployments:"+shopDeployments), "testdata", lookupMap(testEnv())); err != nil {
			b.Fatal(err)
		}
	}
}

// TestComposeProfileKeepsEnvFile: a service kept out of `docker compose
// up` by a profile (as the README advises for those liftoff deploys) gets
// the same environment and labels as one that is not: its env_file, its
// label_file and the variables it names without a value, looked up in the
// project's environment. Compose resolves those only for the services of
// the active profiles, so liftoff ran such a service without its env_file.
func TestComposeProfileKeepsEnvFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "web.env", "SECRET_KEY=from-the-env-file\n")
	write(t, dir, "web.labels", "team=shop\n")
	svc := `
    image: ghcr.io/acme/shop
    env_file: [web.env]
    label_file: [web.labels]
    environment: [FROM_PROJECT, "PLAIN=plain"]
`
	write(t, dir, "docker-compose.yml", "name: shop\nservices:\n  open:"+svc+"  gated:"+svc+"    profiles: [liftoff]\n")
	t.Setenv("FROM_PROJECT", "project-value") // liftoff's own environment
	cp, err := LoadCompose(t.Context(), filepath.Join(dir, "docker-compose.yml"), "", os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"SECRET_KEY": "from-the-env-file", "FROM_PROJECT": "project-value", "PLAIN": "plain"}
	for _, name := range []string{"open", "gated"} {
		s, err := cp.Service(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(s.Env, want) {
			t.Errorf("%s: env = %v, want %v", name, s.Env, want)
		}
		if !s.Secret["SECRET_KEY"] || !s.Secret["FROM_PROJECT"] || s.Secret["PLAIN"] {
			t.Errorf("%s: secret = %v, want SECRET_KEY and FROM_PROJECT only", name, s.Secret)
		}
		if s.Container.Labels["team"] != "shop" {
			t.Errorf("%s: labels = %v, want team=shop from its label_file", name, s.Container.Labels)
		}
	}
}
