package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// releaseConfig: web (production) has a release command and promotes from
// web-staging; production has a backup with its own environment.
const releaseConfig = `
hooks: [{source: dockerhub, token: 0123456789abcdef0123456789abcdef}]
environments:
  staging:
    env: {SETTINGS: app.settings.staging}
  production:
    env: {SETTINGS: app.settings.production}
    backup:
      command: [pg_dump, --file, /backups/dump.sql]
      env: {PGHOST: db}
      secret_files: {PGPASSWORD: pgpassword}
      volumes: ["backups:/backups"]
      networks: [db]
      timeout: 2m
deployments:
  - name: web-staging
    image: acme/web
    tags: [staging]
    environment: staging
    health: {min_uptime: 10ms}
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    promote_from: web-staging
    env: {SECRET_KEY: "${SECRET_KEY}"}
    release: {command: [python, manage.py, migrate], timeout: 1m}
    container: {volumes: ["media:/media"], networks: [db, backend]}
    health: {min_uptime: 10ms}
`

const (
	releaseSecret = "s3cret-key-from-the-environment"
	backupSecret  = "pg-password-from-a-file"
)

type releaseRig struct {
	t   *testing.T
	cfg *deployments.Config
	rt  *fakeRuntime
	j   *rcJournal
	e   *rcEngine
}

func newReleaseRig(t *testing.T) *releaseRig {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pgpassword"), []byte(backupSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) {
		if k == "SECRET_KEY" {
			return releaseSecret, true
		}
		return "", false
	}
	cfg, err := deployments.Parse([]byte(releaseConfig), dir, lookup)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	r := &releaseRig{t: t, cfg: cfg, rt: newFakeRuntime(), j: newRCJournal()}
	r.e = newRCEngine(t, cfg, r.rt, r.j, nil)
	return r
}

// deploy pushes digest under the deployment's tag and deploys it.
func (r *releaseRig) deploy(deployment, digest string) Result {
	r.t.Helper()
	tag := "latest"
	if deployment == "web-staging" {
		tag = "staging"
	}
	r.rt.push("docker.io/acme/web:"+tag, digest)
	if _, err := r.e.Enqueue(context.Background(), Request{Deployment: deployment, Image: "docker.io/acme/web", Tag: tag, Trigger: "test"}); err != nil {
		r.t.Fatalf("enqueue: %v", err)
	}
	return r.e.next(r.t)
}

// proven deploys digest to staging, then runs it in production: the state
// most tests start from.
func (r *releaseRig) proven(digest string) Container {
	r.t.Helper()
	if res := r.deploy("web-staging", digest); res.Outcome != Succeeded {
		r.t.Fatalf("staging: %s %v", res.Outcome, res.Err)
	}
	if res := r.deploy("web", digest); res.Outcome != Succeeded {
		r.t.Fatalf("production: %s %v", res.Outcome, res.Err)
	}
	c, ok := r.rt.get("web")
	if !ok || !c.Running {
		r.t.Fatalf("web does not run after its deploy")
	}
	r.reset()
	return c
}

// reset forgets the calls and one-offs so far.
func (r *releaseRig) reset() {
	r.rt.mu.Lock()
	r.rt.oneOffs, r.rt.calls = nil, nil
	r.rt.mu.Unlock()
}

func (r *releaseRig) oneOffs() []OneOff {
	r.rt.mu.Lock()
	defer r.rt.mu.Unlock()
	return slices.Clone(r.rt.oneOffs)
}

func (r *releaseRig) calls() []string {
	r.rt.mu.Lock()
	defer r.rt.mu.Unlock()
	return slices.Clone(r.rt.calls)
}

// record returns the journal's record of res.
func (r *releaseRig) record(res Result) Record {
	r.t.Helper()
	recs, _ := r.j.list(context.Background(), res.Request.Deployment, 1)
	if len(recs) == 0 {
		r.t.Fatalf("no journal record for %s", res.Request.Deployment)
	}
	return recs[0]
}

