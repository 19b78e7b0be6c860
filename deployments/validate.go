package deployments

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-connections/nat"
)

// Validate checks the whole config, applies defaults and prepares it for
// use (normalized images, compiled tag rules and patterns, hashed hook
// tokens, indexes). Every error names its field, e.g.
// "deployments[1].tags[0]: ...". All errors are reported, joined. Validate
// reads env_files, secret_files and password_file to check them, and never
// shows their content.
func (c *Config) Validate() error {
	p := newProblems(c.secretPaths)
	c.validate(p)
	return p.err()
}

func (c *Config) validate(p *problems) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		p.addf("listen", "want [host]:port, e.g. \":8080\" or \"127.0.0.1:8080\"")
	}
	if c.DockerHost != "" {
		scheme, _, ok := strings.Cut(c.DockerHost, "://")
		switch {
		case !ok:
			p.addf("docker_host", "want scheme://address, e.g. unix:///var/run/docker.sock or tcp://host:2376")
		case scheme != "unix" && scheme != "tcp" && scheme != "ssh" && scheme != "npipe" && scheme != "http" && scheme != "https":
			p.addf("docker_host", "unknown scheme: want unix, tcp, ssh, npipe, http or https")
		}
	}
	if c.APITokens.set {
		p.addf("api_tokens", "not supported yet")
	}
	if c.History == "" {
		c.History = DefaultHistory
	}
	switch {
	case c.HookRateLimit == 0:
		c.HookRateLimit = DefaultHookRate
	case c.HookRateLimit < -1:
		p.addf("hook_rate_limit", "want requests a minute per client (default %d), or -1 for no limit", DefaultHookRate)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil || port == "" {
			p.addf("metrics_listen", "want [host]:port, e.g. \"127.0.0.1:9100\"")
		} else if c.MetricsListen == c.Listen {
			p.addf("metrics_listen", "is the same address as listen; leave it empty to serve /metrics on listen")
		}
	}
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		p.addf("tls_cert", "tls_cert and tls_key go together: set both to serve HTTPS, or neither")
	case c.TLSCert != "":
		c.TLSCert, c.TLSKey = c.resolve(c.TLSCert), c.resolve(c.TLSKey)
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			if p.secrets["tls_cert"] || p.secrets["tls_key"] {
				// The error names the files.
				p.addf("tls_cert", "cannot load the certificate and key (a file name comes from ${VAR} and is not shown)")
			} else {
				p.addf("tls_cert", "cannot load the certificate and key: %v", err)
			}
		}
	}
	c.validateHooks(p)
	c.validateRegistries(p)
	c.validateEnvironments(p)
	c.validateDeployments(p)
	c.checkConfigPolicies(p)
}

func (c *Config) validateHooks(p *problems) {
	old := c.hookSums
	c.hookSums = make([]hookSum, 0, len(c.Hooks))
	first := map[string]int{}
	for i, h := range c.Hooks {
		sp := fmt.Sprintf("hooks[%d].source", i)
		switch h.Source {
		case "":
			p.addf(sp, "missing (supported: dockerhub)")
		case "dockerhub":
		case "distribution", "ghcr", "harbor", "quay", "generic":
			p.addf(sp, "%q is not supported yet (supported: dockerhub)", h.Source)
		default:
			p.addf(sp, "unknown source %s (supported: dockerhub)", p.quote(sp, h.Source))
		}
		if j, dup := first[h.Source]; dup && h.Source != "" {
			p.addf(sp, "duplicate of hooks[%d]: one hook per source", j)
		} else {
			first[h.Source] = i
		}

		if c.tokensForgotten {
			// Validated when loaded; only the hashes remain.
			c.hookSums = append(c.hookSums, old[i])
			continue
		}
		// Never show the token, not even in part.
		tp := fmt.Sprintf("hooks[%d].token", i)
		switch {
		case h.Token == "":
			p.addf(tp, "missing: use a long random secret, e.g. from `openssl rand -hex 24`")
		case len(h.Token) < 24:
			p.addf(tp, "too short: at least 24 characters, e.g. from `openssl rand -hex 24`")
		case !pathSegmentSafe(h.Token):
			p.addf(tp, "must be printable ASCII without '/', '?', '#', '%%' or spaces: it is a segment of the hook's URL")
		}
		c.hookSums = append(c.hookSums, hookSum{source: h.Source, sum: sha256.Sum256([]byte(h.Token))})
	}
}

func pathSegmentSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || strings.IndexByte("/?#%", b) >= 0 {
			return false
		}
	}
	return true
}

func (c *Config) validateRegistries(p *problems) {
	if len(c.Registries) == 0 {
		return
	}
	regs := make(map[string]Registry, len(c.Registries))
	from := map[string]string{}
	for _, k := range sortedKeys(c.Registries) {
		r := c.Registries[k]
		rp := "registries." + k
		host, err := normalizeHost(k)
		if err != nil {
			p.addf(rp, "%v", err)
			continue
		}
		if prev, dup := from[host]; dup {
			p.addf(rp, "the same registry as registries.%s", prev)
			continue
		}
		from[host] = k
		r.mirrorHost = ""
		if r.Mirror != "" {
			if r.mirrorHost, err = mirrorHost(r.Mirror); err != nil {
				p.addLib(rp+".mirror", "want host[:port] or http(s)://host[:port]", err)
			}
		}
		if (r.Username == "") != (r.PasswordFile == "") {
			p.addf(rp, "username and password_file go together")
		}
		if r.PasswordFile != "" {
			if _, err := readSecretFile(c.resolve(r.PasswordFile)); err != nil {
				p.addFile(rp+".password_file", err)
			}
		}
		regs[host] = r
	}
	c.Registries = regs
}

