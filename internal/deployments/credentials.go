package deployments

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/cli/cli/config/configfile"
	clicreds "github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
)

// dockerHubKey is the server Docker keeps Docker Hub's credentials under,
// in a config.json and in credential helpers.
const dockerHubKey = "https://index.docker.io/v1/"

// maxDockerConfig bounds the config.json read: a larger one is cut and
// fails to parse.
const maxDockerConfig = 1 << 20

// serverKey is what docker looks a registry host up as in a config.json and
// asks a credential helper for.
func serverKey(host string) string {
	if host == "docker.io" {
		return dockerHubKey
	}
	return host
}

// CredentialSource gives one registry's credentials, from its
// credential_helper or docker_config, when a call needs them. It is made
// by PullRepo and safe for concurrent use.
type CredentialSource struct {
	host   string // normalized: docker.io, ghcr.io
	helper string // credential_helper
	config string // docker_config, resolved against the config's directory
	cache  *helperCache
}

func (c *Config) credentialSource(host string, r Registry) *CredentialSource {
	s := &CredentialSource{host: host, helper: r.CredentialHelper, cache: c.helpers}
	if r.DockerConfig != "" {
		s.config = c.resolve(r.DockerConfig)
	}
	return s
}

// Fetch returns the credentials to send now. A helper's answer is kept
// until the registry refuses it: refused, when not zero, are credentials
// the registry just refused (401, or 403 as an expired ECR token gets),
// and the helper is asked again, unless another caller has renewed them
// already. A docker_config is read at every call, as password_file is;
// the host's helper in it (credHelpers, else credsStore) is cached the
// same way, and a host it has nothing for is pulled anonymously, as docker
// pull does. Errors name the field, the helper and the host, never a
// secret.
func (s *CredentialSource) Fetch(ctx context.Context, refused Credentials) (Credentials, error) {
	key := serverKey(s.host)
	if s.helper != "" {
		cr, err := s.cache.get(ctx, s.helper, key, refused)
		if err != nil {
			return Credentials{}, fmt.Errorf("registries.%s.credential_helper: %w", s.host, err)
		}
		return cr, nil
	}
	cf, err := loadDockerConfig(s.config)
	if err != nil {
		return Credentials{}, fmt.Errorf("registries.%s.docker_config: %w", s.host, err)
	}
	if h := configHelper(cf, key); h != "" {
		cr, err := s.cache.get(ctx, h, key, refused)
		if errors.Is(err, errNoCredentials) {
			return Credentials{}, nil
		}
		if err != nil {
			return Credentials{}, fmt.Errorf("registries.%s.docker_config: %w", s.host, err)
		}
		return cr, nil
	}
	ac, _ := clicreds.NewFileStore(cf).Get(key) // never fails
	return Credentials{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken}, nil
}

// configHelper is the credential helper a config.json names for a server:
// its credHelpers entry, else its credsStore, as docker uses them.
func configHelper(cf *configfile.ConfigFile, key string) string {
	if h, ok := cf.CredentialHelpers[key]; ok {
		return h
	}
	return cf.CredentialsStore
}

// loadDockerConfig reads a Docker config.json, or the one in a directory
// (as DOCKER_CONFIG names one), with the Docker CLI's own parser (which
// decodes each auth). Its errors name the file, never quote its content.
func loadDockerConfig(path string) (*configfile.ConfigFile, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cf := configfile.New(path)
	if err := cf.LoadFromReader(io.LimitReader(f, maxDockerConfig)); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %s", path, dockerConfigErr(err))
	}
	return cf, nil
}

// dockerConfigErr says what is wrong with a config.json in words of its
// own: the JSON and base64 errors may quote a character of a secret.
func dockerConfigErr(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var b64 base64.CorruptInputError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not a Docker config.json: invalid JSON at byte %d", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not a Docker config.json: the JSON ends early"
	case errors.As(err, &typ):
		return fmt.Sprintf("not a Docker config.json: %s is not a %s", typ.Field, typ.Type)
	case errors.As(err, &b64):
		return "an auth of auths is not base64"
	}
	return "an auth of auths is not base64 of user:password"
}

// helperName is what docker-credential-<name> may be: no path, no option.
var helperName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkHelperName(name string) error {
	if rest, ok := strings.CutPrefix(name, "docker-credential-"); ok {
		return fmt.Errorf("give the name after docker-credential-: %q", rest)
	}
	if !helperName.MatchString(name) {
		return errors.New("want the name of docker-credential-<name> (ecr-login, gcloud, pass): letters, digits, '.', '_' and '-', no path")
	}
	return nil
}