func (e *rcEngine) next(t *testing.T) Result {
	t.Helper()
	return (&holdHarness{t: t, e: e}).next()
}

func indexOf(calls []string, prefix string) int {
	return slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}

func TestReleaseRunsBeforeAnythingIsTouched(t *testing.T) {
	r := newReleaseRig(t)
	old := r.proven("sha256:aaa")
	r.rt.runOnce = func(o OneOff) OneOffResult {
		out := "Applying app.0002... OK\n"
		if o.Name == "web.liftoff-release" {
			out += "SECRET_KEY=" + releaseSecret + "\n"
		}
		return OneOffResult{Output: []byte(out)}
	}
	r.deploy("web-staging", "sha256:bbb")
	r.reset()

	res := r.deploy("web", "sha256:bbb")
	if res.Outcome != Succeeded {
		t.Fatalf("deploy: %s %v", res.Outcome, res.Err)
	}
	ones := r.oneOffs()
	if len(ones) != 2 || ones[0].Name != "web.liftoff-backup" || ones[1].Name != "web.liftoff-release" {
		t.Fatalf("one-offs = %+v, want the backup then the release", ones)
	}
	rel := ones[1]
	if rel.Image != "docker.io/acme/web@sha256:bbb" || !slices.Equal(rel.Cmd, []string{"python", "manage.py", "migrate"}) {
		t.Errorf("release ran %s %v, want the new image pinned and its command", rel.Image, rel.Cmd)
	}
	for _, want := range []string{"SETTINGS=app.settings.production", "SECRET_KEY=" + releaseSecret} {
		if !slices.Contains(rel.Env, want) {
			t.Errorf("release env lacks %s (the deployment's final environment): %v", strings.SplitN(want, "=", 2)[0], rel.Env)
		}
	}
	if !slices.Equal(rel.Volumes, []string{"media:/media"}) || !slices.Equal(rel.Networks, []string{"db", "backend"}) {
		t.Errorf("release volumes %v networks %v, want the deployment's", rel.Volumes, rel.Networks)
	}
	if rel.Labels[LabelRole] != "release" || rel.Labels[LabelManaged] != "true" || rel.Labels[LabelDeployment] != "web" {
		t.Errorf("release labels = %v", rel.Labels)
	}
	if rel.Timeout.String() != "1m0s" || rel.OutputLimit != 64<<10 {
		t.Errorf("release timeout %s, output limit %d", rel.Timeout, rel.OutputLimit)
	}

	calls := r.calls()
	run, stop, create := indexOf(calls, "run web.liftoff-release"), indexOf(calls, "stop"), indexOf(calls, "create")
	if run < 0 || stop < 0 || create < 0 || run > stop || run > create || indexOf(calls, "run web.liftoff-backup") > run {
		t.Errorf("calls = %v: want backup, then release, then the swap", calls)
	}
	if c := r.e.running(t, r.rt, "web"); c.ID == old.ID || c.Labels[LabelDigest] != "sha256:bbb" {
		t.Errorf("web runs %s, want the new version", c.Labels[LabelDigest])
	}

	rec := r.record(res)
	if !strings.Contains(rec.ReleaseOutput, "Applying app.0002... OK") {
		t.Errorf("release output not kept: %q", rec.ReleaseOutput)
	}
	if strings.Contains(rec.ReleaseOutput, releaseSecret) || !strings.Contains(rec.ReleaseOutput, "SECRET_KEY=[redacted]") {
		t.Errorf("release output not redacted: %q", rec.ReleaseOutput)
	}
	if rec.Phases[StepRelease] <= 0 || rec.Phases[StepBackup] <= 0 {
		t.Errorf("phases %v lack backup and release", rec.Phases)
	}
	// The first deploy to production had a release and nothing to back up.
	for step, want := range map[string]uint64{StepBackup: 1, StepRelease: 2} {
		if n := phaseCount(t, r.e.metrics.phase, step); n != want {
			t.Errorf("phase %s observed %d times, want %d", step, n, want)
		}
	}
}

