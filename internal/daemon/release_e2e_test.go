package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// releaseConfig is a Django-like app whose release command (testapp's
// release mode) leaves a marker in a host directory, DATADIR, mounted at
// /data in every container of the test: NAME-staging deploys v* tags;
// NAME-prod deploys latest, only digests staging ran, after production's
// backup; NAME-canary's environment has a backup that fails. The format
// verbs are those of e2eConfig: %[4]s is the secret key file.
const releaseConfig = configHead + `api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
  - {name: logreader, token: ` + tokLogs + `, scopes: ["logs:*"]}
environments:
  staging:
    env: {STAGE: staging}
  production:
    env: {STAGE: production}
    backup:
      command: [release]
      env: {TESTAPP_MARKER_FILE: /data/backup.log, TESTAPP_PRINT_VAR: "STAGE,SECRET_KEY,DB_PASSWORD"}
      secret_files: {DB_PASSWORD: %[4]s}
      volumes: ["DATADIR:/data"]
      timeout: 1m
  canary:
    env: {STAGE: canary}
    backup:
      image: acme/%[1]s:v1
      command: [release]
      env: {TESTAPP_MARKER_FILE: /data/canary-backup.log, TESTAPP_RELEASE_EXIT: "4"}
      volumes: ["DATADIR:/data"]
deployments:
  - name: %[1]s-staging
    image: acme/%[1]s
    tags: ["glob:v*"]
    environment: staging
    env: {TESTAPP_MARKER_FILE: /data/staging-release.log}
    release: {command: [release], timeout: 4s}
    container: {volumes: ["DATADIR:/data"]}
    health: {min_uptime: 200ms}
  - name: %[1]s-prod
    image: acme/%[1]s
    tags: [latest]
    environment: production
    promote_from: %[1]s-staging
    env: {TESTAPP_MARKER_FILE: /data/prod-release.log, TESTAPP_PRINT_VAR: "SECRET_KEY,STAGE", TESTAPP_RELEASE_LINES: "4"}
    secret_files: {SECRET_KEY: %[4]s}
    release: {command: [release]}
    container: {volumes: ["DATADIR:/data"]}
    health: {min_uptime: 200ms}
  - name: %[1]s-canary
    image: acme/%[1]s
    tags: [canary]
    environment: canary
    env: {TESTAPP_MARKER_FILE: /data/canary-release.log}
    release: {command: [release]}
    container: {volumes: ["DATADIR:/data"]}
    health: {min_uptime: 200ms}
`

// startReleaseDaemon starts liftoff on releaseConfig with a data directory
// of its own, which it returns.
func startReleaseDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	// The containers write as root; the test may not run as root.
	if err := os.Mkdir(data, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o777); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, strings.ReplaceAll(releaseConfig, "DATADIR", data)), data
}

// markers returns the lines of a marker file in data ("" when none).
func markers(t *testing.T, data, file string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, file))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// noOneOffs asserts that no backup or release container of the daemon's
// deployments is left.
func (d *daemon) noOneOffs() {
	d.t.Helper()
	for _, c := range d.eng.Containers(d.t, d.prefix) {
		if strings.Contains(c, deploy.ReleaseSuffix) || strings.Contains(c, deploy.BackupSuffix) {
			d.t.Errorf("a one-off container is left: %s", c)
		}
	}
}

// tokLogs may read the output of every deploy's backup and release.
const tokLogs = "logs-token-7d2b9e4f6a1c3e5b8d0f"

// releaseOutput returns the release output of the deploy rec as GET
// /deploys/{id}/logs gives it to a logs:* token; read never sees it.
func (d *daemon) releaseOutput(rec map[string]any) string {
	d.t.Helper()
	if _, ok := rec["release_output"]; ok {
		d.t.Errorf("read sees the release's output: %v", rec)
	}
	id := int64(rec["id"].(float64))
	path := fmt.Sprintf("/api/v1/deploys/%d/logs", id)
	if status, _ := d.apiRaw(tokRead, "GET", path, ""); status != http.StatusForbidden {
		d.t.Errorf("GET %s with read: %d, want 403", path, status)
	}
	out, _ := d.apiOK(200, tokLogs, "GET", path, "")["release"].(string)
	return out
}

