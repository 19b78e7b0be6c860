package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Successes is what promote_from (promote) and the metrics at start-up
// (seedMetrics) read of past deploys in the journal.
type Successes interface {
	// Succeeded tells whether a deploy of digest to deployment succeeded,
	// or found it running already (unchanged): promote_from.
	Succeeded(ctx context.Context, deployment, digest string) (bool, error)
	// LastSucceededAt returns when the deployment's newest successful deploy
	// ended; zero if none did. The metrics start from it.
	LastSucceededAt(ctx context.Context, deployment string) (time.Time, error)
}

// OneOffs is what backups and release commands need of a runtime.
type OneOffs interface {
	// RunOnce runs a one-off container as `docker run --rm` would: it
	// creates spec.Name from spec.Image (a container of that name left
	// behind is removed first, if liftoff's; one that is not liftoff's is
	// an error, and left alone), starts it, waits for it to exit, bounded
	// by spec.Timeout (then kills it: TimedOut), and removes it, whatever
	// happened, before it returns. An error means the engine failed (the
	// command may not have run); a command that ran and failed is a
	// result with its ExitCode. If ctx ends first, the container is
	// killed and removed, and the error is ctx's. Repeating it runs the
	// command again.
	RunOnce(ctx context.Context, spec OneOff) (OneOffResult, error)
}

// Suffixes of the one-off containers a deploy runs before its swap.
const (
	BackupSuffix  = ".liftoff-backup"
	ReleaseSuffix = ".liftoff-release"
)

// LabelRole marks a one-off container: "backup" or "release".
const LabelRole = "liftoff.role"

// outputLimit is how much of a one-off container's output is kept: the
// end of it, where a failure says why.
const outputLimit = 64 << 10

// ErrOneOff marks a backup or release command that ran and failed (a
// non-zero exit, or killed at its timeout).
var ErrOneOff = errors.New("command failed")

// promote refuses a digest that has not succeeded in the deployment the
// config says it is promoted from: production then only ever runs what
// staging proved.
func (a *attempt) promote() (Outcome, error) {
	from := a.d.PromoteFrom.Deployment
	switch {
	case from == "" || a.d.PromoteFrom.ByRevision():
		return "", nil // by revision: vouch reads the pulled image's label
	case a.e.opts.Journal == nil:
		return Refused, fmt.Errorf("promote_from %s: no history to tell what succeeded there", from)
	}
	var ok bool
	err := a.e.retry(a.ctx, a.log, StepResolve, func(ctx context.Context) error {
		var err error
		ok, err = a.e.opts.Journal.Succeeded(ctx, from, a.res.Digest)
		return err
	})
	if err != nil {
		return Failed, fmt.Errorf("promote_from %s: journal: %w", from, err)
	}
	if !ok {
		return Refused, fmt.Errorf("promote_from: digest %s never succeeded in %s; deploy it there first", a.res.Digest, from)
	}
	return "", nil
}

// backup runs the environment's backup command, if any, in a one-off
// container of its image (default: the image that runs now) with the
// backup's own environment, before anything of the new version runs. A
// first deploy with nothing running skips it unless the backup names an
// image. Its failure fails the deploy, nothing changed.
func (a *attempt) backup() (Outcome, error) {
	b := a.cfg.BackupFor(a.d)
	if b == nil {
		return "", nil
	}
	image := b.Image
	if image == "" {
		if a.cur == nil {
			a.log.Warn().Msg("backup skipped: no container of the deployment exists yet, and the backup names no image")
			return "", nil
		}
		image = a.cur.Image // stopped or not: its data is still there
	}
	env := a.cfg.Environments[a.d.Environment]
	vars, secret, err := a.cfg.BackupEnv(&env)
	if err != nil {
		return Failed, fmt.Errorf("%s: %w", StepBackup, err)
	}
	// The deployment's own secrets too: a backup may print its
	// DATABASE_URL as well as its own PGPASSWORD.
	secrets := slices.Concat(secretValues(vars, secret), a.secrets())
	spec := OneOff{Name: a.name + BackupSuffix, Cmd: b.Command, Env: vars, Volumes: b.Volumes, Networks: b.Networks,
		Labels: a.oneOffLabels("backup"), Timeout: b.Timeout, OutputLimit: outputLimit}
	out, err := a.oneOff(StepBackup, image, b.Image != "", spec, secrets)
	a.rec.BackupOutput = out
	// A backup may print data (pg_dump to stdout, table rows in an error):
	// the log gets a short tail only; the whole output is in the history,
	// for logs:<env>.
	if err != nil {
		if out != "" {
			a.log.Warn().Str("output", logTail(out)).Msg("backup output")
		}
		return Failed, err
	}
	a.log.Info().Str("image", image).Str("output", logTail(out)).Msg("backup done")
	return "", nil
}