func TestReleaseFailureLeavesTheOldContainerServing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		result OneOffResult
		want   string
	}{
		{"exit 3", OneOffResult{ExitCode: 3, Output: []byte("migrating\nDatabaseError: " + releaseSecret + " denied\n")},
			"release: command failed: exit code 3: DatabaseError: [redacted] denied"},
		{"timeout", OneOffResult{ExitCode: 137, TimedOut: true, Output: []byte("waiting for a lock\n")},
			"release: command failed: timed out after 1m0s and was killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReleaseRig(t)
			old := r.proven("sha256:aaa")
			r.deploy("web-staging", "sha256:bbb")
			r.rt.runOnce = func(o OneOff) OneOffResult {
				if o.Name == "web.liftoff-release" {
					return tc.result
				}
				return OneOffResult{}
			}
			r.reset()
			res := r.deploy("web", "sha256:bbb")
			if res.Outcome != Failed || res.Err == nil || res.Err.Error() != tc.want {
				t.Fatalf("deploy: %s %v, want failed: %s", res.Outcome, res.Err, tc.want)
			}
			if c := r.e.running(t, r.rt, "web"); c.ID != old.ID {
				t.Errorf("web runs %s, want the old container untouched", c.ID)
			}
			for _, op := range []string{"stop", "create", "rename", "remove"} {
				if i := indexOf(r.calls(), op); i >= 0 {
					t.Errorf("%s after a failed release: %v", op, r.calls())
				}
			}
			rec := r.record(res)
			if rec.Step != StepRelease || strings.Contains(rec.ReleaseOutput+rec.Error, releaseSecret) || rec.ReleaseOutput == "" {
				t.Errorf("journal: step %s, error %q, output %q", rec.Step, rec.Error, rec.ReleaseOutput)
			}
		})
	}
}

func TestBackupRunsWithItsOwnEnvironment(t *testing.T) {
	r := newReleaseRig(t)
	old := r.proven("sha256:aaa")
	r.deploy("web-staging", "sha256:bbb")
	if res := r.deploy("web", "sha256:bbb"); res.Outcome != Succeeded {
		t.Fatalf("deploy: %s %v", res.Outcome, res.Err)
	}
	b := r.oneOffs()[0]
	if b.Name != "web.liftoff-backup" || b.Image != old.Image {
		t.Fatalf("backup %s ran %s, want the image that ran (%s)", b.Name, b.Image, old.Image)
	}
	if want := []string{"PGHOST=db", "PGPASSWORD=" + backupSecret}; !slices.Equal(b.Env, want) {
		t.Errorf("backup env = %v, want only its own variables", b.Env)
	}
	if !slices.Equal(b.Cmd, []string{"pg_dump", "--file", "/backups/dump.sql"}) ||
		!slices.Equal(b.Volumes, []string{"backups:/backups"}) || !slices.Equal(b.Networks, []string{"db"}) ||
		b.Timeout.String() != "2m0s" || b.Labels[LabelRole] != "backup" {
		t.Errorf("backup = %+v", b)
	}
	if indexOf(r.calls(), "pull docker.io/acme/web@sha256:aaa") >= 0 {
		t.Errorf("the running image was pulled again for the backup: %v", r.calls())
	}
}

func TestBackupFailureStopsTheDeployBeforeTheRelease(t *testing.T) {
	r := newReleaseRig(t)
	old := r.proven("sha256:aaa")
	r.deploy("web-staging", "sha256:bbb")
	r.rt.runOnce = func(o OneOff) OneOffResult {
		if o.Name == "web.liftoff-backup" {
			return OneOffResult{ExitCode: 1, Output: []byte("pg_dump: password " + backupSecret + " refused\n")}
		}
		return OneOffResult{}
	}
	r.reset()
	res := r.deploy("web", "sha256:bbb")
	if res.Outcome != Failed || res.Err == nil || !strings.HasPrefix(res.Err.Error(), "backup: command failed: exit code 1") {
		t.Fatalf("deploy: %s %v", res.Outcome, res.Err)
	}
	if strings.Contains(res.Err.Error(), backupSecret) {
		t.Errorf("the backup's secret is in the error: %v", res.Err)
	}
	if indexOf(r.calls(), "run web.liftoff-release") >= 0 || indexOf(r.calls(), "stop") >= 0 {
		t.Errorf("the deploy went on after the backup failed: %v", r.calls())
	}
	if c := r.e.running(t, r.rt, "web"); c.ID != old.ID {
		t.Errorf("web runs %s, want the old container", c.ID)
	}
	if rec := r.record(res); rec.Step != StepBackup {
		t.Errorf("journal step %s, want backup", rec.Step)
	}
}

