package deployments

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// FuzzParse: the loader never panics or hangs; an error never shows a
// secret the input did not itself contain; a loaded config validates
// again unchanged and can be used.
//
// No seed names a compose file: compose-go reads one in about 14 ms, a
// thousand times what the rest of an input costs, and what it reads is
// the same file whatever the input; TestCompose* cover liftoff's side.
// Nesting thousands of levels deep is TestLoadRefusesDeepNesting's.
func FuzzParse(f *testing.F) {
	for _, name := range []string{exampleYAML, "testdata/valid.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		head + "deployments:" + web,
		matchConfig,
		policyConfig,
		layersConfig,
		"hooks: [{source: dockerhub, token: ${X}}]\n",
		"listen: ${A:-:80}\nhistory: x\n",
		"deployments:\n  - &d {name: a, image: b/c, tags: [\"${S}\"], env: {K: \"${S}\"}}\n  - {<<: *d, name: b2}\n",
		"a: &a [${X}, ${X}]\nb: &b [*a, *a]\ndeployments: [{name: *b}]\n",
		"deployments:\n  - name: x\n    stop_timeout: ${T}\n    container: {replace_unmanaged: \"${B}\"}\n",
		"---\n---\n",
		"{}",
		"[]",
		"deployments: [{name: $$, image: ${}, tags: [${A:-}]}]",
		"registries: {docker.io: {mirror: \"http://${M}\", password_file: password, username: u}}\n",
		"environments: {p: {env_files: [bad.env, base.env], forbid_patterns: {A: [\"(\"]}}}\n",
		apiConfig,
		"api_listen: ${L:-127.0.0.1:8081}\napi_tokens: [{name: a, token: \"${X}${X}\", scopes: [read, \"deploy:*\"]}, {name: b, token: \"${X}${X}\", scopes: [\"${X}\"]}]\n",
		"environments: {p: {approval: {required: ${R}, timeout: ${T:-0s}}}}\napi_tokens: [{name: a, token: ${X}${X}, scopes: [\"approve:p\"]}]\n",
		backupConfig,
		"environments: {p: {backup: {command: [\"${C}\"], image: \"${I:-postgres:16@sha256:0123456789012345678901234567890123456789012345678901234567890123}\", timeout: ${T}}}}\n",
		"environments: {p: {backup: }}\ndeployments: [{name: ab, image: a/b, tags: [x], release: {}}]\n",
		"deployments: [{name: ab, image: a/b, tags: [x], promote_from: cd, release: {command: [m], timeout: ${T:-1m}}}, {name: cd, image: a/b, tags: [y], promote_from: ab}]\n",
		"deployments: [{name: ab, image: a/b, tags: [x], container: {memory: \"${M}\", cpus: 1.5, ulimits: {nofile: \"${N}\"}, extra_hosts: [\"${H}\"], cap_add: [\"${C}\"], logging: {driver: json-file, options: {max-size: \"${S}\"}}}}]\n",
		"history_retention: {deliveries: ${D:-30d}, max_deliveries: 100, deploys: 2}\n",
		"engines: {w: {host: \"tcp://${H}:2375\", insecure: true}}\ndocker_host: tcp://10.0.0.1:2375\ndocker_host_insecure: true\nhook_rate_limit: -1\n",
		"listen: \":1\"\napi_tokens: [{name: a, token: \"${X}${X}\", scopes: [admin, \"logs:*\"]}]\nnotifications: [{name: n, url: \"http://${U}/x\", format: slack}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lookup := func(string) (string, bool) { return envSecret, true }
		c, err := Parse(data, "testdata", lookup)
		if err != nil {
			if !bytes.Contains(data, []byte("ENVSECRET")) && !bytes.Contains(data, []byte("FILESECRET")) {
				for _, m := range []string{envSecret, "FILESECRET"} {
					if strings.Contains(err.Error(), m) {
						t.Fatalf("secret %q in error:\n%v", m, err)
					}
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse succeeded, Validate again failed: %v", err)
		}
		for i := range c.Deployments {
			d := &c.Deployments[i]
			if n, err := imageref.NormalizeRepo(d.Image); err != nil || n != d.Image {
				t.Fatalf("image %q not normalized: %q %v", d.Image, n, err)
			}
			m := c.Match(d.Image, "latest")
			if len(m.Accepted)+len(m.Ignored) == 0 {
				t.Fatalf("Match(%q) says nothing", d.Image)
			}
			if c.Deployment(d.Name) == nil || d.ContainerName() == "" || d.StopTimeout <= 0 {
				t.Fatalf("deployment %q half set up", d.Name)
			}
			_, _ = c.Env(d, []string{"A=1"})
			_ = c.SecretKeys(d)
			if len(d.Release.Command) > 0 && d.Release.Timeout <= 0 {
				t.Fatalf("deployment %q: release without a timeout", d.Name)
			}
			if from := d.PromoteFrom.Deployment; from != "" && (from == d.Name || c.Deployment(from) == nil) {
				t.Fatalf("deployment %q: promote_from %q", d.Name, d.PromoteFrom.Deployment)
			}
			if b := c.BackupFor(d); b != nil {
				if b.Timeout <= 0 {
					t.Fatalf("deployment %q: backup without a timeout", d.Name)
				}
				e := c.Environments[d.Environment]
				_, _, _ = c.BackupEnv(&e)
			}
			_, _, _ = c.PullRepo(d.Image)
		}
		_ = c.ValidatePolicies()
		if r := c.HistoryRetention; r.DeliveryAge < time.Hour || r.MaxDeliveries < 100 || r.Deploys < 2 {
			t.Fatalf("history_retention %+v loaded below its minimums", r)
		}
		for _, f := range c.Audit() {
			if f.Field == "" || f.Risk == "" || f.Why == "" {
				t.Fatalf("audit finding %+v", f)
			}
		}
		for i := range c.Deployments {
			d := &c.Deployments[i]
			if req, timeout := c.Approval(d); req != (timeout > 0) {
				t.Fatalf("Approval(%s) = %v, %v", d.Name, req, timeout)
			}
		}
		for i, tok := range c.APITokens {
			if tok.Token != "" {
				t.Fatalf("api_tokens[%d].token kept after loading", i)
			}
		}
		if p, ok := c.APIAuth(""); ok || p.Name != "" {
			t.Fatal("the empty token authenticates")
		}
		if c.APIEnabled() != (len(c.APITokens) > 0) {
			t.Fatal("APIEnabled disagrees with api_tokens")
		}
	})
}

func TestReadFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := readFile(dir); err == nil {
		t.Error("a directory: no error")
	}
	if _, err := readFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file: no error")
	}
}
