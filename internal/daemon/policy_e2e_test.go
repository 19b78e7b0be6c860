package daemon_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// policyConfig is a production environment with every kind of policy
// and, beside it, the same policy with DEBUG pinned to "False" by the
// environment. %[1]s is the unique prefix, %[2]s the mirror, %[3]s the
// hook token, %[4]s the secret key file.
const policyConfig = configHead + `environments:
  production:
    env:
      STATIC_URL: /api/static/
    require: [SECRET_KEY]
    forbid: {DEBUG: ["True", "true", "1"]}
    forbid_patterns: {DJANGO_SETTINGS_MODULE: ['\.staging$']}
  production-pinned:
    env:
      STATIC_URL: /api/static/
      DEBUG: "False"
    require: [SECRET_KEY]
    forbid: {DEBUG: ["True", "true", "1"]}
    forbid_patterns: {DJANGO_SETTINGS_MODULE: ['\.staging$']}
deployments:
  - name: %[1]s-prod
    image: acme/%[1]s
    tags: [latest]
    environment: production
    secret_files: {SECRET_KEY: %[4]s}
    health: {min_uptime: 500ms}
  - name: %[1]s-nokey
    image: acme/%[1]s
    tags: [nokey]
    environment: production
    health: {min_uptime: 500ms}
  - name: %[1]s-pinned
    image: acme/%[1]s
    tags: [pinned]
    environment: production-pinned
    secret_files: {SECRET_KEY: %[4]s}
    health: {min_uptime: 500ms}
`

// policyState is what the engine says of a container: enough to tell that
// it was never stopped or restarted.
type policyState struct {
	ID                    string
	Running               bool
	StartedAt, FinishedAt string
	RestartCount          int
}

func (d *daemon) policyInspect(name string) policyState {
	d.t.Helper()
	c := d.eng.Inspect(d.t, name)
	return policyState{ID: c.ID, Running: c.State.Running, StartedAt: c.State.StartedAt,
		FinishedAt: c.State.FinishedAt, RestartCount: c.RestartCount}
}

// policyDeliver pushes nothing: it delivers a push of tag, expects it
// accepted by exactly deployment, and returns the deploy's result.
func (d *daemon) policyDeliver(tag, deployment string) deploy.Result {
	d.t.Helper()
	status, ans := d.hook(tag)
	if status != http.StatusAccepted || ans.Accepted != 1 {
		d.t.Fatalf("push of %s: %d %+v, want %s accepted", tag, status, ans, deployment)
	}
	r := d.next()
	if r.Request.Deployment != deployment {
		d.t.Fatalf("deploy of %s finished, want %s", r.Request.Deployment, deployment)
	}
	return r
}

