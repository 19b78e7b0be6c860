package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// liftoffCLI runs a client command of liftoff against the daemon, as a
// user at a shell would (LIFTOFF_SERVER and LIFTOFF_TOKEN set), and
// returns its exit code and output.
func (d *daemon) liftoffCLI(token string, args ...string) cliResult {
	d.t.Helper()
	env := map[string]string{"LIFTOFF_SERVER": d.base, "LIFTOFF_TOKEN": token}
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := runClient(context.Background(), args, &out, &errOut, lookup, cliOptions{Poll: 50 * time.Millisecond})
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
	r = d.liftoffCLI(tokApprover, "approve", prod, "--wait")
	if r.code != exitOK || !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("approve --wait: %s", r)
	}
	d.next()
	d.serving(prod, "p1")
}