// deployRecord returns the API's newest deploy of deployment.
func (d *daemon) deployRecord(deployment string) map[string]any {
	d.t.Helper()
	out := d.apiOK(200, tokRead, "GET", "/api/v1/deploys?deployment="+deployment+"&limit=1", "")
	ds, _ := out["deploys"].([]any)
	if len(ds) != 1 {
		d.t.Fatalf("no deploy of %s in the API: %v", deployment, out)
	}
	return ds[0].(map[string]any)
}

func TestReleasePhase(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, data := startReleaseDaemon(t)
	staging := d.prefix + "-staging"

	// v1: the release runs before the new container starts.
	d.push("v1", "v1")
	if r := d.deploy("v1"); r.Outcome != deploy.Succeeded {
		t.Fatalf("v1: %s %v", r.Outcome, r.Err)
	}
	d.only(staging)
	d.noOneOffs()
	if m := markers(t, data, "staging-release.log"); len(m) != 1 || !strings.HasPrefix(m[0], "release v1 ") {
		t.Fatalf("release markers after v1: %q, want one of v1", m)
	}
	if at := d.marker(staging); !strings.HasPrefix(at, "release v1 ") {
		t.Errorf("when the v1 container started the marker held %q: the release did not run before it", at)
	}
	rec := d.deployRecord(staging)
	if out := d.releaseOutput(rec); !strings.Contains(out, "release v1 line 0 stdout") {
		t.Errorf("release output = %q", out)
	}
	if ph, _ := rec["phases"].(map[string]any); ph["release"] == nil {
		t.Errorf("phases %v lack release", ph)
	}
	d.hasMetricPrefix(`liftoff_deploy_phase_duration_seconds_count{phase="release"}`)

	// v2 exits 3 in its release: failed, v1 serves on, untouched.
	v1ID := d.eng.ContainerID(t, staging)
	d.push("v2", "v2", "TESTAPP_RELEASE_EXIT=3")
	r := d.deploy("v2")
	if r.Outcome != deploy.Failed || r.Err == nil || !strings.Contains(r.Err.Error(), "release: command failed: exit code 3") {
		t.Fatalf("v2: %s %v, want failed with exit code 3", r.Outcome, r.Err)
	}
	d.serving(staging, "v1")
	if id := d.eng.ContainerID(t, staging); id != v1ID {
		t.Errorf("the v1 container was replaced (%.12s → %.12s)", v1ID, id)
	}
	d.only(staging)
	d.noOneOffs()
	rec = d.deployRecord(staging)
	if rec["outcome"] != "failed" || !strings.Contains(rec["error"].(string), "exit code 3") ||
		!strings.Contains(d.releaseOutput(rec), "release v2 line 0 stdout") {
		t.Errorf("the v2 deploy: %v", rec)
	}

	// v3 hangs: killed at the 4s timeout, the same.
	d.push("v3", "v3", "TESTAPP_RELEASE_SLEEP=1h")
	r = d.deploy("v3")
	if r.Outcome != deploy.Failed || r.Err == nil || !strings.Contains(r.Err.Error(), "release: command failed: timed out after 4s and was killed") {
		t.Fatalf("v3: %s %v, want failed at its timeout", r.Outcome, r.Err)
	}
	d.serving(staging, "v1")
	if id := d.eng.ContainerID(t, staging); id != v1ID {
		t.Errorf("the v1 container was replaced after a hung release")
	}
	d.only(staging)
	d.noOneOffs()
	if m := markers(t, data, "staging-release.log"); len(m) != 3 {
		t.Errorf("release markers: %q, want v1, v2 and v3's", m)
	}
	d.logEntry("release output", map[string]string{"deployment": staging, "tag": "v3"})
}

