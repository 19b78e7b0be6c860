package deployments

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// A valid digest, for image references.
const digest = "sha256:0123456789012345678901234567890123456789012345678901234567890123"

// backupHead is head with a production environment whose backup cases
// replace.
func backupHead(backup string) string {
	return `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}]
environments:
  staging: {}
  production:
    backup:` + backup + "\n"
}

func TestReleaseBackupPromoteErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string // added to testEnv
		want []string          // each must appear in the error
	}{
		// release
		{"release null", head + "deployments:" + web + "    release:\n", nil,
			[]string{"deployments[0].release: empty: give its command"}},
		{"release tilde", head + "deployments:" + web + "    release: ~\n", nil,
			[]string{"deployments[0].release: empty: give its command"}},
		{"release empty", head + "deployments:" + web + "    release: {}\n", nil,
			[]string{"deployments[0].release.command: missing: the command to run, as a list, e.g. [python, manage.py, migrate, --noinput]"}},
		{"release timeout alone", head + "deployments:" + web + "    release: {timeout: 5m}\n", nil,
			[]string{"deployments[0].release.command: missing"}},
		{"release command empty list", head + "deployments:" + web + "    release: {command: []}\n", nil,
			[]string{"deployments[0].release.command: missing"}},
		{"release command a string", head + "deployments:" + web + "    release:\n      command: python manage.py migrate\n", nil,
			[]string{"deployments[0].release.command: cannot unmarshal !!str `python ...` into []string (line 8)"}},
		{"release a list", head + "deployments:" + web + "    release: [python, manage.py, migrate]\n", nil,
			[]string{"deployments[0].release: cannot unmarshal !!seq into deployments.Release (line 7)"}},
		{"release empty argument", head + "deployments:" + web + "    release: {command: [\"\", manage.py, \"\"]}\n", nil,
			[]string{"deployments[0].release.command[0]: empty argument", "deployments[0].release.command[2]: empty argument"}},
		{"release NUL", head + "deployments:" + web + "    release: {command: [\"FILESECRET\\0x\"]}\n", nil,
			[]string{"deployments[0].release.command[0]: contains a NUL byte"}},
		{"release timeout zero", head + "deployments:" + web + "    release: {command: [true], timeout: 0s}\n", nil,
			[]string{"deployments[0].release.timeout: must be positive, e.g. 10m (the default)"}},
		{"release timeout negative", head + "deployments:" + web + "    release: {command: [true], timeout: -1m}\n", nil,
			[]string{"deployments[0].release.timeout: must be positive"}},
		{"release timeout from a variable", head + "deployments:" + web + "    release: {command: [true], timeout: \"${T}\"}\n",
			map[string]string{"T": "FILESECRET-soon"}, []string{"deployments[0].release: cannot unmarshal !!str (value from ${VAR}) into time.Duration (line 7)"}},
		{"release timeout quoted variable", head + "deployments:" + web + "    release: {command: [true], timeout: \"${T}\"}\n",
			map[string]string{"T": "-5s"}, []string{"deployments[0].release.timeout: must be positive"}},
		{"release timeout plain variable", head + "deployments:" + web + "    release:\n      command: [true]\n      timeout: ${T}\n",
			map[string]string{"T": "0s"}, []string{"deployments[0].release.timeout: must be positive"}},
		{"release timeout not a duration", head + "deployments:" + web + "    release:\n      command: [true]\n      timeout: 10\n", nil,
			[]string{"deployments[0].release.timeout: cannot unmarshal !!int `10` into time.Duration (line 9)"}},
		{"release unknown key", head + "deployments:" + web + "    release:\n      command: [true]\n      cmd: [true]\n", nil,
			[]string{"deployments[0].release.cmd: unknown key (line 9)"}},

		// backup
		{"backup null", backupHead(""), nil, []string{"environments.production.backup: empty: give at least its command"}},
		{"backup null in flow", "environments: {production: {backup: null}}\n", nil,
			[]string{"environments.production.backup: empty"}},
		{"backup empty", backupHead(" {}"), nil,
			[]string{`environments.production.backup.command: missing: the command to run, as a list, e.g. [sh, -c, "pg_dump`}},
		{"backup without command", backupHead(" {image: postgres:16, timeout: 1h}"), nil,
			[]string{"environments.production.backup.command: missing"}},
		{"backup a list", backupHead(" [pg_dump]"), nil,
			[]string{"environments.production.backup: cannot unmarshal !!seq into deployments.Backup (line 5)"}},
		{"backup empty argument", backupHead(" {command: [pg_dump, \"\"]}"), nil,
			[]string{"environments.production.backup.command[1]: empty argument"}},
		{"backup timeout", backupHead("\n      command: [pg_dump]\n      timeout: 0s"), nil,
			[]string{"environments.production.backup.timeout: must be positive, e.g. 30m (the default)"}},
		{"backup timeout negative", backupHead("\n      command: [pg_dump]\n      timeout: -30m"), nil,
			[]string{"environments.production.backup.timeout: must be positive"}},
		{"backup unknown key", backupHead("\n      command: [pg_dump]\n      ports: [\"80:80\"]"), nil,
			[]string{"environments.production.backup.ports: unknown key (line 7)"}},
		{"backup image", backupHead("\n      command: [pg_dump]\n      image: Postgres:16"), nil,
			[]string{`environments.production.backup.image: invalid image: want a reference such as postgres:16 or ghcr.io/acme/tools@sha256:<digest>: invalid repository "Postgres:16"`}},
		{"backup image empty tag", backupHead("\n      command: [pg_dump]\n      image: \"postgres:\""), nil,
			[]string{"environments.production.backup.image: invalid image"}},
		{"backup image short digest", backupHead("\n      command: [pg_dump]\n      image: postgres@sha256:0123"), nil,
			[]string{"environments.production.backup.image: invalid image"}},
		{"backup image bad host", backupHead("\n      command: [pg_dump]\n      image: Registry/tools:1"), nil,
			[]string{"environments.production.backup.image: invalid image"}},
		{"backup image from a variable", backupHead("\n      command: [pg_dump]\n      image: \"${IMG}\""), map[string]string{"IMG": envSecret + ":x:y"},
			[]string{"environments.production.backup.image: invalid image: want a reference such as postgres:16 or ghcr.io/acme/tools@sha256:<digest> (the value comes from ${VAR} and is not shown)"}},
		{"backup env", backupHead("\n      command: [pg_dump]\n      env: {\"1BAD\": x, OK: \"FILESECRET\\0\"}"), nil,
			[]string{`environments.production.backup.env: invalid variable name "1BAD"`, "environments.production.backup.env.OK: contains a NUL byte"}},
		{"backup files", backupHead(`
      command: [pg_dump]
      env_files: [missing.env, bad.env, ""]
      secret_files: {DATABASE_URL: nope, "9": backup/database-url, EMPTY: ""}`), nil,
			[]string{"environments.production.backup.env_files[0]: stat ", "testdata/missing.env: no such file",
				"environments.production.backup.env_files[1]: ", "testdata/bad.env: line 3: variable name contains whitespace",
				"environments.production.backup.env_files[2]: missing file name",
				"environments.production.backup.secret_files.DATABASE_URL: stat ", "testdata/nope: no such file",
				`environments.production.backup.secret_files: invalid variable name "9"`,
				"environments.production.backup.secret_files.EMPTY: missing file name"}},
		{"backup file name from a variable", backupHead("\n      command: [pg_dump]\n      secret_files: {DATABASE_URL: \"${SECRET}\"}"), nil,
			[]string{"environments.production.backup.secret_files.DATABASE_URL: the file it names (from ${VAR}, not shown) cannot be used"}},
		{"backup volumes and networks", backupHead(`
      command: [pg_dump]
      volumes: ["backups:/backups", "rel/path:/c", "/d:/backups/"]
      networks: [db, db, ""]`), nil,
			[]string{`environments.production.backup.volumes[1]: "rel/path:/c": the source must be an absolute host path or a volume name`,
				`environments.production.backup.volumes[2]: mounts on "/backups" like volumes[0]`,
				"environments.production.backup.networks[1]: listed twice", "environments.production.backup.networks[2]: empty network name"}},

		// The one-off containers' names are reserved.
		{"one-off names", head + `deployments:
  - {name: web.liftoff-release, image: acme/web, tags: [a]}
  - {name: two, image: acme/web, tags: [a], container: {name: web.liftoff-backup}}
`, nil, []string{`deployments[0].name: "web.liftoff-release" ends like the containers liftoff keeps or runs during a deploy (.liftoff-prev, .liftoff-next, .liftoff-backup, .liftoff-release)`,
			`deployments[1].container.name: "web.liftoff-backup" ends like`}},

		// promote_from
		{"promote_from unknown", head + "deployments:" + web + `  - {name: web-production, image: acme/web, tags: [v1], promote_from: web-stagign}
`, nil, []string{`deployments[1].promote_from: unknown deployment "web-stagign" (have: web, web-production)`}},
		{"promote_from unknown, a name from a variable", head + `deployments:
  - {name: "${SECRET}", image: acme/web, tags: [staging]}
  - {name: web-production, image: acme/web, tags: [v1], promote_from: staging}
`, nil, []string{`deployments[1].promote_from: unknown deployment "staging" (have: web-production, 1 named by ${VAR})`}},
		{"promote_from from a variable, unknown", head + "deployments:" + web + "    promote_from: \"${SECRET}\"\n", nil,
			[]string{"deployments[0].promote_from: unknown deployment (value from ${VAR}) (have: web)"}},
		{"promote_from itself", head + "deployments:" + web + "    promote_from: web\n", nil,
			[]string{`deployments[0].promote_from: "web" is this deployment's own name: promote from another deployment`}},
		{"promote_from itself, by variable", head + "deployments:\n  - {name: \"${SECRET}\", image: acme/web, tags: [a], promote_from: \"${SECRET}\"}\n", nil,
			[]string{"deployments[0].promote_from: (value from ${VAR}) is this deployment's own name"}},
		{"promote_from itself, name by variable", head + "deployments:\n  - {name: \"${SECRET}\", image: acme/web, tags: [a], promote_from: " + envSecret + "}\n", nil,
			[]string{"deployments[0].promote_from: (value from ${VAR}) is this deployment's own name"}},
		{"promote_from itself, promote_from by variable", head + "deployments:\n  - {name: " + envSecret + ", image: acme/web, tags: [a], promote_from: \"${SECRET}\"}\n", nil,
			[]string{"deployments[0].promote_from: (value from ${VAR}) is this deployment's own name"}},
		{"promote_from not a string", head + "deployments:" + web + "    promote_from: [staging]\n", nil,
			[]string{"deployments[0].promote_from: cannot unmarshal !!seq into deployments.Promotion (line 7)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv()
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := Parse([]byte(tt.yaml), "testdata", lookupMap(env))
			if err == nil {
				t.Fatal("no error")
			}
			text := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
			noLeak(t, text)
			for _, line := range strings.Split(text, "\n") {
				if strings.HasPrefix(line, ": ") {
					t.Errorf("error without a field path: %q", line)
				}
			}
		})
	}
}