// secrets are the values the deployment's container must never show:
// those of its secret variables, and every value a ${VAR} brought into
// the config, wherever it went (a command's arguments included).
func (a *attempt) secrets() []string {
	return slices.Concat(secretValues(a.spec.Env, a.cfg.SecretKeys(a.d)), a.cfg.SecretValues())
}

// Tail bounds of a one-off's output in the log: the history keeps the
// rest.
const (
	tailLines    = 5
	tailLineLen  = 200
	tailMaxBytes = 1 << 10
)

// logTail is the end of a one-off's (already redacted) output as the log
// shows it: its last tailLines lines, each cut at tailLineLen characters,
// and tailMaxBytes at most in all.
func logTail(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	lines = lines[max(len(lines)-tailLines, 0):]
	for i, l := range lines {
		if r := []rune(l); len(r) > tailLineLen {
			lines[i] = string(r[:tailLineLen]) + "..."
		}
	}
	s := strings.Join(lines, "\n")
	if len(s) > tailMaxBytes {
		s = "..." + strings.ToValidUTF8(s[len(s)-tailMaxBytes:], "")
	}
	return s
}

// release runs the deployment's release command (migrations, say) once,
// in a one-off container of the new image with the deployment's final
// environment, volumes and networks, before anything is stopped or
// started. Its failure fails the deploy; the old container keeps serving.
func (a *attempt) release() (Outcome, error) {
	r := a.d.Release
	if len(r.Command) == 0 {
		return "", nil
	}
	spec := OneOff{Name: a.name + ReleaseSuffix, Cmd: r.Command, Env: a.spec.Env, Volumes: a.spec.Volumes,
		Networks: a.spec.Networks, Labels: a.oneOffLabels("release"), Timeout: r.Timeout, OutputLimit: outputLimit}
	out, err := a.oneOff(StepRelease, a.ref, false, spec, a.secrets())
	a.rec.ReleaseOutput = out
	if out != "" {
		a.log.Info().Str("output", logTail(out)).Msg("release output")
	}
	if err != nil {
		return Failed, err
	}
	return "", nil
}

// oneOff runs spec from image as step (pulling the image first if pull),
// and returns its output with the secrets redacted.
func (a *attempt) oneOff(step, image string, pull bool, spec OneOff, secrets []string) (string, error) {
	rt := a.rt
	var res OneOffResult
	err := a.step(step, spec.Timeout+a.e.opts.PullTimeout+a.e.opts.OpTimeout, func(ctx context.Context) error {
		ref := image
		if pull {
			name, suffix := splitRef(image)
			repo, cred, err := a.cfg.PullRepo(name)
			if err != nil {
				return fmt.Errorf("registry settings for %s: %w", image, err)
			}
			ref = repo + suffix
			if err := rt.Pull(ctx, ref, AuthOf(cred)); err != nil {
				return err
			}
		}
		spec.Image = ref
		var err error
		res, err = rt.RunOnce(ctx, spec)
		return err
	})
	out := redact(res.Output, spec.OutputLimit, secrets)
	switch {
	case err != nil && a.ctx.Err() != nil:
		// liftoff is stopping: the one-off was killed and removed, and
		// nothing else was touched. The deploy stays unfinished, so that
		// the next start closes it and deploys the push again, as after
		// a crash.
		a.unrepaired = true
		return out, fmt.Errorf("%s: liftoff stopped while it ran: %w", step, err)
	case err != nil:
		return out, err
	case res.TimedOut:
		return out, fmt.Errorf("%s: %w: timed out after %s and was killed", step, ErrOneOff, spec.Timeout)
	case res.ExitCode != 0:
		return out, fmt.Errorf("%s: %w: exit code %d%s", step, ErrOneOff, res.ExitCode, lastLine(out))
	}
	return out, nil
}

