package deployments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	env := lookupMap(map[string]string{"A": "alpha", "EMPTY": "", "X": "${A}"})
	tests := []struct {
		in, want string
		used     bool
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha", used: true},
		{in: "pre-${A}-post", want: "pre-alpha-post", used: true},
		{in: "${A}${A}", want: "alphaalpha", used: true},
		{in: "${X}", want: "${A}", used: true}, // values are not expanded again
		{in: "${UNSET:-dflt}", want: "dflt", used: true},
		{in: "${EMPTY:-dflt}", want: "dflt", used: true}, // :- as in the shell: unset or empty
		{in: "${EMPTY}", want: "", used: true},
		{in: "${A:-dflt}", want: "alpha", used: true},
		{in: "${UNSET:-}", want: "", used: true},
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "cost: $$5", want: "cost: $5"},
		{in: `\.staging$`, want: `\.staging$`}, // a lone $ stays
		{in: "$A", want: "$A"},
		{in: "a$", want: "a$"},
		{in: "${UNSET}", err: "${UNSET} is not set"},
		{in: "${U1}-${U2}", err: "${U1}, ${U2} are not set"},
		{in: "${A", err: "unterminated ${"},
		{in: "${}", err: "needs a variable name"},
		{in: "${1A}", err: "needs a variable name"},
		{in: "${A:?err}", err: "needs a variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, used, err := expand(tt.in, env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want || used != tt.used {
				t.Fatalf("expand(%q) = %q, %v, %v; want %q, %v", tt.in, got, used, err, tt.want, tt.used)
			}
		})
	}
}

func TestLoadExpansion(t *testing.T) {
	c := mustParse(t, head+`
deployments:
  - name: web
    image: ${IMAGE:-acme/web}
    tags: ["${TAG:-latest}"]
    env: {SECRET: "${SECRET}", LITERAL: "$$HOME", REGEX: 'x$', DEFAULTED: "${NOPE:-plain}"}
    container:
      replace_unmanaged: ${REPLACE:-true}
    stop_timeout: ${STOP:-45s}
`)
	d := c.Deployment("web")
	if d.Image != "docker.io/acme/web" || !reflect.DeepEqual(d.Tags, []string{"latest"}) {
		t.Errorf("image/tags = %q %q", d.Image, d.Tags)
	}
	want := map[string]string{"SECRET": envSecret, "LITERAL": "$HOME", "REGEX": "x$", "DEFAULTED": "plain"}
	if !reflect.DeepEqual(d.Env, want) {
		t.Errorf("env = %v, want %v", d.Env, want)
	}
	if !d.Container.ReplaceUnmanaged || d.StopTimeout != 45*time.Second {
		t.Errorf("a plain ${VAR} must resolve as if written: replace_unmanaged=%v stop_timeout=%v", d.Container.ReplaceUnmanaged, d.StopTimeout)
	}
	// The expanded token authenticates, and only its hash is kept.
	if !c.HookAuth("dockerhub", hookToken) || c.Hooks[0].Token != "" {
		t.Errorf("token: auth %v, kept in memory as %q", c.HookAuth("dockerhub", hookToken), c.Hooks[0].Token)
	}
	if err := c.Validate(); err != nil || !c.HookAuth("dockerhub", hookToken) {
		t.Errorf("validating a loaded config again: %v, auth %v", err, c.HookAuth("dockerhub", hookToken))
	}
	// Values written with ${VAR} are secrets, literal ones are not.
	sk := c.SecretKeys(d)
	if !sk["SECRET"] || !sk["DEFAULTED"] || sk["LITERAL"] || sk["REGEX"] {
		t.Errorf("SecretKeys = %v", sk)
	}
}