// Where yaml could not decode a release or backup at all, its error is
// the whole story: no "missing command" besides.
func TestOneOffTypeErrorAlone(t *testing.T) {
	for _, yaml := range []string{
		head + "deployments:" + web + "    release: [python, manage.py, migrate]\n",
		head + "deployments:" + web + "    release: python manage.py migrate\n",
		backupHead(" pg_dump"),
		backupHead(" [pg_dump]"),
	} {
		_, err := parseString(t, yaml)
		if err == nil {
			t.Fatalf("no error for:\n%s", yaml)
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != 1 || strings.Contains(err.Error(), "missing") {
			t.Errorf("want one error, got %d:\n%v", n, err)
		}
	}
}

func TestReleaseBackupDefaults(t *testing.T) {
	c := mustParse(t, backupHead(`
      command: [sh, -c, 'pg_dump "$DATABASE_URL" > /backups/dump.sql']
      image: postgres:16
  qa:
    backup: {command: [true], timeout: 2h}
deployments:
  - {name: aa, image: acme/web, tags: [a], environment: production, release: {command: [python, manage.py, migrate]}}
  - {name: bb, image: acme/web, tags: [b], environment: qa, release: {command: [migrate], timeout: 90s}}
  - {name: cc, image: acme/web, tags: [c], environment: staging}
`))
	check := func(when string) {
		t.Helper()
		want := Release{Command: []string{"python", "manage.py", "migrate"}, Timeout: DefaultReleaseTimeout}
		if got := c.Deployment("aa").Release; !reflect.DeepEqual(got.Command, want.Command) || got.Timeout != 10*time.Minute {
			t.Errorf("%s: a.release = %+v, want the command and 10m", when, got)
		}
		if got := c.Deployment("bb").Release; got.Timeout != 90*time.Second {
			t.Errorf("%s: b.release = %+v, want 90s", when, got)
		}
		if got := c.Deployment("cc").Release; got.Command != nil || got.Timeout != 0 {
			t.Errorf("%s: c has no release, got %+v", when, got)
		}
		b := c.Environments["production"].Backup
		if b.Timeout != 30*time.Minute || b.Image != "docker.io/library/postgres:16" {
			t.Errorf("%s: production backup = %+v, want 30m and the image normalized", when, b)
		}
		if b.Command[2] != `pg_dump "$DATABASE_URL" > /backups/dump.sql` {
			t.Errorf("%s: $VAR without braces is the container's to expand, got %q", when, b.Command[2])
		}
		if q := c.Environments["qa"].Backup; q.Timeout != 2*time.Hour || q.Image != "" {
			t.Errorf("%s: qa backup = %+v, want 2h and no image (the one that runs)", when, q)
		}
		if c.Environments["staging"].Backup != nil {
			t.Errorf("%s: staging has a backup", when)
		}
	}
	check("loaded")
	// Validate again (cmd may): the defaults and normalized image stay.
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	check("validated again")

	// Defaults also fill a release set by code.
	d := c.Deployment("cc")
	d.Release = Release{Command: []string{"migrate"}}
	if err := c.Validate(); err != nil || d.Release.Timeout != DefaultReleaseTimeout {
		t.Errorf("release set by code: %v, timeout %v", err, d.Release.Timeout)
	}
	d.Release = Release{Command: []string{"migrate"}, Timeout: -time.Second}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "deployments[2].release.timeout: must be positive") {
		t.Errorf("negative timeout set by code: %v", err)
	}
}