func (a *attempt) oneOffLabels(role string) map[string]string {
	return map[string]string{
		LabelManaged: "true", LabelDeployment: a.d.Name, LabelEnvironment: a.d.Environment,
		LabelDigest: a.res.Digest, LabelRole: role,
	}
}

// redact returns a one-off container's output with every secret value
// replaced, also where it appears URL- or JSON-escaped. Output cut at limit may begin inside a secret, where the
// secret's end would not be recognized: its first, partial line goes (or,
// when it is all one line, as much as the longest secret). A secret of
// several lines (a key from a file) is also redacted line by line, so that
// a part of it printed alone, or cut, does not show either.
func redact(output []byte, limit int, secrets []string) string {
	s := strings.ToValidUTF8(string(output), "\uFFFD")
	if limit > 0 && len(output) >= limit {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = "[...]" + s[i:]
		} else {
			longest := 0
			for _, v := range secrets {
				longest = max(longest, len(v))
			}
			s = "[...]" + s[min(longest, len(s)):]
		}
	}
	var pieces []string
	for _, v := range secrets {
		// As written, and as a URL or a JSON string would carry it (a
		// password in a DATABASE_URL, a key in a JSON log line).
		pieces = append(pieces, v, url.QueryEscape(v), url.PathEscape(v), strings.Trim(strconv.Quote(v), `"`))
		if strings.Contains(v, "\n") {
			for _, l := range strings.Split(v, "\n") {
				if l = strings.TrimSpace(l); utf8.RuneCountInString(l) >= deployments.MinSecretLen {
					pieces = append(pieces, l)
				}
			}
		}
	}
	// Longest first, so that a secret containing another goes whole.
	slices.SortFunc(pieces, func(a, b string) int { return len(b) - len(a) })
	for _, v := range pieces {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// lastLine is ": <the output's last non-empty line>", bounded, or "".
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if l == "" {
		return ""
	}
	if r := []rune(l); len(r) > 200 {
		l = string(r[:200]) + "..."
	}
	return ": " + l
}

// secretValues returns the values in env (KEY=VALUE lines) of the secret
// keys, long enough to be redacted: those the container was given, even
// if a secret file changed since.
func secretValues(env []string, secret map[string]bool) []string {
	var out []string
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); secret[k] && utf8.RuneCountInString(v) >= deployments.MinSecretLen {
			out = append(out, v)
		}
	}
	return out
}

// splitRef splits an image reference into its repository and its ":tag"
// or "@digest" (":latest" when it has neither).
func splitRef(image string) (repo, suffix string) {
	if i := strings.Index(image, "@"); i >= 0 {
		return image[:i], image[i:]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i], image[i:]
	}
	return image, ":latest"
}

// removeOneOffs removes the backup and release containers an interrupted
// deploy of d left behind.
func (e *Engine) removeOneOffs(ctx context.Context, d *deployments.Deployment) error {
	for _, suffix := range []string{BackupSuffix, ReleaseSuffix} {
		name := d.ContainerName() + suffix
		c, err := e.inspect(ctx, d, name)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return fmt.Errorf("inspect %s: %w", name, err)
		case !c.Managed() || c.Labels[LabelDeployment] != d.Name:
			continue // not ours
		}
		rt, err := e.runtime(d) // found: it answered the inspect
		if err != nil {
			return err
		}
		if err := rt.Remove(ctx, c.ID); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		e.log.Warn().Str("deployment", d.Name).Str("container", name).Msg("removed a one-off container an interrupted deploy left")
	}
	return nil
}
