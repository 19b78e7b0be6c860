package deploy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// outputConfig: the release command gets a password through ${VAR} in its
// arguments (not in its environment), and the backup fails.
const outputConfig = `
hooks: [{source: dockerhub, token: 0123456789abcdef0123456789abcdef}]
environments:
  production:
    backup:
      command: [pg_dump, --file, /backups/dump.sql]
      secret_files: {PGPASSWORD: pgpassword}
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    release: {command: [sh, -c, "migrate --password '${DB_PASSWORD}'"]}
    health: {min_uptime: 10ms}
`

const argSecret = "p@ss/word from ${VAR}"

// outputRig is a releaseRig on outputConfig whose engine logs to logs.
func outputRig(t *testing.T) (*releaseRig, *testenv.SyncBuffer) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pgpassword"), []byte(backupSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := deployments.Parse([]byte(outputConfig), dir, func(k string) (string, bool) {
		return argSecret, k == "DB_PASSWORD"
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &testenv.SyncBuffer{}
	r := &releaseRig{t: t, cfg: cfg, rt: newFakeRuntime(), j: newRCJournal()}
	e := &rcEngine{results: make(chan Result, 16)}
	e.Engine = New(Options{Runtime: r.rt, Config: func() *deployments.Config { return cfg }, Journal: r.j,
		Logger: zerolog.New(logs), Registerer: prometheus.NewRegistry(), OnDone: func(res Result) { e.results <- res },
		Retries: 2, RetryBackoff: time.Millisecond, waits: testWaits})
	t.Cleanup(func() { e.Close(t.Context()) })
	r.e = e
	return r, logs
}

// logged returns the "output" field of the log entries whose message
// starts with prefix.
func logged(t *testing.T, logs *testenv.SyncBuffer, prefix string) []string {
	t.Helper()
	var outs []string
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(fmt.Sprint(e["message"]), prefix) {
			outs = append(outs, fmt.Sprint(e["output"]))
		}
	}
	return outs
}

// TestReleaseRedactsVarsInArguments: a value that ${VAR} expanded into the
// release command's arguments is a secret: echoed by the command as is,
// URL-escaped or JSON-escaped, it is redacted from the output the history
// keeps, the log and the deploy's error.
func TestReleaseRedactsVarsInArguments(t *testing.T) {
	r, logs := outputRig(t)
	r.rt.runOnce = func(o OneOff) OneOffResult {
		if o.Name != "web.liftoff-release" {
			return OneOffResult{}
		}
		out := "+ " + strings.Join(o.Cmd, " ") + "\n" +
			"connecting to postgres://app:" + url.QueryEscape(argSecret) + "@db/app\n" +
			`{"level":"error","password":"` + strings.Trim(fmt.Sprintf("%q", argSecret), `"`) + `"}` + "\n" +
			"FATAL: password authentication failed for " + argSecret + "\n"
		return OneOffResult{ExitCode: 1, Output: []byte(out)}
	}
	res := r.deploy("web", "sha256:aaa")
	if res.Outcome != Failed || res.Err == nil {
		t.Fatalf("deploy: %s %v, want failed", res.Outcome, res.Err)
	}
	rec := r.record(res)
	everywhere := map[string]string{"the history's output": rec.ReleaseOutput, "the error": res.Err.Error(), "the log": logs.String()}
	for where, text := range everywhere {
		for _, form := range []string{argSecret, url.QueryEscape(argSecret), url.PathEscape(argSecret)} {
			if strings.Contains(text, form) {
				t.Errorf("%s shows the ${VAR} value (as %q):\n%s", where, form, text)
			}
		}
	}
	if strings.Count(rec.ReleaseOutput, "[redacted]") != 4 || !strings.Contains(res.Err.Error(), "password authentication failed for [redacted]") {
		t.Errorf("history output %q, error %v: want each value redacted and the last line in the error", rec.ReleaseOutput, res.Err)
	}
}

// TestBackupFailureLogsAShortTail: a failed backup that printed table data
// logs only its last lines, each cut short, redacted; the history keeps
// the output (its last 64 KiB), redacted, for logs:<env>; the error says
// why in one line.
func TestBackupFailureLogsAShortTail(t *testing.T) {
	r, logs := outputRig(t)
	r.rt.push("docker.io/acme/web:latest", "sha256:aaa")
	if res := r.deploy("web", "sha256:aaa"); res.Outcome != Succeeded {
		t.Fatalf("first deploy: %s %v", res.Outcome, res.Err)
	}
	var dump strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&dump, "%d\talice@example.com\t%s\t%s\n", i, strings.Repeat("x", 20), backupSecret)
	}
	dump.WriteString("pg_dump: error: " + strings.Repeat("query failed ", 100) + "\n")
	r.rt.runOnce = func(o OneOff) OneOffResult {
		if o.Name == "web.liftoff-backup" {
			return OneOffResult{ExitCode: 1, Output: []byte(dump.String())}
		}
		return OneOffResult{}
	}
	res := r.deploy("web", "sha256:bbb")
	if res.Outcome != Failed || res.Err == nil || !strings.HasPrefix(res.Err.Error(), "backup: command failed: exit code 1: pg_dump: error:") ||
		strings.Contains(res.Err.Error(), "\n") {
		t.Fatalf("deploy: %s %v, want failed, saying why in one line", res.Outcome, res.Err)
	}
	outs := logged(t, logs, "backup output")
	if len(outs) != 1 {
		t.Fatalf("backup output logged %d times, want once; log:\n%s", len(outs), logs.String())
	}
	if out := outs[0]; len(out) > tailMaxBytes+3 || strings.Count(out, "\n") > tailLines-1 || strings.Contains(out, backupSecret) ||
		!strings.Contains(out, "1999\talice@example.com") || !strings.Contains(out, "[redacted]") {
		t.Errorf("backup output logged: %d bytes, %d lines, want at most %d bytes in %d lines, redacted:\n%s",
			len(out), strings.Count(out, "\n")+1, tailMaxBytes, tailLines, out)
	}
	rec := r.record(res)
	if n := len(rec.BackupOutput); n < 60<<10 || strings.Contains(rec.BackupOutput, backupSecret) || !strings.Contains(rec.BackupOutput, "1999\talice") {
		t.Errorf("history's backup output: %d bytes, want the last 64 KiB, redacted", n)
	}
}