func TestBackupImageNormalized(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres:16", "docker.io/library/postgres:16"},
		{"postgres", "docker.io/library/postgres:latest"},
		{"library/postgres:16-alpine", "docker.io/library/postgres:16-alpine"},
		{"index.docker.io/library/postgres:16", "docker.io/library/postgres:16"},
		{"registry-1.docker.io/acme/tools:2", "docker.io/acme/tools:2"},
		{"ghcr.io/acme/tools:1.2", "ghcr.io/acme/tools:1.2"},
		{"127.0.0.1:5000/tools", "127.0.0.1:5000/tools:latest"},
		{"ghcr.io/acme/tools@" + digest, "ghcr.io/acme/tools@" + digest},
		{"postgres@" + digest, "docker.io/library/postgres@" + digest},
		// Docker pulls by the digest alone when both are given.
		{"postgres:16@" + digest, "docker.io/library/postgres@" + digest},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c := mustParse(t, backupHead(" {command: [pg_dump], image: \""+tt.in+"\"}"))
			if got := c.Environments["production"].Backup.Image; got != tt.want {
				t.Errorf("image %q → %q, want %q", tt.in, got, tt.want)
			}
			p := newProblems(nil)
			if got := normalizeRef(p, "x", tt.want); got != tt.want || p.err() != nil {
				t.Errorf("normalizing %q again: %q, %v", tt.want, got, p.err())
			}
		})
	}
	p := newProblems(nil)
	if got := normalizeRef(p, "environments.x.backup.image", "Bad Image"); got != "Bad Image" ||
		p.err() == nil || !strings.HasPrefix(p.err().Error(), "environments.x.backup.image: invalid image") {
		t.Errorf("invalid: %q, %v", got, p.err())
	}
}