func TestFirstDeploySkipsABackupWithoutImage(t *testing.T) {
	r := newReleaseRig(t)
	r.deploy("web-staging", "sha256:aaa")
	if res := r.deploy("web", "sha256:aaa"); res.Outcome != Succeeded {
		t.Fatalf("deploy: %s %v", res.Outcome, res.Err)
	}
	ones := r.oneOffs()
	if len(ones) != 1 || ones[0].Name != "web.liftoff-release" {
		t.Errorf("one-offs = %+v, want the release only: nothing ran to back up", ones)
	}
}

func TestBackupImageIsPulled(t *testing.T) {
	r := newReleaseRig(t)
	env := r.cfg.Environments["production"]
	b := *env.Backup
	b.Image = "docker.io/library/postgres:16"
	env.Backup = &b
	r.cfg.Environments["production"] = env

	r.deploy("web-staging", "sha256:aaa")
	r.reset()
	if res := r.deploy("web", "sha256:aaa"); res.Outcome != Succeeded {
		t.Fatalf("deploy: %s %v", res.Outcome, res.Err)
	}
	ones := r.oneOffs()
	if len(ones) != 2 || ones[0].Name != "web.liftoff-backup" || ones[0].Image != "docker.io/library/postgres:16" {
		t.Fatalf("one-offs = %+v, want the backup from its image even on a first deploy", ones)
	}
	if pull, run := indexOf(r.calls(), "pull docker.io/library/postgres:16"), indexOf(r.calls(), "run web.liftoff-backup"); pull < 0 || pull > run {
		t.Errorf("calls = %v: want the backup's image pulled before it runs", r.calls())
	}
}

func TestPromoteFromRefusesWhatStagingNeverRan(t *testing.T) {
	r := newReleaseRig(t)
	r.deploy("web-staging", "sha256:aaa")
	r.reset()
	res := r.deploy("web", "sha256:ccc")
	if res.Outcome != Refused || res.Err == nil || !strings.Contains(res.Err.Error(), "sha256:ccc never succeeded in web-staging") {
		t.Fatalf("unproven digest: %s %v, want refused", res.Outcome, res.Err)
	}
	if len(r.oneOffs()) != 0 || indexOf(r.calls(), "pull") >= 0 || indexOf(r.calls(), "create") >= 0 {
		t.Errorf("a refused deploy went on: %v", r.calls())
	}
	if _, ok := r.rt.get("web"); ok {
		t.Error("web was created")
	}

	// A digest that failed in staging is not proven either.
	r.rt.exitOnStart["sha256:ddd"] = 1
	if res := r.deploy("web-staging", "sha256:ddd"); res.Outcome == Succeeded {
		t.Fatalf("staging of a failing image: %s", res.Outcome)
	}
	if res := r.deploy("web", "sha256:ddd"); res.Outcome != Refused {
		t.Errorf("a digest that failed in staging: %s %v, want refused", res.Outcome, res.Err)
	}

	if res := r.deploy("web", "sha256:aaa"); res.Outcome != Succeeded {
		t.Errorf("a digest staging ran: %s %v, want succeeded", res.Outcome, res.Err)
	}
}