// A quoted ${VAR} stays a string, whatever its value looks like.
func TestLoadExpansionQuoted(t *testing.T) {
	c, err := Parse([]byte(head+`
deployments:
  - name: web
    image: acme/web
    tags: ["x"]
    env: {N: "${NUM}", B: '${BOOL}'}
`), "testdata", lookupMap(map[string]string{"HOOK_TOKEN": hookToken, "NUM": "010", "BOOL": "yes"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Deployments[0].Env; got["N"] != "010" || got["B"] != "yes" {
		t.Errorf("env = %v", got)
	}
}

// Anchors and merge keys keep the ${VAR} marks of what they copy.
func TestLoadAliasesKeepSecrets(t *testing.T) {
	c := mustParse(t, head+`
deployments:
  - name: one
    image: acme/web
    tags: ["a"]
    env: &common {TOKEN: "${SECRET}", PLAIN: "p", DOLLAR: "$$x"}
  - name: two
    image: acme/web
    tags: ["b"]
    env: *common
  - name: three
    image: acme/web
    tags: ["c"]
    env:
      <<: *common
      OWN: own
`)
	for _, name := range []string{"one", "two", "three"} {
		d := c.Deployment(name)
		if d.Env["TOKEN"] != envSecret || d.Env["DOLLAR"] != "$x" {
			t.Errorf("%s: env = %v (expanded once, $$ once)", name, d.Env)
		}
		sk := c.SecretKeys(d)
		if !sk["TOKEN"] || sk["PLAIN"] || sk["OWN"] {
			t.Errorf("%s: SecretKeys = %v", name, sk)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	c := mustParse(t, head+`
registries:
  registry-1.docker.io: {mirror: "127.0.0.1:5000"}
deployments:
  - name: web
    image: acme/web
    tags: [latest]
`)
	d := c.Deployment("web")
	if c.Listen != "127.0.0.1:8080" || d.ContainerName() != "web" || d.Container.Name != "web" || d.StopTimeout != 10*time.Second {
		t.Errorf("defaults: listen %q container %q stop %v", c.Listen, d.Container.Name, d.StopTimeout)
	}
	if d.Strategy != StopFirst || d.Health.Timeout != 60*time.Second || d.Health.MinUptime != 3*time.Second || d.Health.Cmd != nil || d.Health.Interval != 0 {
		t.Errorf("defaults: strategy %q health %+v", d.Strategy, d.Health)
	}
	if _, ok := c.Registries["docker.io"]; !ok || len(c.Registries) != 1 {
		t.Errorf("registries not normalized: %v", c.Registries)
	}
	if d := Default(); d.Listen != "127.0.0.1:8080" || d.Validate() != nil {
		t.Errorf("Default() = %+v, Validate = %v", d, d.Validate())
	}
}

func TestValidFixture(t *testing.T) {
	env := testEnv()
	c, err := Load("testdata/valid.yaml", lookupMap(env))
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}
	if len(c.Deployments) != 3 || c.Listen != "127.0.0.1:9090" {
		t.Fatalf("loaded %+v", c)
	}
	d := c.Deployment("web-prod")
	if d.Env["PRICE"] != "$5" || d.Env["SENTRY_DSN"] != "none" || !d.Container.ReplaceUnmanaged || d.StopTimeout != 30*time.Second {
		t.Errorf("web-prod = %+v", d)
	}
	if n := c.Deployment("nginx"); n.Image != "docker.io/library/nginx" {
		t.Errorf("nginx image = %q", n.Image)
	}
	if got := c.Deployment("web-staging").ContainerName(); got != "web-stage" {
		t.Errorf("ContainerName = %q", got)
	}
	if r := d.Release; !reflect.DeepEqual(r.Command, []string{"python", "manage.py", "migrate", "--noinput"}) || r.Timeout != 5*time.Minute || d.PromoteFrom.Deployment != "web-staging" {
		t.Errorf("web-prod: release %+v, promote_from %q", r, d.PromoteFrom.Deployment)
	}
	if r := c.Deployment("web-staging").Release; len(r.Command) != 4 || r.Timeout != DefaultReleaseTimeout {
		t.Errorf("web-staging: release %+v", r)
	}
	b := c.BackupFor(d)
	if b == nil || b.Image != "docker.io/library/postgres:16" || b.Timeout != 45*time.Minute || b.Command[2] != `pg_dump "$DATABASE_URL" > /backups/dump-$(date +%s).sql` {
		t.Fatalf("backup = %+v", b)
	}
	prod := c.Environments["production"]
	benv, secret, err := c.BackupEnv(&prod)
	if err != nil || !contains(benv, "PGUSER=dblood") || !contains(benv, "L=backup.secret_files") || !secret["PGUSER"] || !secret["DATABASE_URL"] {
		t.Errorf("BackupEnv = %q, %v, %v", benv, secret, err)
	}
	if c.Deployment("nope") != nil {
		t.Error("Deployment(nope) != nil")
	}
	// Validate is idempotent: cmd may call it again on a loaded config.
	if err := c.Validate(); err != nil {
		t.Errorf("second Validate: %v", err)
	}
	if got := c.Match("docker.io/acme/web", "v7"); len(got.Accepted) != 1 || got.Accepted[0].Name != "web-prod" {
		t.Errorf("Match after revalidation = %+v", got)
	}
}

func TestExampleLoads(t *testing.T) {
	c, err := Load(exampleYAML, lookupMap(map[string]string{"LIFTOFF_HOOK_TOKEN": hookToken}))
	if err != nil {
		t.Fatalf("example.yaml:\n%v", err)
	}
	if w := c.ValidatePolicies(); len(w) != 0 {
		t.Errorf("example.yaml has policy warnings: %q", w)
	}
	for _, d := range c.Deployments {
		env, err := c.Env(&d, []string{"PATH=/usr/local/bin:/usr/bin"})
		if err != nil {
			t.Fatalf("%s: Env: %v", d.Name, err)
		}
		if err := c.CheckPolicy(&d, env); err != nil {
			t.Errorf("%s: CheckPolicy: %v", d.Name, err)
		}
	}
	prod := c.Match("docker.io/acme/dblood", "v1.4.2")
	if len(prod.Accepted) != 1 || prod.Accepted[0].Name != "dblood-production" {
		t.Errorf("v1.4.2 → %+v", prod)
	}
	stg := c.Match("docker.io/acme/dblood-dev", "staging")
	if len(stg.Accepted) != 1 || stg.Accepted[0].Name != "dblood-staging" {
		t.Errorf("staging → %+v", stg)
	}
	// Both deployments migrate; production backs up first, and takes only
	// what staging proved.
	migrate := []string{"python", "manage.py", "migrate", "--noinput"}
	for _, name := range []string{"dblood-staging", "dblood-production"} {
		if r := c.Deployment(name).Release; !reflect.DeepEqual(r.Command, migrate) || r.Timeout <= 0 {
			t.Errorf("%s: release %+v", name, r)
		}
	}
	if p := c.Deployment("dblood-production").PromoteFrom; p.Deployment != "dblood-staging" || !p.ByRevision() {
		t.Errorf("production promote_from %+v, want dblood-staging by revision (two images, one commit)", p)
	}
	if got := c.Match("docker.io/acme/dblood", "staging"); len(got.Accepted) != 0 {
		t.Errorf("acme/dblood:staging deploys %+v: staging runs the dev image", got.Accepted)
	}
	if c.Deployment("dblood-staging").PromoteFrom.Deployment != "" || c.BackupFor(c.Deployment("dblood-staging")) != nil {
		t.Error("staging promotes from something, or has a backup")
	}
	b := c.BackupFor(c.Deployment("dblood-production"))
	if b == nil || b.Image != "docker.io/library/postgres:16" || !reflect.DeepEqual(b.Volumes, []string{"dblood-backups:/backups"}) ||
		b.Timeout <= 0 || len(b.Command) != 3 || !strings.Contains(b.Command[2], `pg_dump`) ||
		!strings.Contains(b.Command[2], `"$DATABASE_URL"`) || !strings.Contains(b.Command[2], "$(date") {
		t.Errorf("production backup = %+v", b)
	}
	prodEnv := c.Environments["production"]
	benv, secret, err := c.BackupEnv(&prodEnv)
	if err != nil || len(benv) != 1 || !strings.HasPrefix(benv[0], "DATABASE_URL=postgres://") || !secret["DATABASE_URL"] {
		t.Errorf("production BackupEnv = %q, %v, %v", benv, secret, err)
	}
	// The app and its backup read the same database URL.
	appEnv, _ := c.Env(c.Deployment("dblood-production"), nil)
	if len(benv) == 1 && !contains(appEnv, benv[0]) {
		t.Errorf("the backup's %q is not the app's", benv[0])
	}

	// The API block is commented out: the quick start needs no API token,
	// and production pushes deploy without an approval nobody could give.
	if req, _ := c.Approval(c.Deployment("dblood-production")); req || c.APIEnabled() {
		t.Errorf("example.yaml: approval %v, API enabled %v", req, c.APIEnabled())
	}
	// The quick start sets nothing but the token.
	if _, err := Load(exampleYAML, lookupMap(nil)); err == nil || !strings.Contains(err.Error(), "hooks[0].token: ${LIFTOFF_HOOK_TOKEN} is not set") {
		t.Errorf("without the token: %v", err)
	}
}

// The API block example.yaml leaves commented out is valid once
// uncommented, with its variables set.
func TestExampleAPIBlock(t *testing.T) {
	data, err := os.ReadFile(exampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`^(\s*)# ((?:api_listen|api_tokens|approval):.*)$`)
	lines := strings.Split(string(data), "\n")
	uncommented, inList := 0, false
	for i, line := range lines {
		switch {
		case key.MatchString(line):
			lines[i] = key.ReplaceAllString(line, "$1$2")
			inList = strings.HasPrefix(lines[i], "api_tokens:")
		case inList && strings.HasPrefix(line, "#   "):
			lines[i] = line[2:] // the items of api_tokens
		default:
			inList = false
			continue
		}
		uncommented++
	}
	if uncommented < 9 {
		t.Fatalf("found %d lines of the API block to uncomment:\n%s", uncommented, strings.Join(lines, "\n"))
	}
	env := map[string]string{"LIFTOFF_HOOK_TOKEN": hookToken, "LIFTOFF_CI_TOKEN": ciToken, "LIFTOFF_LEAD_TOKEN": leadToken}
	c, err := Parse([]byte(strings.Join(lines, "\n")), exampleDir, lookupMap(env))
	if err != nil {
		t.Fatalf("example.yaml with the API block:\n%v", err)
	}
	if c.APIListen == "" || !c.APIEnabled() {
		t.Errorf("api_listen %q, API enabled %v", c.APIListen, c.APIEnabled())
	}
	lead, ok := c.APIAuth(leadToken)
	if !ok || !lead.Can(VerbApprove, "production") || !lead.Can(VerbDeploy, "production") || !lead.Can(VerbRead, "") {
		t.Errorf("lead = %+v, %v", lead, ok)
	}
	ci, ok := c.APIAuth(ciToken)
	if !ok || !ci.Can(VerbDeploy, "staging") || ci.Can(VerbDeploy, "production") || ci.Can(VerbApprove, "production") {
		t.Errorf("ci = %+v, %v", ci, ok)
	}
	if req, timeout := c.Approval(c.Deployment("dblood-production")); !req || timeout != 24*time.Hour {
		t.Errorf("production approval: %v, %v", req, timeout)
	}
	if req, _ := c.Approval(c.Deployment("dblood-staging")); req {
		t.Error("staging requires approval")
	}
	noLeak(t, fmt.Sprintf("%+v", c))
}

func TestLoadFileErrors(t *testing.T) {
	if _, err := Load("testdata/does-not-exist.yaml", nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	tests := []struct{ name, data, want string }{
		{"empty", "", "empty"},
		{"blank", "\n  \n", "empty"},
		{"comments only", "# nothing\n", "empty"},
		{"null document", "---\n~\n", "empty"},
		{"two documents", head + "---\nlisten: :1\n", "more than one YAML document"},
		{"not a mapping", "- a\n- b\n", "must be a mapping"},
		{"syntax", "listen: [\n", "yaml"},
		{"tabs", "listen:\t:80\nhooks:\n\t- x\n", "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), "", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) = %v, want %q", tt.data, err, tt.want)
			}
		})
	}
}

// Relative paths resolve against the config file's directory, wherever
// liftoff runs from.
func TestLoadRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.env"), []byte("FROM_FILE=yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "liftoff.yaml")
	if err := os.WriteFile(cfg, []byte(head+`
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    env_files: [app.env]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfg, lookupMap(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	env, err := c.Env(c.Deployment("web"), nil)
	if err != nil || !reflect.DeepEqual(env, []string{"FROM_FILE=yes"}) {
		t.Errorf("Env = %q, %v", env, err)
	}
}

func TestHealthDefaults(t *testing.T) {
	c := mustParse(t, head+"deployments:"+web+"    strategy: stop-first\n")
	d := c.Deployment("web")
	d.Health = Health{Cmd: []string{"curl", "-f", "http://localhost/"}, URL: "http://{container}:8000/healthz"}
	d.Strategy = ""
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Health{Cmd: []string{"CMD", "curl", "-f", "http://localhost/"}, URL: "http://{container}:8000/healthz",
		Timeout: 60 * time.Second, MinUptime: 3 * time.Second, Interval: 2 * time.Second, Retries: 3}
	if !reflect.DeepEqual(d.Health, want) || d.Strategy != StopFirst {
		t.Errorf("health = %+v, strategy %q", d.Health, d.Strategy)
	}
	if err := c.Validate(); err != nil || len(d.Health.Cmd) != 4 {
		t.Errorf("not idempotent: %v %q", err, d.Health.Cmd)
	}
}

// A config nested thousands of levels deep is refused at the 65th level;
// before, the loader built a field path at every level, which took time
// that grew with the square of the depth (80 ms at 10,000 levels).
func TestLoadRefusesDeepNesting(t *testing.T) {
	const n = 10_000
	var block strings.Builder
	block.WriteString("environments:\n")
	for i := range 600 {
		block.WriteString(strings.Repeat(" ", i+1) + "k:\n")
	}
	for _, tc := range []struct{ name, data string }{
		{"flow sequences", "deployments: " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"},
		{"flow mappings", "deployments: " + strings.Repeat("{a: ", n) + "b" + strings.Repeat("}", n) + "\n"},
		{"block mappings", block.String()},
	} {
		_, err := Parse([]byte(tc.data), "", nil)
		if err == nil || !strings.Contains(err.Error(), "nests deeper than 64 levels") {
			t.Errorf("%s: err = %.200v", tc.name, err)
		}
	}
	// The deepest path liftoff reads still loads.
	deep := head + "deployments:\n  - name: web\n    image: acme/web\n    tags: [x]\n    processes:\n      web:\n        container:\n          logging:\n            driver: json-file\n            options:\n              max-size: 20m\n"
	if _, err := Parse([]byte(deep), "", lookupMap(testEnv())); err != nil {
		t.Errorf("a deep but valid config: %v", err)
	}
}
