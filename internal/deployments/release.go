package deployments

import (
	"fmt"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// Release is deployments[].release: a command run once, as `docker run
// IMAGE COMMAND...` would (after the image's entrypoint, if it has one), in
// a one-off container of the new image with the deployment's final
// environment, volumes and networks, after the pull and the policy check
// and before anything is stopped or started — migrations, say. The zero
// value (no Command) is no release phase.
type Release struct {
	// Command is the command and its arguments, e.g. [python, manage.py,
	// migrate, --noinput]; non-empty once release is given.
	Command []string `yaml:"command"`
	// Timeout bounds the run (DefaultReleaseTimeout, 10m, when not
	// given); the container is killed when it runs out.
	Timeout time.Duration `yaml:"timeout"`

	given        bool // the file has release:, even as {}
	timeoutGiven bool // the file gave timeout, even as 0s
}

// UnmarshalYAML decodes release and remembers that it was given, so that
// an empty release is refused instead of meaning "none", and whether its
// timeout was given, so that "timeout: 0s" is refused instead of turning
// into the default. The function form keeps the decoder's strictness and
// its line-numbered type errors.
func (r *Release) UnmarshalYAML(unmarshal func(any) error) error {
	// Named so that yaml's type errors say "into deployments.Release".
	type Release struct {
		Command []string       `yaml:"command"`
		Timeout *time.Duration `yaml:"timeout"`
	}
	var raw Release
	err := unmarshal(&raw)
	r.Command, r.Timeout, r.given, r.timeoutGiven = raw.Command, 0, true, false
	if raw.Timeout != nil {
		r.Timeout = *raw.Timeout
		// After a type error the file is refused anyway.
		r.timeoutGiven = err == nil
	}
	return err
}

// Backup is environments.<name>.backup: a command run before each deploy of
// a deployment of the environment (before the release, or before the swap
// where there is none), in a one-off container of Image (by default the
// image that runs now), with its own environment — not the environment's
// or the deployment's variables (see BackupEnv) —, volumes and networks.
// e.g. pg_dump into a volume. Its failure fails the deploy.
type Backup struct {
	// Command is the command and its arguments, as for Release; required.
	Command []string `yaml:"command"`
	// Image is a full image reference (postgres:16,
	// ghcr.io/acme/tools@sha256:...), normalized by Validate to
	// docker.io/library/postgres:16: a tag, :latest when none was given, or
	// a digest alone (Docker ignores a tag given with a digest). "" means
	// the image of the container that runs now.
	Image       string            `yaml:"image"`
	Env         map[string]string `yaml:"env"`
	EnvFiles    []string          `yaml:"env_files"`
	SecretFiles map[string]string `yaml:"secret_files"`
	Volumes     []string          `yaml:"volumes"`  // docker run -v: src:dst[:opts]
	Networks    []string          `yaml:"networks"` // no aliases: nothing should find it
	// Timeout bounds the run (DefaultBackupTimeout, 30m, when not given).
	Timeout time.Duration `yaml:"timeout"`

	timeoutGiven bool            // the file gave timeout, even as 0s
	path         string          // "environments.production.backup", for errors; set by Validate
	secretEnv    map[string]bool // keys of Env written with ${VAR}
}

// UnmarshalYAML decodes backup and remembers whether its timeout was
// given, as Release's does.
func (b *Backup) UnmarshalYAML(unmarshal func(any) error) error {
	// Named so that yaml's type errors say "into deployments.Backup".
	type Backup struct {
		Command     []string          `yaml:"command"`
		Image       string            `yaml:"image"`
		Env         map[string]string `yaml:"env"`
		EnvFiles    []string          `yaml:"env_files"`
		SecretFiles map[string]string `yaml:"secret_files"`
		Volumes     []string          `yaml:"volumes"`
		Networks    []string          `yaml:"networks"`
		Timeout     *time.Duration    `yaml:"timeout"`
	}
	var raw Backup
	err := unmarshal(&raw)
	b.Command, b.Image, b.Env, b.EnvFiles = raw.Command, raw.Image, raw.Env, raw.EnvFiles
	b.SecretFiles, b.Volumes, b.Networks = raw.SecretFiles, raw.Volumes, raw.Networks
	b.Timeout, b.timeoutGiven = 0, false
	if raw.Timeout != nil {
		b.Timeout = *raw.Timeout
		b.timeoutGiven = err == nil
	}
	return err
}

// checkRelease checks a deployment's release, if given, and fills in its
// default timeout. null tells that the file has release: with no value,
// which the decoder leaves as if it were absent: refused like {}, since an
// empty release is more likely a mistake than a way to say "none".
func checkRelease(p *problems, at string, r *Release, null bool) {
	if null {
		p.addf(at, "empty: give its command, e.g. {command: [python, manage.py, migrate, --noinput]}, or leave release out")
		return
	}
	if !r.given && len(r.Command) == 0 && r.Timeout == 0 && !r.timeoutGiven {
		return // no release phase
	}
	checkCommand(p, at, r.Command, "[python, manage.py, migrate, --noinput]")
	checkOneOffTimeout(p, at+".timeout", &r.Timeout, r.timeoutGiven, DefaultReleaseTimeout, "10m")
}

// checkBackup checks an environment's backup, normalizes its image and
// fills in its default timeout.
func (c *Config) checkBackup(p *problems, at string, b *Backup) {
	b.path = at
	checkCommand(p, at, b.Command, `[sh, -c, "pg_dump \"$DATABASE_URL\" > /backups/dump.sql"]`)
	if b.Image != "" {
		b.Image = normalizeRef(p, at+".image", b.Image)
	}
	checkEnvMap(p, at+".env", b.Env)
	c.checkEnvFiles(p, at+".env_files", b.EnvFiles)
	c.checkSecretFiles(p, at+".secret_files", b.SecretFiles)
	checkVolumes(p, at, b.Volumes)
	checkNetworks(p, at, b.Networks)
	checkOneOffTimeout(p, at+".timeout", &b.Timeout, b.timeoutGiven, DefaultBackupTimeout, "30m")
}

// checkCommand checks the command of the one-off container at (a release
// or a backup): a list of at least one argument, none empty. When yaml
// could not decode the one-off at all (release: [a, b]), its error says
// it already.
func checkCommand(p *problems, at string, cmd []string, example string) {
	cp := at + ".command"
	if len(cmd) == 0 {
		if !p.done[at] {
			p.addf(cp, "missing: the command to run, as a list, e.g. %s", example)
		}
		return
	}
	for j, a := range cmd {
		ap := fmt.Sprintf("%s[%d]", cp, j)
		switch {
		case a == "":
			p.addf(ap, "empty argument")
		case strings.IndexByte(a, 0) >= 0:
			p.addf(ap, "contains a NUL byte, which no command argument can hold")
		}
	}
}

// checkOneOffTimeout refuses a timeout given as zero or less and fills in
// def when none was given.
func checkOneOffTimeout(p *problems, at string, t *time.Duration, given bool, def time.Duration, example string) {
	switch {
	case (given || *t != 0) && *t <= 0:
		p.addf(at, "must be positive, e.g. %s (the default): the container is killed when it runs out", example)
	case *t == 0:
		*t = def
	}
}

// normalizeRef checks a full image reference (with a tag or a digest, or
// neither) and returns its normalized form: docker.io/library/postgres:16
// for postgres:16, :latest added when it has neither, and the digest alone
// when it has both (what Docker pulls then). On error it returns s.
func normalizeRef(p *problems, at, s string) string {
	named, err := imageref.ParseRepo(s)
	if err != nil {
		p.addLib(at, "invalid image: want a reference such as postgres:16 or ghcr.io/acme/tools@sha256:<digest>", err)
		return s
	}
	if d, ok := named.(reference.Digested); ok {
		if c, err := reference.WithDigest(reference.TrimNamed(named), d.Digest()); err == nil {
			return c.String()
		}
	}
	return reference.TagNameOnly(named).String()
}

// BackupFor returns the backup of d's environment, or nil when d has no
// environment or its environment no backup. It belongs to the config:
// do not modify it.
func (c *Config) BackupFor(d *Deployment) *Backup {
	if d == nil || d.Environment == "" || d.PreviewOf != "" {
		return nil // a preview never runs the backup
	}
	b := c.Environments[d.Environment].Backup
	if b == nil || len(b.Command) == 0 {
		return nil
	}
	return b
}

// BackupEnv returns the environment of e's backup container as sorted
// KEY=VALUE lines — its own variables only, env < env_files < secret_files,
// never the environment's or a deployment's — and which keys are secret
// (set by a file or by ${VAR}: their values must never be shown). Files
// are read now. Errors name the field and the file, never a value. An
// environment without a backup has none: nil, nil, nil.
func (c *Config) BackupEnv(e *Environment) ([]string, map[string]bool, error) {
	if e == nil || e.Backup == nil {
		return nil, nil, nil
	}
	b := e.Backup
	at := b.path
	if at == "" {
		at = "backup"
	}
	l := newLayers(len(b.Env) + len(b.SecretFiles) + 8)
	c.addLayers(l, at, b.Env, b.secretEnv, b.EnvFiles, b.SecretFiles)
	if err := l.err(); err != nil {
		return nil, nil, err
	}
	return l.lines(), l.secretKeys(), nil
}