// checkCredentials checks how a registry's credentials are given: in one
// way at most, a helper name docker would run, a docker_config that
// parses (and names such helpers). Whether a helper is installed is a
// warning of registryWarnings: it may be installed later.
func (c *Config) checkCredentials(p *problems, rp string, r Registry) {
	const ways = "give credentials in one way: username and password_file, credential_helper or docker_config"
	basic := r.Username != "" || r.PasswordFile != ""
	if (r.CredentialHelper != "" || r.DockerConfig != "") && c.helpers == nil {
		c.helpers = newHelperCache()
	}
	if r.CredentialHelper != "" {
		if basic {
			p.addf(rp+".credential_helper", "%s", ways)
		}
		if err := checkHelperName(r.CredentialHelper); err != nil {
			p.addf(rp+".credential_helper", "%s: %v", p.quote(rp+".credential_helper", r.CredentialHelper), err)
		}
	}
	if r.DockerConfig == "" {
		return
	}
	if basic || r.CredentialHelper != "" {
		p.addf(rp+".docker_config", "%s", ways)
	}
	cf, err := loadDockerConfig(c.resolve(r.DockerConfig))
	if err != nil {
		p.addFile(rp+".docker_config", err)
		return
	}
	for _, h := range slices.Sorted(maps.Values(cf.CredentialHelpers)) {
		if err := checkHelperName(h); err != nil {
			p.addf(rp+".docker_config", "credHelpers names %q: %v", h, err)
		}
	}
	if h := cf.CredentialsStore; h != "" {
		if err := checkHelperName(h); err != nil {
			p.addf(rp+".docker_config", "credsStore %q: %v", h, err)
		}
	}
}

// registryWarnings says what holds for a valid config but fails its pulls
// until fixed: a credential helper that is not on PATH (it may be
// installed later), a docker_config without credentials for its host.
func (c *Config) registryWarnings() []string {
	var out []string
	for _, host := range slices.Sorted(maps.Keys(c.Registries)) {
		r := c.Registries[host]
		field, helper := "credential_helper", r.CredentialHelper
		if r.DockerConfig != "" && r.CredentialHelper == "" {
			cf, err := loadDockerConfig(c.resolve(r.DockerConfig))
			if err != nil {
				continue // an error of Validate
			}
			key := serverKey(host)
			field, helper = "docker_config", configHelper(cf, key)
			if ac, _ := clicreds.NewFileStore(cf).Get(key); helper == "" && ac == (types.AuthConfig{}) {
				out = append(out, fmt.Sprintf("registries.%s.docker_config: has no credentials for %s (no auths or credHelpers entry, no credsStore): its pulls are anonymous", host, key))
			}
		}
		if helper == "" || checkHelperName(helper) != nil {
			continue
		}
		if _, err := exec.LookPath("docker-credential-" + helper); err != nil {
			out = append(out, fmt.Sprintf("registries.%s.%s: docker-credential-%s is not on PATH: pulls from %s fail until it is installed", host, field, helper, host))
		}
	}
	return out
}

// helperMaxAge is how long a helper's answer is kept at most, refused or
// not: a service's nodes pull with the credentials sent along, which no
// call of liftoff's has tried (a rollback or a repair of a service resolves
// nothing). Shorter than the shortest-lived tokens helpers give (gcloud's
// hour; ECR's last 12).
const helperMaxAge = 30 * time.Minute

// helperCache keeps credential helpers' answers until a registry refuses
// them, or helperMaxAge: a helper runs once per registry, not at every
// resolve and pull (ecr-login asks AWS each time). A caller waits for
// another's run of the same helper for the same server, and takes its
// answer.
type helperCache struct {
	mu      sync.Mutex
	entries map[string]*helperEntry // by helper and server
	now     func() time.Time
}

type helperEntry struct {
	turn  chan struct{} // held while the entry is read or its helper runs
	creds Credentials
	at    time.Time // when the helper answered
	ok    bool
}

func newHelperCache() *helperCache {
	return &helperCache{entries: map[string]*helperEntry{}, now: time.Now}
}

// get returns the cached answer of helper for server, running it when
// there is none, it is too old, or refused is the one held. A nil cache (a config not
// validated) runs the helper every time.
func (h *helperCache) get(ctx context.Context, helper, server string, refused Credentials) (Credentials, error) {
	if h == nil {
		return runHelper(ctx, helper, server)
	}
	h.mu.Lock()
	k := helper + "\x00" + server
	e := h.entries[k]
	if e == nil {
		e = &helperEntry{turn: make(chan struct{}, 1)}
		h.entries[k] = e
	}
	h.mu.Unlock()

	select {
	case e.turn <- struct{}{}:
	case <-ctx.Done():
		return Credentials{}, context.Cause(ctx)
	}
	defer func() { <-e.turn }()
	if e.ok && h.now().Sub(e.at) < helperMaxAge && (refused == (Credentials{}) || refused != e.creds) {
		return e.creds, nil
	}
	cr, err := runHelper(ctx, helper, server)
	e.creds, e.at, e.ok = cr, h.now(), err == nil
	return cr, err
}
