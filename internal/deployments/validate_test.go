package deployments

import (
	"errors"
	"strings"
	"testing"
)

// web is a valid deployment that cases extend or break.
const web = `
  - name: web
    image: acme/web
    tags: [latest]
`

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string // added to testEnv; a "-" value unsets
		want []string          // each must appear in the error
	}{
		{"unset variable", `hooks: [{source: dockerhub, token: "${LIFTOFF_HOOK_TOKEN}"}]`, nil,
			[]string{"hooks[0].token: ${LIFTOFF_HOOK_TOKEN} is not set"}},
		{"unset variable deep", head + "deployments:\n  - name: web\n    image: acme/web\n    tags: [\"${NOPE}\"]\n", nil,
			[]string{"deployments[0].tags[0]: ${NOPE} is not set"}},
		{"unknown key", head + "deployments:" + web + "    helth: {}\n", nil,
			[]string{`deployments[0].helth: unknown key (line 7)`}},
		{"unknown top key", head + "lisen: :80\n", nil, []string{`lisen: unknown key (line 3)`}},
		{"unknown key in flow", head + "deployments:\n  - {name: web, image: acme/web, tags: [x], imge: y}\n", nil,
			[]string{`deployments[0]: unknown key "imge"`}},
		{"two yaml errors on a line", head + "deployments:\n  - {name: web, imge: y, image: acme/web, tags: [x, [y]]}\n", nil,
			[]string{`deployments[0]: unknown key "imge" (line 4)`, "deployments[0]: cannot unmarshal !!seq into string (line 4)"}},
		{"type error", head + "deployments:" + web + "    stop_timeout: 10\n", nil,
			[]string{"deployments[0].stop_timeout: cannot unmarshal !!int `10` into time.Duration (line 7)"}},
		{"duplicate key", head + "listen: :1\nlisten: :2\n", nil, []string{"listen: mapping key \"listen\" already defined at line 3"}},
		{"listen", head + "listen: localhost\n", nil, []string{"listen: want [host]:port"}},
		{"docker_host", head + "docker_host: /var/run/docker.sock\n", nil, []string{"docker_host: want scheme://address"}},

		{"listener and TLS settings", head + `
metrics_listen: "nonsense"
tls_cert: a.pem
hook_rate_limit: -5
`, nil, []string{"metrics_listen: want [host]:port", "tls_cert: tls_cert and tls_key go together", "hook_rate_limit: want requests a minute"}},
		{"TLS files that do not load", head + `
tls_cert: missing.pem
tls_key: missing.key
`, nil, []string{"tls_cert: cannot load the certificate and key"}},
		{"metrics on the hooks address", head + `
listen: 127.0.0.1:8080
metrics_listen: 127.0.0.1:8080
`, nil, []string{"metrics_listen: is the same address as listen"}},
		{"health and strategy contents", head + `deployments:
  - name: web
    image: acme/web
    tags: [x]
    strategy: blue-green
    health: {url: "ftp://x", timeout: 5s, min_uptime: 10s, interval: -1s, retries: -1, cmd: ["CMD"], bogus: 1}
  - name: web2
    image: acme/web
    tags: [x]
    strategy: start-first
    container: {ports: ["8080:80"]}
`, nil, []string{`deployments[0].strategy: unknown strategy "blue-green"`, `deployments[0].health: unknown key "bogus" (line 8)`,
			`deployments[0].health.url: "ftp://x": want an http(s) URL`, "deployments[0].health.min_uptime: longer than timeout (5s)",
			"deployments[0].health.interval: must be positive", "deployments[0].health.retries: must be positive",
			"deployments[0].health.cmd: CMD needs a command after it", "deployments[1].strategy: start-first runs two containers at once, so it cannot publish ports"}},

		{"hook source unknown", `hooks: [{source: gitlab, token: "${HOOK_TOKEN}"}]`, nil,
			[]string{`hooks[0].source: unknown source "gitlab" (supported: dockerhub, ghcr, distribution, harbor, quay, ecr, gar, generic)`}},
		{"hook secret missing", `hooks: [{source: ghcr, token: "${HOOK_TOKEN}"}, {source: generic, token: "${HOOK_TOKEN}"}]`, nil,
			[]string{"hooks[0].secret: missing: ghcr signs every delivery", "hooks[1].secret: missing: generic signs every delivery"}},
		{"hook secret short", `hooks: [{source: ghcr, token: "${HOOK_TOKEN}", secret: "${SHORT}"}]`, map[string]string{"SHORT": "FILESECRET-short"},
			[]string{"hooks[0].secret: too short: at least 24 characters"}},
		{"hook secret unsigned source", `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}", secret: "${HOOK_TOKEN}"}]`, nil,
			[]string{"hooks[0].secret: dockerhub does not sign its deliveries: only ghcr and generic take a secret"}},
		{"hook auth_header source", `hooks: [{source: quay, token: "${HOOK_TOKEN}", auth_header: "Bearer ${HOOK_TOKEN}"}]`, nil,
			[]string{"hooks[0].auth_header: quay cannot send an Authorization header: only distribution, harbor, ecr take auth_header"}},
		{"hook auth_header short", `hooks: [{source: harbor, token: "${HOOK_TOKEN}", auth_header: "${SHORT}"}]`, map[string]string{"SHORT": "FILESECRET-short"},
			[]string{"hooks[0].auth_header: too short"}},
		{"hook auth_header unsafe", `hooks: [{source: ecr, token: "${HOOK_TOKEN}", auth_header: "Bearer FILESECRET\x01-0123456789abcdef"}]`, nil,
			[]string{"hooks[0].auth_header: must be printable ASCII"}},
		{"hook source missing", `hooks: [{token: "${HOOK_TOKEN}"}]`, nil, []string{"hooks[0].source: missing"}},
		{"hook source duplicate", `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}, {source: dockerhub, token: "${HOOK_TOKEN}"}]`, nil,
			[]string{"hooks[1].source: duplicate of hooks[0]"}},
		{"hook token short", `hooks: [{source: dockerhub, token: "${SHORT}"}]`, map[string]string{"SHORT": "FILESECRET-short"},
			[]string{"hooks[0].token: too short: at least 24 characters"}},
		{"hook token literal short", `hooks: [{source: dockerhub, token: FILESECRET-lit}]`, nil,
			[]string{"hooks[0].token: too short"}},
		{"hook token missing", `hooks: [{source: dockerhub}]`, nil, []string{"hooks[0].token: missing"}},
		{"hook token unsafe", `hooks: [{source: dockerhub, token: "FILESECRET/0123456789abcdefghij"}]`, nil,
			[]string{"hooks[0].token: must be printable ASCII without '/'"}},

		{"registry key", head + "registries: {myregistry: {}}\n", nil, []string{"registries.myregistry: not a registry host"}},
		{"registry duplicate", head + "registries: {docker.io: {}, index.docker.io: {}}\n", nil,
			[]string{"registries.index.docker.io: the same registry as registries.docker.io"}},
		{"mirror", head + `registries: {docker.io: {mirror: "ftp://m:21"}, ghcr.io: {mirror: "http://m:5000/v2/"}, quay.io: {mirror: "cache"}}`, nil,
			[]string{`registries.docker.io.mirror: want host[:port] or http(s)://host[:port]: scheme "ftp"`,
				"registries.ghcr.io.mirror: want host[:port] or http(s)://host[:port]: only scheme://host[:port]",
				"registries.quay.io.mirror: want host[:port] or http(s)://host[:port]: not a registry host"}},
		{"password_file missing", head + "registries: {docker.io: {username: ci, password_file: nope}}\n", nil,
			[]string{"registries.docker.io.password_file: stat ", "testdata/nope: no such file"}},
		{"credentials half", head + "registries: {docker.io: {username: ci}}\n", nil,
			[]string{"registries.docker.io: username and password_file go together"}},

		{"environment unknown", head + "deployments:" + web + "    environment: prod\n", nil,
			[]string{`deployments[0].environment: unknown environment "prod" (have: production, staging)`}},
		{"environment none", "deployments:" + web + "    environment: prod\n", nil,
			[]string{`deployments[0].environment: unknown environment "prod" (have: none)`}},
		{"environment name", "environments: {\"bad name\": {}}\n", nil, []string{`environments.bad name: invalid environment name "bad name"`}},

		{"duplicate name", head + "deployments:" + web + web + web, nil,
			[]string{"deployments[1].name: duplicate of deployments[0]", "deployments[2].name: duplicate of deployments[0]"}},
		{"bad names", head + `deployments:
  - {name: "-web", image: acme/web, tags: [a]}
  - {name: "w", image: acme/web, tags: [a]}
  - {name: "has space", image: acme/web, tags: [a]}
  - {name: "web.liftoff-prev", image: acme/web, tags: [a]}
  - {image: acme/web, tags: [a]}
`, nil, []string{`deployments[0].name: invalid name "-web"`, `deployments[1].name: invalid name "w"`,
			`deployments[2].name: invalid name "has space"`, `deployments[3].name: "web.liftoff-prev" ends like`, "deployments[4].name: missing"}},
		{"container names", head + `deployments:
  - {name: one, image: acme/web, tags: [a], container: {name: x1}}
  - {name: two, image: acme/web, tags: [a], container: {name: x1}}
  - {name: x1, image: acme/web, tags: [a]}
  - {name: four, image: acme/web, tags: [a], container: {name: "/x"}}
  - {name: five, image: acme/web, tags: [a], container: {name: "x.liftoff-next"}}
`, nil, []string{`deployments[1].container.name: "x1" is also the container of deployments[0]`,
			`deployments[2].container.name: "x1" is also the container of deployments[0]`,
			`deployments[3].container.name: invalid container name "/x"`,
			`deployments[4].container.name: "x.liftoff-next" ends like`}},

		{"image", head + `deployments:
  - {name: a1, image: "acme/web:latest", tags: [a]}
  - {name: a2, image: "acme/web@sha256:0123456789012345678901234567890123456789012345678901234567890123", tags: [a]}
  - {name: a3, image: "Acme/Web", tags: [a]}
  - {name: a4, tags: [a]}
  - {name: a5, image: "acme//web", tags: [a]}
  - {name: a6, image: "acme/../web", tags: [a]}
`, nil, []string{`deployments[0].image: "acme/web:latest" has a tag: put "latest" in tags`,
			`deployments[1].image: "acme/web@sha256:0123456789012345678901234567890123456789012345678901234567890123" has a digest`,
			`deployments[2].image: invalid image: invalid repository "Acme/Web"`, "deployments[3].image: missing",
			`deployments[4].image: invalid image`, `deployments[5].image: invalid image`}},
		{"image too long", head + "deployments:\n  - {name: a1, image: \"acme/" + strings.Repeat("w", 260) + "\", tags: [a]}\n", nil,
			[]string{"deployments[0].image: invalid image"}},

		{"no tags", head + "deployments:\n  - {name: web, image: acme/web}\n  - {name: web2, image: acme/web, tags: []}\n", nil,
			[]string{"deployments[0].tags: no tag rules", "deployments[1].tags: no tag rules"}},
		{"tag rules", head + `deployments:
  - name: web
    image: acme/web
    tags: [ok, "semver:^foo", "glob:release-[", "regexp:(", "bad tag", "semver:", "foo:bar", ".dot"]
`, nil, []string{`deployments[0].tags[1]: invalid semver constraint "^foo"`, `deployments[0].tags[2]: invalid glob "release-["`,
			`deployments[0].tags[3]: invalid regexp "("`, `deployments[0].tags[4]: invalid tag "bad tag"`,
			`deployments[0].tags[5]: "semver:": nothing after "semver:"`, `deployments[0].tags[6]: unknown rule "foo:"`,
			`deployments[0].tags[7]: invalid tag ".dot"`}},

		{"env keys", `environments:
  production:
    env: {"1BAD": x, "OK": y, "WITH-DASH": z}
    require: [SECRET_KEY, "not ok"]
    forbid: {"BAD KEY": [x], EMPTY: []}
    forbid_patterns: {DEBUG: ["(", "ok"], "K-": [x]}
deployments:
  - name: web
    image: acme/web
    tags: [x]
    environment: production
    env: {"a.b": "FILESECRET-v"}
    secret_files: {"9": secret-key}
`, nil, []string{`environments.production.env: invalid variable name "1BAD"`, `environments.production.env: invalid variable name "WITH-DASH"`,
			`environments.production.require[1]: invalid variable name "not ok"`, `environments.production.forbid: invalid variable name "BAD KEY"`,
			`environments.production.forbid.EMPTY: no values`, `environments.production.forbid_patterns.DEBUG[0]: invalid regexp: error parsing regexp`,
			`environments.production.forbid_patterns: invalid variable name "K-"`,
			`deployments[0].env: invalid variable name "a.b"`, `deployments[0].secret_files: invalid variable name "9"`}},
		{"env value NUL", head + "deployments:" + web + "    env: {K: \"FILESECRET\\0x\"}\n", nil,
			[]string{"deployments[0].env.K: contains a NUL byte"}},

		{"files", `environments:
  production: {env_files: [missing.env, bad.env, ""]}
deployments:
  - name: web
    image: acme/web
    tags: [x]
    env_files: [/nonexistent/abs.env]
    secret_files: {A: nope, B: ""}
`, nil, []string{"environments.production.env_files[0]: stat ", "testdata/missing.env: no such file",
			"environments.production.env_files[1]: ", "testdata/bad.env: line 3: variable name contains whitespace",
			"bad.env: line 3: variable name contains whitespace; line 5: no variable name before =",
			"environments.production.env_files[2]: missing file name",
			"deployments[0].env_files[0]: stat /nonexistent/abs.env",
			"deployments[0].secret_files.A: stat ", "deployments[0].secret_files.B: missing file name"}},

		{"container spec", head + `deployments:
  - name: web
    image: acme/web
    tags: [x]
    container:
      ports: ["8000", "127.0.0.1:8001:8000", "1.2.3.4.5:80:80", "80:80/icmp", "x:80", "70000:80", "8000-8001:9000-9005", "0.0.0.0::0"]
      volumes: ["/data", "/a:/b", "rel/path:/c", "/d:relative", "/e:/", "/f:/g:ro,rw", "/h:/i:bogus", "/j:/b/", "vol:/k:ro,Z", "a:b:c:d"]
      aliases: [web]
      restart: sometimes
      labels: {liftoff.managed: "false"}
  - name: web2
    image: acme/web
    tags: [x]
    container:
      ports: ["8001:8000", "127.0.0.2:8001:8000/udp"]
      networks: [web, web, ""]
      restart: "on-failure:x"
    stop_timeout: -1s
    min_image_age: -10m
`, nil, []string{"deployments[0].container.ports[2]: want [ip:][hostPort:]containerPort[/tcp|udp|sctp]: invalid IP address: 1.2.3.4.5",
			"deployments[0].container.ports[3]: want [ip:][hostPort:]containerPort[/tcp|udp|sctp]: invalid proto: icmp",
			"deployments[0].container.ports[4]: want",
			"deployments[0].container.ports[5]: want",
			"deployments[0].container.ports[6]: want",
			"deployments[0].container.ports[7]: container port 0",
			`deployments[0].container.volumes[0]: "/data": want src:dst[:options]`,
			`deployments[0].container.volumes[2]: "rel/path:/c": the source must be an absolute host path or a volume name`,
			`deployments[0].container.volumes[3]: "/d:relative": the destination must be an absolute path`,
			`deployments[0].container.volumes[4]: "/e:/": the destination`,
			`deployments[0].container.volumes[5]: "/f:/g:ro,rw": ro and rw together`,
			`deployments[0].container.volumes[6]: "/h:/i:bogus": unknown option "bogus"`,
			`deployments[0].container.volumes[7]: mounts on "/b" like volumes[1]`,
			`deployments[0].container.volumes[9]: "a:b:c:d": want src:dst[:options]`,
			"deployments[0].container.aliases: aliases need networks",
			`deployments[0].container.restart: "sometimes": want no, always, unless-stopped or on-failure[:N]`,
			`deployments[0].container.labels: "liftoff.managed": liftoff.* labels are liftoff's own`,
			"deployments[1].container.ports[0]: host port 8001/tcp is also published by deployments[0].container.ports[1]",
			"deployments[1].container.networks[1]: listed twice", "deployments[1].container.networks[2]: empty network name",
			`deployments[1].container.restart: "on-failure:x"`,
			"deployments[1].stop_timeout: must be positive",
			"deployments[1].min_image_age: -10m0s: must be positive, e.g. 10m"}},

		// Values from ${VAR} are secrets even where they are not meant to be.
		{"secret image", head + "deployments:\n  - {name: web, image: \"${IMG}\", tags: [a]}\n", map[string]string{"IMG": envSecret + ":x:y"},
			[]string{"deployments[0].image: invalid image (the value comes from ${VAR} and is not shown)"}},
		{"secret type error", head + "deployments:" + web + "    container:\n      replace_unmanaged: ${SECRET}\n", nil,
			[]string{"deployments[0].container.replace_unmanaged: cannot unmarshal !!str (value from ${VAR}) into bool"}},
		{"secret name", head + "deployments:\n  - {name: \"${SECRET}!\", image: acme/web, tags: [a], environment: \"${SECRET}\"}\n", nil,
			[]string{"deployments[0].name: invalid name (value from ${VAR})", "deployments[0].environment: unknown environment (value from ${VAR})"}},
		{"secret tag rule", head + "deployments:\n  - {name: web, image: acme/web, tags: [\"semver:${SECRET}\"]}\n", nil,
			[]string{"deployments[0].tags[0]: invalid tag rule (the value comes from ${VAR} and is not shown)"}},
		{"secret port", head + "deployments:\n  - {name: web, image: acme/web, tags: [a], container: {ports: [\"${SECRET}\"], volumes: [\"${SECRET}\"], restart: \"${SECRET}\"}}\n", nil,
			[]string{"deployments[0].container.ports[0]: want [ip:][hostPort:]containerPort[/tcp|udp|sctp] (the value comes from ${VAR} and is not shown)",
				"deployments[0].container.volumes[0]: want src:dst[:options] (the value comes from ${VAR} and is not shown)",
				"deployments[0].container.restart: (value from ${VAR}): want no"}},
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

// One run reports every problem, each as a *FieldError.
func TestValidateReportsAll(t *testing.T) {
	_, err := parseString(t, `hooks: [{source: gitlab, token: short}]
hook_rate_limit: -7
deployments:
  - {name: a, image: "A", tags: ["semver:^foo"], environment: prod}
`)
	if err == nil {
		t.Fatal("no error")
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("%T is not a *FieldError", err)
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("not joined: %T", err)
	}
	paths := map[string]bool{}
	for _, e := range joined.Unwrap() {
		if errors.As(e, &fe) {
			paths[fe.Path] = true
		}
	}
	for _, p := range []string{"hooks[0].source", "hooks[0].token", "hook_rate_limit", "deployments[0].name", "deployments[0].image",
		"deployments[0].tags[0]", "deployments[0].environment"} {
		if !paths[p] {
			t.Errorf("no error for %s in:\n%v", p, err)
		}
	}
}

// An unset ${VAR} is the whole story of its field: no second error for the
// empty value it leaves.
func TestUnsetVariableSingleError(t *testing.T) {
	_, err := parseString(t, `hooks: [{source: dockerhub, token: "${NOPE}"}]`)
	if err == nil || strings.Count(err.Error(), "hooks[0].token") != 1 {
		t.Fatalf("want exactly one hooks[0].token error, got:\n%v", err)
	}
}