// A one-off container of an interrupted deploy is gone after the repair;
// one of the same name that liftoff did not create stays.
func TestRepairRemovesLeftOneOffs(t *testing.T) {
	r := newReleaseRig(t)
	r.proven("sha256:aaa")
	id, _ := r.j.Begin(context.Background(), Record{Deployment: "web", Environment: "production", Image: "acme/web", Tag: "latest"})
	_ = r.j.Step(context.Background(), id, Record{Step: StepRelease, Digest: "sha256:bbb", Previous: "sha256:aaa"})
	r.rt.add(Container{ID: "rel", Name: "web.liftoff-release", Running: true, Status: "running",
		Labels: map[string]string{LabelManaged: "true", LabelDeployment: "web", LabelRole: "release"}})
	r.rt.add(Container{ID: "mine", Name: "web.liftoff-backup", Running: true, Status: "running",
		Labels: map[string]string{"owner": "someone else"}})
	old, _ := r.rt.get("web")

	e := newRCEngine(t, r.cfg, r.rt, r.j, nil)
	if err := e.Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if _, ok := r.rt.get("web.liftoff-release"); ok {
		t.Error("the release container is still there")
	}
	if _, ok := r.rt.get("web.liftoff-backup"); !ok {
		t.Error("a container liftoff did not create was removed")
	}
	if c := e.running(t, r.rt, "web"); c.ID != old.ID {
		t.Errorf("web runs %s, want the old container", c.ID)
	}
	if rec := r.j.get(id); rec.Outcome != Failed || !strings.Contains(rec.Error, "release") {
		t.Errorf("interrupted deploy: %s %q", rec.Outcome, rec.Error)
	}
}

// phaseCount is how many times the phase histogram observed step.
func phaseCount(t *testing.T, h *prometheus.HistogramVec, step string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.WithLabelValues(step).(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

func (e *rcEngine) running(t *testing.T, rt *fakeRuntime, name string) Container {
	t.Helper()
	c, ok := rt.get(name)
	if !ok || !c.Running {
		t.Fatalf("container %s not running (present: %v)", name, ok)
	}
	return c
}

func TestRedact(t *testing.T) {
	const key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
	secrets := []string{"hunter2-long-secret", "hunter2", key}
	for _, tc := range []struct {
		name, out string
		limit     int
		want      string
	}{
		{"whole", "a hunter2-long-secret b hunter2\n", 0, "a [redacted] b [redacted]\n"},
		{"a line of a multi-line secret", "key: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n", 0, "key: [redacted]\n"},
		{"cut inside a secret, first line dropped", "ng-secret\nok\n", len("ng-secret\nok\n"), "[...]\nok\n"},
		{"cut inside a secret, one line: as much as the longest secret goes", "ng-secret" + strings.Repeat("x", 91), 100,
			"[...]" + strings.Repeat("x", 100-len(key))},
		{"not cut", "ng-secret\n", 100, "ng-secret\n"},
		{"invalid UTF-8", "\xffok", 0, "\uFFFDok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redact([]byte(tc.out), tc.limit, secrets); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.out, got, tc.want)
			}
		})
	}
}

// After a restart, the metrics start from the journal: a series of each
// outcome at 0 for each deployment (a first failure then shows in
// increase()), and the last success's time.
func TestLoadSeedsMetrics(t *testing.T) {
	r := newReleaseRig(t)
	r.deploy("web-staging", "sha256:aaa")
	rec := r.record(Result{Request: Request{Deployment: "web-staging"}})

	e := newRCEngine(t, r.cfg, r.rt, r.j, nil)
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(e.metrics.lastSuccess.WithLabelValues("web-staging")); got != float64(rec.Ended.Unix()) {
		t.Errorf("last success of web-staging = %v, want %d (from the journal)", got, rec.Ended.Unix())
	}
	for _, o := range outcomes {
		for _, d := range []struct{ name, env string }{{"web", "production"}, {"web-staging", "staging"}} {
			if n := testutil.CollectAndCount(e.metrics.deploys); n != 2*len(outcomes) {
				t.Fatalf("%d deploys_total series, want %d", n, 2*len(outcomes))
			}
			if v := testutil.ToFloat64(e.metrics.deploys.WithLabelValues(d.name, d.env, string(o))); v != 0 {
				t.Errorf("deploys_total{%s,%s} = %v, want 0", d.name, o, v)
			}
		}
	}
	if n := testutil.CollectAndCount(e.metrics.lastSuccess); n != 1 {
		t.Errorf("%d last-success series, want 1: web never succeeded", n)
	}
}

