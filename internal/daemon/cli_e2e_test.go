package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/cli"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// The exit codes of the command line.
const (
	exitOK     = cli.ExitOK
	exitFailed = cli.ExitFailed
	exitUsage  = cli.ExitUsage
)

// run runs liftoff's command line in-process, as main does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	return cli.Run(ctx, args, cli.Env{Stdout: stdout, Stderr: stderr, Lookup: lookup})
}

// writeConfig writes text to a config file of the test's own.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "liftoff.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cliResult is what a client command did.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// liftoffCLI runs a client command of liftoff against the daemon, as a
// user at a shell would (LIFTOFF_SERVER and LIFTOFF_TOKEN set), and
// returns its exit code and output.
func (d *daemon) liftoffCLI(token string, args ...string) cliResult {
	d.t.Helper()
	env := map[string]string{"LIFTOFF_SERVER": d.base, "LIFTOFF_TOKEN": token}
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := cli.Run(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errOut, Lookup: lookup, Poll: 50 * time.Millisecond})
	r := cliResult{code, out.String(), errOut.String()}
	if strings.Contains(r.stdout+r.stderr, token) {
		d.t.Errorf("liftoff %v printed the token:\n%s", args, r)
	}
	return r
}

// TestCLIAgainstTheDaemon drives a real liftoff with the client commands:
// deploy --wait that succeeds and one that rolls back (exit codes), status,
// history, pause and resume, approve --wait.
func TestCLIAgainstTheDaemon(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, apiConfig)
	staging, prod := d.prefix+"-staging", d.prefix+"-prod"
	v1 := d.push("v1", "v1")
	d.pushImage("v2", testenv.AppImage{Version: "v2", Env: []string{"TESTAPP_EXIT=3"}})

	r := d.liftoffCLI(tokStaging, "deploy", staging, "v1", "--wait")
	if r.code != exitOK || !strings.Contains(r.stdout, "succeeded: "+staging+" runs v1 ("+v1[len("sha256:"):len("sha256:")+12]+")") {
		t.Fatalf("deploy --wait of v1: %s", r)
	}
	for _, step := range []string{"gate"} { // the longest: the others may pass between two looks
		if !strings.Contains(r.stdout, "  "+step) {
			t.Errorf("deploy --wait did not show step %s:\n%s", step, r.stdout)
		}
	}
	d.next()
	d.serving(staging, "v1")

	// v2 exits at once: rolled back, exit 1, and v1 serves.
	r = d.liftoffCLI(tokStaging, "deploy", staging, "v2", "--wait")
	if r.code != exitFailed || !strings.Contains(r.stderr, "rolled_back") {
		t.Fatalf("deploy --wait of a broken v2: %s", r)
	}
	d.next()
	d.serving(staging, "v1")

	// status and history, as a reader.
	r = d.liftoffCLI(tokRead, "status")
	if r.code != exitOK || !strings.Contains(r.stdout, staging) || !strings.Contains(r.stdout, prod) || !strings.Contains(r.stdout, "rolled_back") {
		t.Errorf("status: %s", r)
	}
	r = d.liftoffCLI(tokRead, "history", staging)
	if r.code != exitOK || strings.Count(r.stdout, staging) != 2 || !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("history: %s", r)
	}
	r = d.liftoffCLI(tokRead, "status", "--json")
	if r.code != exitOK || !strings.HasPrefix(strings.TrimSpace(r.stdout), "{") || !strings.Contains(r.stdout, `"deployments"`) {
		t.Errorf("status --json: %s", r)
	}

	// A token without the scope: exit 1, the scope named; a bad token.
	r = d.liftoffCLI(tokStaging, "pause", prod)
	if r.code != exitFailed || !strings.Contains(r.stderr, "deploy:production") {
		t.Errorf("pause of production with deploy:staging: %s", r)
	}
	r = d.liftoffCLI(tokUnknown, "status")
	if r.code != exitFailed {
		t.Errorf("status with an unknown token: %s", r)
	}

	// Pause, push (held), resume: deployed.
	if r = d.liftoffCLI(tokStaging, "pause", staging); r.code != exitOK {
		t.Fatalf("pause: %s", r)
	}
	d.push("v3", "v3")
	d.hook("v3")
	d.quiet()
	if r = d.liftoffCLI(tokRead, "status"); !strings.Contains(r.stdout, "PAUSED") {
		t.Errorf("status while paused: %s", r)
	}
	if r = d.liftoffCLI(tokStaging, "resume", staging); r.code != exitOK {
		t.Fatalf("resume: %s", r)
	}
	d.next()
	d.serving(staging, "v3")

	// Production: a push waits; approve --wait deploys it.
	d.push("latest", "p1")
	d.hook("latest")
	d.quiet()
	if r = d.liftoffCLI(tokRead, "status"); !strings.Contains(r.stdout, "PENDING") {
		t.Errorf("status with a push pending: %s", r)
	}
	// Without --request, approve shows the push and the command that
	// approves it, and approves nothing (showing it takes read, which
	// the approver's token lacks here: someone who reads passes it on).
	if r = d.liftoffCLI(tokApprover, "approve", prod); r.code != exitFailed || !strings.Contains(r.stderr, "lacks scope read") {
		t.Errorf("approve without --request nor read: %s", r)
	}
	r = d.liftoffCLI(tokRead, "approve", prod)
	m := regexp.MustCompile(`--request (\d+) --digest (sha256:[0-9a-f]{64})`).FindStringSubmatch(r.stderr)
	if r.code != exitUsage || m == nil || !strings.Contains(r.stdout, m[2]) {
		t.Fatalf("approve without --request: %s", r)
	}
	r = d.liftoffCLI(tokApprover, "approve", prod, "--request", m[1], "--digest", m[2], "--wait")
	if r.code != exitOK || !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("approve --wait: %s", r)
	}
	d.next()
	d.serving(prod, "p1")
}