// TestPolicyRefusesBeforeStopping: a production environment requires
// SECRET_KEY, forbids DEBUG=True and a staging settings module. Images
// that break it by their own ENV are pulled, refused, and the running
// container is never touched; the environment's own value wins over the
// image's.
func TestPolicyRefusesBeforeStopping(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, policyConfig)
	prod, nokey, pinned := d.prefix+"-prod", d.prefix+"-nokey", d.prefix+"-pinned"

	// A good v1 first.
	d.push("latest", "v1", "DJANGO_SETTINGS_MODULE=dblood.settings.production")
	if r := d.policyDeliver("latest", prod); r.Outcome != deploy.Succeeded {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	env := d.serving(prod, "v1")
	if env["SECRET_KEY"] != secretMarker || env["STATIC_URL"] != "/api/static/" {
		t.Fatalf("v1 env: SECRET_KEY set %v, STATIC_URL %q", env["SECRET_KEY"] == secretMarker, env["STATIC_URL"])
	}
	before := d.policyInspect(prod)
	if !before.Running || before.FinishedAt != "0001-01-01T00:00:00Z" || before.RestartCount != 0 {
		t.Fatalf("v1 container state %+v", before)
	}

	refusals := []struct {
		name     string
		imageEnv []string
		key      string   // the reason names it
		rule     string   // and its rule
		absent   []string // but not the value, nor what is not wrong
	}{
		{"image bakes DEBUG=True", []string{"DJANGO_SETTINGS_MODULE=dblood.settings.production", "DEBUG=True"},
			"DEBUG", "value is forbidden in production", []string{"True"}},
		{"image bakes a staging settings module", []string{"DJANGO_SETTINGS_MODULE=x.settings.staging"},
			"DJANGO_SETTINGS_MODULE", `matches forbidden pattern \.staging$ in production`, []string{"x.settings.staging", "x.settings"}},
		// Its empty SECRET_KEY is overridden by the secret file: only DEBUG is wrong.
		{"image bakes DEBUG=1 and an empty SECRET_KEY", []string{"DEBUG=1", "SECRET_KEY="},
			"DEBUG", "value is forbidden in production", []string{"DEBUG=1", `"1"`, "SECRET_KEY"}},
	}
	for i, rc := range refusals {
		version := fmt.Sprintf("v%d-refused", i+2)
		d.push("latest", version, rc.imageEnv...)
		r := d.policyDeliver("latest", prod)
		if r.Outcome != deploy.Refused || !errors.Is(r.Err, deployments.ErrPolicy) {
			t.Fatalf("%s: %s %v, want refused by policy", rc.name, r.Outcome, r.Err)
		}
		reason := r.Err.Error()
		if !strings.Contains(reason, rc.key+": "+rc.rule) {
			t.Errorf("%s: reason %q does not name %s and its rule %q", rc.name, reason, rc.key, rc.rule)
		}
		for _, v := range rc.absent {
			if strings.Contains(reason, v) {
				t.Errorf("%s: reason %q shows %q", rc.name, reason, v)
			}
		}
		// The v1 container was never stopped: same container, running,
		// started once, never finished.
		if now := d.policyInspect(prod); now != before {
			t.Errorf("%s: container %+v, was %+v", rc.name, now, before)
		}
		d.serving(prod, "v1")
	}

	// No layer sets SECRET_KEY for this deployment, nor does its image.
	d.push("nokey", "v1", "DJANGO_SETTINGS_MODULE=dblood.settings.production")
	r := d.policyDeliver("nokey", nokey)
	if r.Outcome != deploy.Refused || !errors.Is(r.Err, deployments.ErrPolicy) ||
		!strings.Contains(r.Err.Error(), "SECRET_KEY: required in production but not set") {
		t.Fatalf("no SECRET_KEY: %s %v", r.Outcome, r.Err)
	}
	if id := d.eng.ContainerID(t, nokey); id != "" {
		t.Errorf("a container %s was created for a refused deploy", id)
	}

	// The environment pins DEBUG=False over the image's DEBUG=True: what
	// ships is the final value, so it deploys.
	d.push("pinned", "v1-pinned", "DEBUG=True", "DJANGO_SETTINGS_MODULE=dblood.settings.production")
	if r := d.policyDeliver("pinned", pinned); r.Outcome != deploy.Succeeded {
		t.Fatalf("DEBUG pinned by the environment: %s %v", r.Outcome, r.Err)
	}
	if env := d.serving(pinned, "v1-pinned"); env["DEBUG"] != "False" || env["SECRET_KEY"] != secretMarker {
		t.Errorf("pinned env: DEBUG=%q, SECRET_KEY set %v", env["DEBUG"], env["SECRET_KEY"] == secretMarker)
	}

	if got := d.eng.RunningContainers(t, d.prefix); strings.Join(got, " ") != pinned+" "+prod {
		t.Errorf("running containers %v, want exactly %s and %s", got, pinned, prod)
	}

	metrics := d.get("/metrics")
	for _, want := range []string{
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="production",outcome="refused"} 3`, prod),
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="production",outcome="succeeded"} 1`, prod),
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="production",outcome="refused"} 1`, nokey),
		fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="production-pinned",outcome="succeeded"} 1`, pinned),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// One warn line per refusal, naming the deployment and the outcome; no
	// line shows a forbidden value.
	warned := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(d.logs.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e["message"] == "deploy finished" && e["outcome"] == "refused" {
			if e["level"] != "warn" {
				t.Errorf("refusal logged at %v: %s", e["level"], line)
			}
			if errText, _ := e["error"].(string); !strings.Contains(errText, "policy") && !strings.Contains(errText, "required") && !strings.Contains(errText, "forbidden") {
				t.Errorf("refusal without its reason: %s", line)
			}
			warned[fmt.Sprint(e["deployment"])]++
		}
		if strings.Contains(line, "x.settings.staging") || strings.Contains(line, "DEBUG=True") {
			t.Errorf("a forbidden value is in the log: %s", line)
		}
	}
	if warned[prod] != 3 || warned[nokey] != 1 || len(warned) != 2 {
		t.Errorf("refusals logged %v, want 3 for %s and 1 for %s", warned, prod, nokey)
	}
}