// backupConfig gives production a backup with every layer, and variables
// of its own at the environment and the deployment, which the backup must
// not see.
const backupConfig = `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}]
environments:
  staging: {}
  production:
    env: {ENVIRONMENT_ONLY: x, L: environment.env}
    env_files: [base.env]
    backup:
      command: [sh, -c, 'pg_dump "$DATABASE_URL" > /backups/dump.sql']
      image: postgres:16
      env: {L: backup.env, PGDATABASE: dblood, PGUSER: "${SECRET}"}
      env_files: [backup/backup.env]
      secret_files: {L: backup/L, DATABASE_URL: backup/database-url}
      volumes: ["dblood-backups:/backups"]
      networks: [db]
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    env: {DEPLOYMENT_ONLY: x, L: deployment.env}
    secret_files: {SECRET_KEY: secret-key}
  - {name: web-staging, image: acme/web, tags: [staging], environment: staging}
  - {name: alone, image: acme/web, tags: [x]}
`

func TestBackupEnv(t *testing.T) {
	c := mustParse(t, backupConfig)
	e := c.Environments["production"]
	got, secret, err := c.BackupEnv(&e)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DATABASE_URL=postgres://dblood:FILESECRET-db-url@db.example.invalid/dblood",
		"L=backup.secret_files", // env < env_files < secret_files
		"PGDATABASE=dblood",
		"PGHOST=db.example.invalid",
		"PGPASSWORD=FILESECRET-backup-pg-password",
		"PGUSER=" + envSecret,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BackupEnv =\n%q\nwant (its own variables only)\n%q", got, want)
	}
	wantSecret := map[string]bool{"DATABASE_URL": true, "L": true, "PGHOST": true, "PGPASSWORD": true, "PGUSER": true}
	if !reflect.DeepEqual(secret, wantSecret) {
		t.Errorf("secret keys = %v, want %v (files and ${VAR}, not PGDATABASE)", secret, wantSecret)
	}

	// Drop layers from the top: each time the next one down shows through.
	b := e.Backup
	b.SecretFiles = map[string]string{"DATABASE_URL": "backup/database-url"}
	if got, _, _ := c.BackupEnv(&e); !contains(got, "L=backup.env_files") {
		t.Errorf("without secret_files.L: %q", got)
	}
	b.EnvFiles = nil
	got, secret, _ = c.BackupEnv(&e)
	if !contains(got, "L=backup.env") || secret["L"] {
		t.Errorf("without env_files: %q, secret keys %v", got, secret)
	}

	// Environments without a backup have no backup environment.
	for _, e := range []*Environment{nil, {}, new(Environment)} {
		if got, secret, err := c.BackupEnv(e); got != nil || secret != nil || err != nil {
			t.Errorf("BackupEnv(%v) = %q, %v, %v", e, got, secret, err)
		}
	}
	stg := c.Environments["staging"]
	if got, secret, err := c.BackupEnv(&stg); got != nil || secret != nil || err != nil {
		t.Errorf("staging: %q, %v, %v", got, secret, err)
	}
}