// TestBinaryServesTheAPIAndTheCLI runs the liftoff binary twice over, as a
// user would: `liftoff serve` with API tokens, and its client commands
// against it — deploy --wait, status, history --json — with the token in
// LIFTOFF_TOKEN and in --token-file.
func TestBinaryServesTheAPIAndTheCLI(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	bin := liftoffBinary(t)
	eng := testenv.Engine(t)
	d := &daemon{t: t, eng: eng, reg: eng.Registry(t)}
	d.prefix = eng.UniqueName(t, "bin")
	d.repo = "acme/" + d.prefix
	path := filepath.Join(t.TempDir(), "liftoff.yaml")
	writeDaemonConfig(t, d, path, apiConfig)
	p := startLiftoff(t, bin, path)
	staging := d.prefix + "-staging"
	d.push("v1", "v1")

	cli := func(env []string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append([]string{"LIFTOFF_SERVER=" + p.base, "PATH=" + os.Getenv("PATH")}, env...)
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("liftoff %v: %v", args, err)
		}
		for _, tok := range []string{tokStaging, tokRead} {
			if strings.Contains(string(out), tok) {
				t.Errorf("liftoff %v printed a token:\n%s", args, out)
			}
		}
		return code, string(out)
	}
	code, out := cli([]string{"LIFTOFF_TOKEN=" + tokStaging}, "deploy", staging, "v1", "--wait")
	if code != exitOK || !strings.Contains(out, "succeeded: "+staging+" runs v1") {
		t.Fatalf("liftoff deploy --wait: exit %d\n%s\n%s", code, out, p.logs.String())
	}
	d.serving(staging, "v1")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(tokRead+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out = cli(nil, "status", "--token-file", file); code != exitOK || !strings.Contains(out, staging) || !strings.Contains(out, "v1") {
		t.Errorf("liftoff status: exit %d\n%s", code, out)
	}
	if code, out = cli(nil, "history", staging, "--json", "--token-file", file); code != exitOK || !strings.Contains(out, `"outcome": "succeeded"`) && !strings.Contains(out, `"outcome":"succeeded"`) {
		t.Errorf("liftoff history --json: exit %d\n%s", code, out)
	}
	if code, out = cli(nil, "status"); code != exitUsage {
		t.Errorf("liftoff status without a token: exit %d, want %d\n%s", code, exitUsage, out)
	}
	if strings.Contains(p.logs.String(), tokStaging) || strings.Contains(p.logs.String(), tokRead) {
		t.Error("the daemon logged a token")
	}
}
