package deployments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/docker/docker-credential-helpers/client"
	helpercreds "github.com/docker/docker-credential-helpers/credentials"
)

// helperTimeout bounds one run of a credential helper: some ask a cloud
// API (ecr-login, gcloud).
const helperTimeout = 30 * time.Second

// maxHelperOutput is how much of a helper's stdout, and of its stderr, is
// kept.
const maxHelperOutput = 64 << 10

// errNoCredentials is a helper's "credentials not found": an error for a
// credential_helper, anonymous pulls for a docker_config's helper (as
// docker pull does).
var errNoCredentials = errors.New("it has no credentials for this server")

// runHelper asks docker-credential-<helper> for server's credentials by
// the credential helper protocol (the server on stdin, JSON on stdout),
// through docker-credential-helpers' client. A Username of "<token>"
// makes the Secret an identity token. Errors name the helper and the
// server, the exit status and at most a short line of stderr with
// anything like a token blanked; never stdout, which may hold a secret.
func runHelper(ctx context.Context, helper, server string) (Credentials, error) {
	if err := checkHelperName(helper); err != nil {
		return Credentials{}, fmt.Errorf("credential helper %q: %w", helper, err)
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	bin := "docker-credential-" + helper
	var run *helperRun
	got, err := client.Get(func(args ...string) client.Program {
		run = &helperRun{cmd: exec.CommandContext(ctx, bin, args...)}
		return run
	}, server)
	switch {
	case helpercreds.IsErrCredentialsNotFound(err):
		return Credentials{}, fmt.Errorf("%s get %s: %w", bin, server, errNoCredentials)
	case run != nil && run.err != nil:
		return Credentials{}, run.failure(ctx, bin, server)
	case err != nil:
		return Credentials{}, fmt.Errorf("%s get %s: its answer is not the credential helper protocol's JSON", bin, server)
	case got.Secret == "":
		return Credentials{}, fmt.Errorf("%s get %s: answered no secret", bin, server)
	case got.Username == "<token>":
		return Credentials{IdentityToken: got.Secret}, nil
	}
	return Credentials{Username: got.Username, Password: got.Secret}, nil
}

var _ client.Program = (*helperRun)(nil)

// helperRun is one run of a helper, as docker-credential-helpers' client
// drives it; unlike the client's own, it stops with ctx and keeps stderr
// to itself (the client's sends it to liftoff's log).
type helperRun struct {
	cmd    *exec.Cmd
	stderr capped
	err    error // the run's, if it failed
}

func (r *helperRun) Input(in io.Reader) { r.cmd.Stdin = in }

func (r *helperRun) Output() ([]byte, error) {
	var out capped
	r.cmd.Stdout, r.cmd.Stderr = &out, &r.stderr
	r.cmd.WaitDelay = time.Second // a child holding the pipes open
	r.err = r.cmd.Run()
	return out.b, r.err
}

// failure says why the run failed: not found, timed out, its exit status,
// and its first line of stderr, redacted.
func (r *helperRun) failure(ctx context.Context, bin, server string) error {
	var why string
	var ee *exec.ExitError
	switch {
	case errors.Is(r.err, exec.ErrNotFound):
		why = "not found on PATH"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		why = fmt.Sprintf("no answer within %s", helperTimeout)
	case ctx.Err() != nil:
		return fmt.Errorf("%s get %s: %w", bin, server, context.Cause(ctx))
	case errors.As(r.err, &ee):
		why = ee.ProcessState.String() // "exit status 1", "signal: killed"
	default:
		why = r.err.Error() // could not start: names the program
	}
	if line := firstLine(r.stderr.b); line != "" {
		why += " (stderr: " + line + ")"
	}
	return fmt.Errorf("%s get %s: %s", bin, server, why)
}

// maxLine is how much of a helper's stderr line an error shows.
const maxLine = 120

// secretish are words that may be a token, a key or a password: long
// enough, with letters and digits both.
var secretish = regexp.MustCompile(`[^\s"'` + "`" + `,;()\[\]{}]{8,}`)

// firstLine is the first non-empty line of out, without control
// characters, its secret-looking words blanked, cut at maxLine bytes.
func firstLine(out []byte) string {
	var line string
	for l := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(l); line != "" {
			break
		}
	}
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, line)
	line = secretish.ReplaceAllStringFunc(line, func(w string) string {
		if strings.ContainsFunc(w, unicode.IsLetter) && strings.ContainsFunc(w, unicode.IsDigit) {
			return "[redacted]"
		}
		return w
	})
	if len(line) > maxLine {
		cut := maxLine
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut] + "…"
	}
	return line
}

// capped keeps the first maxHelperOutput bytes written to it.
type capped struct{ b []byte }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxHelperOutput - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