func (c *Config) validateEnvironments(p *problems) {
	for _, name := range sortedKeys(c.Environments) {
		e := c.Environments[name]
		ep := "environments." + name
		if !validName(name, 1) {
			p.addf(ep, "invalid environment name %q: want [A-Za-z0-9][A-Za-z0-9_.-]*", name)
		}
		checkEnvMap(p, ep+".env", e.Env)
		c.checkEnvFiles(p, ep+".env_files", e.EnvFiles)
		for i, k := range e.Require {
			if !validEnvKey(k) {
				rp := fmt.Sprintf("%s.require[%d]", ep, i)
				p.addf(rp, "invalid variable name %s: want [A-Za-z_][A-Za-z0-9_]*", p.quote(rp, k))
			}
		}
		for _, k := range sortedKeys(e.Forbid) {
			fp := ep + ".forbid." + k
			switch {
			case !validEnvKey(k):
				p.addf(ep+".forbid", "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
			case len(e.Forbid[k]) == 0:
				p.addf(fp, "no values: list the values that must never ship")
			}
		}
		e.patterns = nil
		for _, k := range sortedKeys(e.ForbidPatterns) {
			if !validEnvKey(k) {
				p.addf(ep+".forbid_patterns", "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
			}
			if len(e.ForbidPatterns[k]) == 0 {
				p.addf(ep+".forbid_patterns."+k, "no patterns")
			}
			for i, pat := range e.ForbidPatterns[k] {
				pp := fmt.Sprintf("%s.forbid_patterns.%s[%d]", ep, k, i)
				re, err := regexp.Compile(pat)
				if err != nil {
					p.addLib(pp, "invalid regexp", err)
					continue
				}
				if e.patterns == nil {
					e.patterns = map[string][]*regexp.Regexp{}
				}
				e.patterns[k] = append(e.patterns[k], re)
			}
		}
		c.Environments[name] = e
	}
}

func (c *Config) validateDeployments(p *problems) {
	c.byRepo = map[string][]int{}
	c.byName = map[string]int{}
	containers := map[string]int{}
	var published []hostPort
	for i := range c.Deployments {
		d := &c.Deployments[i]
		dp := fmt.Sprintf("deployments[%d]", i)
		d.path = dp
		np := dp + ".name"
		switch {
		case d.Name == "":
			p.addf(np, "missing")
		case !validName(d.Name, 2):
			p.addf(np, "invalid name %s: want [a-zA-Z0-9][a-zA-Z0-9_.-]+, as it names the container too", p.quote(np, d.Name))
		case reservedSuffix(d.Name):
			p.addf(np, "%s ends like the containers liftoff keeps during a deploy (.liftoff-prev, .liftoff-next)", p.quote(np, d.Name))
		}
		if j, dup := c.byName[d.Name]; dup && d.Name != "" {
			p.addf(np, "duplicate of deployments[%d]", j)
		} else if d.Name != "" {
			c.byName[d.Name] = i
		}

		ip := dp + ".image"
		repo := ""
		if d.Image == "" {
			p.addf(ip, "missing: the repository, e.g. acme/web or ghcr.io/acme/web")
		} else if named, err := parseRepo(d.Image); err != nil {
			p.addLib(ip, "invalid image", err)
		} else if t, ok := named.(reference.Tagged); ok {
			p.addf(ip, "%s has a tag: put %s in tags", p.quote(ip, d.Image), p.quote(ip, t.Tag()))
		} else if _, ok := named.(reference.Digested); ok {
			p.addf(ip, "%s has a digest: liftoff resolves tags to digests itself; give the repository and tags", p.quote(ip, d.Image))
		} else {
			repo = named.Name()
			d.Image = repo
		}

		d.rules = make([]tagRule, 0, len(d.Tags))
		if len(d.Tags) == 0 {
			p.addf(dp+".tags", "no tag rules, so nothing would deploy it: e.g. [\"latest\"], [\"semver:^1\"], [\"glob:release-*\"]")
		}
		texts := make([]string, len(d.Tags))
		for j, t := range d.Tags {
			tp := fmt.Sprintf("%s.tags[%d]", dp, j)
			texts[j] = t
			if p.secrets[tp] {
				texts[j] = "(from ${VAR})"
			}
			r, err := parseTagRule(t)
			if err != nil {
				if p.secrets[tp] {
					p.addf(tp, "invalid tag rule (the value comes from ${VAR} and is not shown)")
				} else {
					p.add(tp, err)
				}
				continue
			}
			d.rules = append(d.rules, r)
		}
		d.rulesText = "[" + strings.Join(texts, " ") + "]"

		if d.Environment != "" {
			if _, ok := c.Environments[d.Environment]; !ok {
				have := strings.Join(sortedKeys(c.Environments), ", ")
				if have == "" {
					have = "none"
				}
				p.addf(dp+".environment", "unknown environment %s (have: %s)", p.quote(dp+".environment", d.Environment), have)
			}
		}
		checkEnvMap(p, dp+".env", d.Env)
		c.checkEnvFiles(p, dp+".env_files", d.EnvFiles)
		for _, k := range sortedKeys(d.SecretFiles) {
			sp := dp + ".secret_files." + k
			if !validEnvKey(k) {
				p.addf(dp+".secret_files", "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
			}
			if d.SecretFiles[k] == "" {
				p.addf(sp, "missing file name")
			} else if _, err := readSecretFile(c.resolve(d.SecretFiles[k])); err != nil {
				p.addFile(sp, err)
			}
		}

		cp := dp + ".container"
		if d.Container.Name == "" {
			d.Container.Name = d.Name
		} else if cn := cp + ".name"; !validName(d.Container.Name, 2) {
			p.addf(cn, "invalid container name %s: want [a-zA-Z0-9][a-zA-Z0-9_.-]+", p.quote(cn, d.Container.Name))
		} else if reservedSuffix(d.Container.Name) {
			p.addf(cn, "%s ends like the containers liftoff keeps during a deploy (.liftoff-prev, .liftoff-next)", p.quote(cn, d.Container.Name))
		}
		if n := d.Container.Name; n != "" {
			if j, dup := containers[n]; dup {
				p.addf(cp+".name", "%s is also the container of deployments[%d]", p.quote(cp+".name", n), j)
			} else {
				containers[n] = i
			}
		}
		published = checkContainer(p, cp, &d.Container, published)

		switch d.Strategy {
		case "":
			d.Strategy = StopFirst
		case StopFirst:
		case StartFirst:
			if len(d.Container.Ports) > 0 {
				p.addf(dp+".strategy", "start-first runs two containers at once, so it cannot publish ports (use networks and aliases)")
			}
		default:
			p.addf(dp+".strategy", "unknown strategy %s: want stop-first or start-first", p.quote(dp+".strategy", d.Strategy))
		}
		checkHealth(p, dp+".health", &d.Health)

		switch {
		case d.StopTimeout == 0:
			d.StopTimeout = DefaultStopTimeout
		case d.StopTimeout < 0:
			p.addf(dp+".stop_timeout", "must be positive, e.g. 10s")
		}

		if repo != "" {
			c.byRepo[repo] = append(c.byRepo[repo], i)
		}
	}
}

// validName checks Docker's container name grammar [a-zA-Z0-9][a-zA-Z0-9_.-]
// repeated, at least min characters.
func validName(s string, min int) bool {
	if len(s) < min {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || i > 0 && strings.IndexByte("_.-", c) >= 0) {
			return false
		}
	}
	return true
}

// reservedSuffix tells whether a container name could be taken for the
// previous or next container of another deployment during a swap.
func reservedSuffix(s string) bool {
	return strings.HasSuffix(s, ".liftoff-prev") || strings.HasSuffix(s, ".liftoff-next")
}

func checkEnvMap(p *problems, at string, env map[string]string) {
	for _, k := range sortedKeys(env) {
		if !validEnvKey(k) {
			p.addf(at, "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
		} else if strings.IndexByte(env[k], 0) >= 0 {
			p.addf(at+"."+k, "contains a NUL byte, which no environment variable can hold")
		}
	}
}

func (c *Config) checkEnvFiles(p *problems, at string, files []string) {
	for i, f := range files {
		fp := fmt.Sprintf("%s[%d]", at, i)
		if f == "" {
			p.addf(fp, "missing file name")
			continue
		}
		if _, err := c.readEnvFile(c.resolve(f)); err != nil {
			p.addFile(fp, err)
		}
	}
}

// hostPort is one published host port, to find two containers that would
// both bind it.
type hostPort struct {
	ip    string // "" for every address
	port  string
	proto string
	at    string
}

func (h hostPort) clashes(o hostPort) bool {
	return h.port == o.port && h.proto == o.proto && (h.ip == o.ip || anyAddr(h.ip) || anyAddr(o.ip))
}

func anyAddr(ip string) bool {
	if ip == "" {
		return true
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && a.IsUnspecified()
}

// checkContainer checks the spec the docker adapter will build a container
// from, with Docker's own -p parser, so that a deploy cannot fail on a
// typo. It returns published with d's host ports added.
func checkContainer(p *problems, at string, ct *Container, published []hostPort) []hostPort {
	for j, spec := range ct.Ports {
		pp := fmt.Sprintf("%s.ports[%d]", at, j)
		maps, err := nat.ParsePortSpec(spec)
		if err != nil {
			p.addLib(pp, "want [ip:][hostPort:]containerPort[/tcp|udp|sctp]", err)
			continue
		}
		for _, m := range maps {
			if m.Port.Int() == 0 {
				p.addf(pp, "container port 0")
				break
			}
			hp := m.Binding.HostPort
			if hp == "" || strings.Contains(hp, "-") || hp == "0" {
				continue // chosen by the engine
			}
			h := hostPort{ip: m.Binding.HostIP, port: hp, proto: m.Port.Proto(), at: pp}
			for _, o := range published {
				if h.clashes(o) {
					p.addf(pp, "host port %s/%s is also published by %s", hp, h.proto, o.at)
					break
				}
			}
			published = append(published, h)
		}
	}
	dsts := map[string]int{}
	for j, spec := range ct.Volumes {
		vp := fmt.Sprintf("%s.volumes[%d]", at, j)
		dst, err := checkVolume(spec)
		if err != nil {
			if p.secrets[vp] {
				p.addf(vp, "want src:dst[:options] (the value comes from ${VAR} and is not shown)")
			} else {
				p.addf(vp, "%v", err)
			}
			continue
		}
		if k, dup := dsts[dst]; dup {
			p.addf(vp, "mounts on %s like volumes[%d]", p.quote(vp, dst), k)
		}
		dsts[dst] = j
	}
	nets := map[string]bool{}
	for j, n := range ct.Networks {
		np := fmt.Sprintf("%s.networks[%d]", at, j)
		switch {
		case n == "":
			p.addf(np, "empty network name")
		case nets[n]:
			p.addf(np, "listed twice")
		}
		nets[n] = true
	}
	if len(ct.Aliases) > 0 && len(ct.Networks) == 0 {
		p.addf(at+".aliases", "aliases need networks: they are the container's names on its networks")
	}
	for j, a := range ct.Aliases {
		if a == "" {
			p.addf(fmt.Sprintf("%s.aliases[%d]", at, j), "empty alias")
		}
	}
	if err := checkRestart(ct.Restart); err != nil {
		p.addf(at+".restart", "%s: want no, always, unless-stopped or on-failure[:N]", p.quote(at+".restart", ct.Restart))
	}
	for _, k := range sortedKeys(ct.Labels) {
		switch {
		case k == "":
			p.addf(at+".labels", "empty label key")
		case strings.HasPrefix(k, "liftoff."):
			p.addf(at+".labels", "%q: liftoff.* labels are liftoff's own (they tell which containers it manages)", k)
		}
	}
	return published
}

// volumeOption tells whether o is an option `docker run -v` takes after
// src:dst.
func volumeOption(o string) bool {
	switch o {
	case "ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave",
		"private", "rprivate", "consistent", "cached", "delegated":
		return true
	}
	return false
}

// checkVolume checks a `docker run -v` spec and returns its destination.
// Relative sources are refused: the path is on the Docker host, which is
// not where the config file is when liftoff runs in a container.
func checkVolume(spec string) (string, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return "", fmt.Errorf("%q: want src:dst[:options]", spec)
	}
	src, dst := parts[0], parts[1]
	if !strings.HasPrefix(src, "/") && !validName(src, 2) {
		return "", fmt.Errorf("%q: the source must be an absolute host path or a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)", spec)
	}
	if !strings.HasPrefix(dst, "/") || path.Clean(dst) == "/" {
		return "", fmt.Errorf("%q: the destination must be an absolute path in the container, not /", spec)
	}
	if len(parts) == 3 {
		mode := map[string]bool{}
		for _, o := range strings.Split(parts[2], ",") {
			if !volumeOption(o) {
				return "", fmt.Errorf("%q: unknown option %q (ro, rw, z, Z, nocopy, [r]shared, [r]slave, [r]private)", spec, o)
			}
			mode[o] = true
		}
		if mode["ro"] && mode["rw"] {
			return "", fmt.Errorf("%q: ro and rw together", spec)
		}
	}
	return path.Clean(dst), nil
}

func checkRestart(r string) error {
	switch r {
	case "", "no", "always", "unless-stopped", "on-failure":
		return nil
	}
	if n, ok := strings.CutPrefix(r, "on-failure:"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 0 {
			return nil
		}
	}
	return fmt.Errorf("invalid restart policy")
}

// checkHealth applies the gate's defaults and checks what the engine will
// hand to Docker and probe.
func checkHealth(p *problems, at string, h *Health) {
	if h.Timeout == 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.MinUptime == 0 {
		h.MinUptime = DefaultMinUptime
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"timeout", h.Timeout}, {"min_uptime", h.MinUptime}, {"interval", h.Interval}} {
		if d.v < 0 {
			p.addf(at+"."+d.key, "must be positive")
		}
	}
	if h.MinUptime > h.Timeout {
		p.addf(at+".min_uptime", "longer than timeout (%s): the gate could never pass", h.Timeout)
	}
	if h.Retries < 0 {
		p.addf(at+".retries", "must be positive")
	}
	if len(h.Cmd) > 0 {
		switch h.Cmd[0] {
		case "CMD", "CMD-SHELL":
			if len(h.Cmd) < 2 || h.Cmd[1] == "" {
				p.addf(at+".cmd", "%s needs a command after it", h.Cmd[0])
			}
		case "NONE":
		case "":
			p.addf(at+".cmd", "empty command")
		default:
			h.Cmd = append([]string{"CMD"}, h.Cmd...)
		}
		if h.Interval == 0 {
			h.Interval = DefaultHealthInterval
		}
		if h.Retries == 0 {
			h.Retries = DefaultHealthRetries
		}
	}
	if h.URL != "" {
		// {container} is replaced by the container's address at probe time.
		u, err := url.Parse(strings.ReplaceAll(h.URL, "{container}", "container"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.addf(at+".url", "%s: want an http(s) URL, e.g. http://127.0.0.1:8001/healthz or http://{container}:8000/healthz", p.quote(at+".url", h.URL))
		}
	}
}