// Relative file names of a backup resolve against the config file's
// directory, like every other; files are read at each call, and an
// unreadable one is an error naming the field and the file, never a value.
func TestBackupEnvFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "backup.env", "PGHOST=db1\n")
	write(t, dir, "db-url", "FILESECRET-url-1\n")
	write(t, dir, "liftoff.yaml", backupHead(`
      command: [pg_dump]
      env_files: [backup.env]
      secret_files: {DATABASE_URL: db-url}`))
	c, err := Load(dir+"/liftoff.yaml", lookupMap(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Environments["production"]
	if got, _, err := c.BackupEnv(&e); err != nil || !reflect.DeepEqual(got, []string{"DATABASE_URL=FILESECRET-url-1", "PGHOST=db1"}) {
		t.Errorf("BackupEnv = %q, %v", got, err)
	}
	write(t, dir, "backup.env", "PGHOST=db2\n")
	write(t, dir, "db-url", "FILESECRET-url-2\n")
	if got, _, err := c.BackupEnv(&e); err != nil || !reflect.DeepEqual(got, []string{"DATABASE_URL=FILESECRET-url-2", "PGHOST=db2"}) {
		t.Errorf("after editing the files: %q, %v", got, err)
	}

	write(t, dir, "backup.env", "PGHOST=FILESECRET\nBAD KEY=FILESECRET\n")
	remove(t, dir, "db-url")
	got, secret, err := c.BackupEnv(&e)
	if err == nil {
		t.Fatal("no error")
	}
	if got != nil || secret != nil {
		t.Errorf("an error and an environment: %q, %v", got, secret)
	}
	for _, w := range []string{
		"environments.production.backup.env_files[0]: " + dir + "/backup.env: line 2: variable name contains whitespace",
		"environments.production.backup.secret_files.DATABASE_URL: stat " + dir + "/db-url: no such file",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	noLeak(t, err.Error())
}

func TestBackupFor(t *testing.T) {
	c := mustParse(t, backupConfig)
	if b := c.BackupFor(c.Deployment("web")); b == nil || b != c.Environments["production"].Backup {
		t.Errorf("web: %p, want the config's own %p", b, c.Environments["production"].Backup)
	}
	unknown := Deployment{Name: "x", Environment: "nope"}
	for name, d := range map[string]*Deployment{
		"nil deployment":          nil,
		"no environment":          c.Deployment("alone"),
		"environment, no backup":  c.Deployment("web-staging"),
		"unknown environment":     &unknown,
		"no environment, by code": {Name: "y"},
	} {
		if b := c.BackupFor(d); b != nil {
			t.Errorf("%s: %+v", name, b)
		}
	}
	// A backup without a command is no backup (Validate refuses it).
	c.Environments["staging"] = Environment{Backup: &Backup{Image: "docker.io/library/postgres:16"}}
	if b := c.BackupFor(c.Deployment("web-staging")); b != nil {
		t.Errorf("a backup without command: %+v", b)
	}
}

// The README and ARCHITECTURE promise release and backup keep errors free
// of secrets: a config full of them, all broken, says where, not what.
func TestOneOffErrorsHideSecrets(t *testing.T) {
	_, err := parseString(t, backupHead(`
      command: ["${SECRET}", ""]
      image: "${SECRET}:x:y"
      env: {"${SECRET}": x, K: "${SECRET}"}
      env_files: ["${SECRET}"]
      secret_files: {K: "${SECRET}"}
      volumes: ["${SECRET}"]
      timeout: ${SECRET}
deployments:
  - name: web
    image: acme/web
    tags: [x]
    environment: production
    promote_from: "${SECRET}"
    release: {command: ["${SECRET}", ""], timeout: "${SECRET}"}`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"backup.command[1]", "backup.image", "backup.env_files[0]", "backup.secret_files.K",
		"backup.volumes[0]", "backup.timeout", "deployments[0].promote_from", "deployments[0].release.command[1]", "deployments[0].release: cannot unmarshal"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("no error for %s in:\n%v", w, err)
		}
	}
	noLeak(t, err.Error())
}