// liftoff stopping during a release (Close past its deadline): the release
// is cancelled, the old container serves on, and the deploy stays
// unfinished with its push open, so that the next start deploys it again,
// as after a crash, instead of recording it failed for good.
func TestCloseDuringAReleaseLeavesThePushOpen(t *testing.T) {
	r := newReleaseRig(t)
	old := r.proven("sha256:aaa")
	r.deploy("web-staging", "sha256:bbb")
	running := make(chan struct{})
	r.rt.runOnce = func(o OneOff) OneOffResult { return OneOffResult{} }
	r.rt.mu.Lock()
	r.rt.fail = func(op, arg string) error {
		if op == "run" && strings.HasSuffix(arg, ReleaseSuffix) {
			close(running)
			<-r.e.Engine.ctx.Done() // a long migration, until liftoff gives up on it
			return r.e.Engine.ctx.Err()
		}
		return nil
	}
	r.rt.mu.Unlock()
	r.rt.push("docker.io/acme/web:latest", "sha256:bbb")
	if _, err := r.e.Enqueue(context.Background(), Request{Deployment: "web", Image: "docker.io/acme/web", Tag: "latest", Trigger: "test"}); err != nil {
		t.Fatal(err)
	}
	<-running
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r.e.Close(ctx)
	res := r.e.next(t)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "liftoff stopped while it ran") {
		t.Errorf("the cancelled deploy: %s %v", res.Outcome, res.Err)
	}
	if c := r.e.running(t, r.rt, "web"); c.ID != old.ID {
		t.Errorf("web runs %s, want the old container", c.ID)
	}
	un, _ := r.j.Unfinished(context.Background())
	if len(un) != 1 || un[0].Step != StepRelease {
		t.Fatalf("unfinished deploys %+v, want the one stopped at its release", un)
	}
	if req := r.j.request(un[0].Request); req.outcome != "" {
		t.Errorf("its push was settled %s: the next start would not deploy it", req.outcome)
	}
}

// A production container that stopped (crashed, say) still has data worth
// a backup before the fix with migrations goes out.
func TestBackupRunsWhenTheContainerIsStopped(t *testing.T) {
	r := newReleaseRig(t)
	old := r.proven("sha256:aaa")
	r.rt.mu.Lock()
	r.rt.containers[old.ID].Running, r.rt.containers[old.ID].Status = false, "exited"
	r.rt.mu.Unlock()
	r.deploy("web-staging", "sha256:bbb")
	r.reset()
	if res := r.deploy("web", "sha256:bbb"); res.Outcome != Succeeded {
		t.Fatalf("deploy: %s %v", res.Outcome, res.Err)
	}
	if ones := r.oneOffs(); len(ones) != 2 || ones[0].Name != "web.liftoff-backup" || ones[0].Image != old.Image {
		t.Errorf("one-offs = %+v, want the backup from the stopped container's image, then the release", ones)
	}
}

// secretValues takes the secret keys' values the container was given, long
// enough to redact (MinSecretLen characters, not bytes).
func TestSecretValuesOfTheEnvironment(t *testing.T) {
	env := []string{"URL=FILESECRET-url", "SHORT=abc", "FOUR=abcd", "RUNES=äöü", "PLAIN=plain-value", "EMPTY="}
	secret := map[string]bool{"URL": true, "SHORT": true, "FOUR": true, "RUNES": true, "EMPTY": true}
	if got, want := secretValues(env, secret), []string{"FILESECRET-url", "abcd"}; !slices.Equal(got, want) {
		t.Errorf("secretValues = %q, want %q", got, want)
	}
}