func TestReleaseBackupAndPromotion(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d, data := startReleaseDaemon(t)
	staging, prod, canary := d.prefix+"-staging", d.prefix+"-prod", d.prefix+"-canary"

	// A digest staging never ran is refused in production, before anything.
	d.push("latest", "v0")
	r := d.deploy("latest")
	if r.Outcome != deploy.Refused || r.Err == nil || !strings.Contains(r.Err.Error(), "never succeeded in "+staging) {
		t.Fatalf("unproven latest: %s %v, want refused", r.Outcome, r.Err)
	}
	if got := d.eng.Containers(t, prod); len(got) != 0 {
		t.Errorf("production containers after a refusal: %v", got)
	}
	if m := markers(t, data, "prod-release.log"); m != nil {
		t.Errorf("the release of a refused digest ran: %q", m)
	}

	// The same digest, once staging ran it, is deployed to production:
	// a first deploy, so no backup (nothing runs, and it names no image).
	img := testenv.AppImage{Version: "v1"}
	if a, b := d.pushImage("v1", img), d.pushImage("latest", img); a != b {
		t.Fatalf("one image pushed twice has two digests: %s %s", a, b)
	}
	d.deployOK("v1")
	d.deployOK("latest")
	d.serving(prod, "v1")
	if m := markers(t, data, "backup.log"); m != nil {
		t.Errorf("a backup ran on the first deploy: %q", m)
	}
	out := d.releaseOutput(d.deployRecord(prod))
	if !strings.Contains(out, "SECRET_KEY=[redacted]") || !strings.Contains(out, "STAGE=production") {
		t.Errorf("production's release output %q: want its final environment, the secret redacted", out)
	}

	// v2 through staging, then production: the backup runs first, from
	// the image that ran (v1), with its own variables only.
	img2 := testenv.AppImage{Version: "v2"}
	d.pushImage("v2", img2)
	d.pushImage("latest", img2)
	d.deployOK("v2")
	d.deployOK("latest")
	d.serving(prod, "v2")
	d.noOneOffs()
	backup := markers(t, data, "backup.log")
	release := markers(t, data, "prod-release.log")
	if len(backup) != 1 || !strings.HasPrefix(backup[0], "release v1 ") || len(release) != 2 {
		t.Fatalf("markers: backup %q (want one, by v1), release %q (want two)", backup, release)
	}
	if backup[0] > release[1] { // same width: unix nanoseconds of this decade
		t.Errorf("the backup (%s) ran after the release (%s)", backup[0], release[1])
	}
	e := d.logEntry("backup done", map[string]string{"deployment": prod})
	if got, _ := e["output"].(string); !strings.Contains(got, "STAGE unset") || !strings.Contains(got, "SECRET_KEY unset") ||
		!strings.Contains(got, "DB_PASSWORD=[redacted]") {
		t.Errorf("backup output %q: want no variable of the environment or the deployment, its own secret redacted", got)
	}

	// A failing backup stops the deploy before the release; nothing made.
	d.pushImage("canary", img2)
	r = d.deploy("canary")
	if r.Outcome != deploy.Failed || r.Err == nil || !strings.Contains(r.Err.Error(), "backup: command failed: exit code 4") {
		t.Fatalf("canary: %s %v, want failed in its backup", r.Outcome, r.Err)
	}
	if got := d.eng.Containers(t, canary); len(got) != 0 {
		t.Errorf("canary containers after a failed backup: %v", got)
	}
	if m := markers(t, data, "canary-release.log"); m != nil {
		t.Errorf("the release ran after a failed backup: %q", m)
	}
	if m := markers(t, data, "canary-backup.log"); len(m) != 1 || !strings.HasPrefix(m[0], "release v1 ") {
		t.Errorf("canary's backup markers %q: want one from its image, v1", m)
	}
	d.noOneOffs()

	if strings.Contains(d.logs.String(), secretMarker) {
		t.Error("a secret is in the log")
	}
	if _, raw := d.apiRaw(tokRead, "GET", "/api/v1/deploys?limit=100", ""); strings.Contains(string(raw), secretMarker) {
		t.Error("a secret is in the API's deploys")
	}
	if !slices.Contains(d.eng.Containers(t, staging), staging+" running") {
		t.Errorf("staging: %v", d.eng.Containers(t, staging))
	}
}

// marker returns what the marker file held when container started.
func (d *daemon) marker(container string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	a, err := d.eng.AppInfo(ctx, container)
	if err != nil {
		d.t.Fatalf("ask the app in %s: %v", container, err)
	}
	return a.MarkerAtStart
}

// hasMetricPrefix asserts that /metrics has a sample line starting with p.
func (d *daemon) hasMetricPrefix(p string) {
	d.t.Helper()
	for _, l := range strings.Split(d.get("/metrics"), "\n") {
		if strings.HasPrefix(l, p) {
			return
		}
	}
	d.t.Errorf("/metrics lacks %s", p)
}
