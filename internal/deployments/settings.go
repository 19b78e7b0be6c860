package deployments

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// Logging is a container's log driver and its options, as docker run
// --log-driver and --log-opt take them.
type Logging struct {
	Driver  string            `yaml:"driver"`
	Options map[string]string `yaml:"options"`
}

// Default log rotation of the containers liftoff creates when the config
// names no logging: unrotated json-file logs grow until the disk is full.
const (
	DefaultLogDriver  = "json-file"
	DefaultLogMaxSize = "10m"
	DefaultLogMaxFile = "3"
)

// Settings are a container's settings beyond its ports, volumes and
// networks, parsed from Container (or a compose service) into the form of
// the Engine API fields docker run sets: sizes in bytes, CPUs in
// billionths. The zero value leaves everything to the image and the engine.
type Settings struct {
	Memory            int64 // HostConfig.Memory, bytes; 0: no limit
	MemoryReservation int64 // HostConfig.MemoryReservation, bytes
	NanoCPUs          int64 // HostConfig.NanoCPUs
	PidsLimit         int64 // HostConfig.PidsLimit; 0: the engine's default, -1: unlimited
	ShmSize           int64 // HostConfig.ShmSize, bytes; 0: the engine's default (64m)

	LogDriver  string            // HostConfig.LogConfig.Type; "": the engine's default
	LogOptions map[string]string // HostConfig.LogConfig.Config

	User       string   // Config.User
	WorkingDir string   // Config.WorkingDir
	StopSignal string   // Config.StopSignal
	Entrypoint []string // Config.Entrypoint; nil: the image's

	Init     bool              // HostConfig.Init
	ReadOnly bool              // HostConfig.ReadonlyRootfs
	Tmpfs    map[string]string // HostConfig.Tmpfs: mount point → options

	CapAdd      []string // HostConfig.CapAdd, CAP_ names
	CapDrop     []string // HostConfig.CapDrop
	SecurityOpt []string // HostConfig.SecurityOpt
	ExtraHosts  []string // HostConfig.ExtraHosts, host:ip
	Ulimits     []Ulimit // HostConfig.Ulimits, sorted by name

	// Healthcheck is a compose service's (Config.Healthcheck), for a
	// container liftoff's health.cmd gives none.
	Healthcheck *Healthcheck
}

// Healthcheck is a Docker HEALTHCHECK as the Engine API takes it.
type Healthcheck struct {
	Test        []string // ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// Ulimit is one resource limit (docker run --ulimit name=soft:hard).
type Ulimit struct {
	Name string
	Soft int64
	Hard int64
}

// Settings returns the container's settings as Validate parsed them, the
// default log rotation included when no logging was given.
func (ct *Container) Settings() Settings { return ct.settings }

// checkSettings parses the settings of ct into ct.settings, reporting
// every value the engine would refuse or take for something else.
func checkSettings(p *problems, at string, ct *Container) {
	var s Settings
	size := func(key, v string, min int64) int64 {
		if v == "" {
			return 0
		}
		n, err := units.RAMInBytes(v)
		switch {
		case err != nil:
			p.addf(at+"."+key, "%s: want a size like 512m or 2g (bytes without a unit)", p.quote(at+"."+key, v))
		case n < min:
			p.addf(at+"."+key, "%s is below the engine's minimum of %s", p.quote(at+"."+key, v), units.BytesSize(float64(min)))
		}
		return n
	}
	// The engine refuses a memory limit below 6MB.
	s.Memory = size("memory", ct.Memory, 6*1024*1024)
	s.MemoryReservation = size("memory_reservation", ct.MemoryReservation, 1)
	if s.Memory > 0 && s.MemoryReservation > s.Memory {
		p.addf(at+".memory_reservation", "must not be above memory (%s)", ct.Memory)
	}
	s.ShmSize = size("shm_size", ct.ShmSize, 1)
	switch c := ct.CPUs; {
	case c < 0 || math.IsNaN(c) || math.IsInf(c, 0):
		p.addf(at+".cpus", "must be a positive number of CPUs, e.g. 1.5")
	case c > 0:
		s.NanoCPUs = int64(math.Round(c * 1e9))
	}
	if ct.PidsLimit < -1 {
		p.addf(at+".pids_limit", "want a number of processes, or -1 for no limit")
	}
	s.PidsLimit = ct.PidsLimit

	if l := ct.Logging; l == nil {
		s.LogDriver = DefaultLogDriver
		s.LogOptions = map[string]string{"max-size": DefaultLogMaxSize, "max-file": DefaultLogMaxFile}
	} else {
		checkLogging(p, at+".logging", l)
		s.LogDriver, s.LogOptions = l.Driver, maps.Clone(l.Options)
	}

	if strings.ContainsAny(ct.User, " \t\n") || strings.Count(ct.User, ":") > 1 || strings.HasPrefix(ct.User, ":") || strings.HasSuffix(ct.User, ":") {
		p.addf(at+".user", "%s: want user[:group], by name or id", p.quote(at+".user", ct.User))
	}
	s.User = ct.User
	if w := ct.WorkingDir; w != "" && !strings.HasPrefix(w, "/") {
		p.addf(at+".working_dir", "%s: must be an absolute path in the container", p.quote(at+".working_dir", w))
	}
	s.WorkingDir = ct.WorkingDir
	if sig := ct.StopSignal; sig != "" && !validSignal(sig) {
		p.addf(at+".stop_signal", "%s: want a signal name (SIGTERM, SIGQUIT, SIGINT...) or number", p.quote(at+".stop_signal", sig))
	}
	s.StopSignal = ct.StopSignal
	s.Entrypoint = slices.Clone(ct.Entrypoint)
	s.Init = ct.Init
	s.ReadOnly = ct.ReadOnly

	for j, t := range ct.Tmpfs {
		tp := fmt.Sprintf("%s.tmpfs[%d]", at, j)
		dst, opts, _ := strings.Cut(t, ":")
		if !strings.HasPrefix(dst, "/") || path.Clean(dst) == "/" {
			p.addf(tp, "%s: want /path[:options], an absolute path other than /", p.quote(tp, t))
			continue
		}
		if s.Tmpfs == nil {
			s.Tmpfs = map[string]string{}
		}
		if _, dup := s.Tmpfs[path.Clean(dst)]; dup {
			p.addf(tp, "%s is listed twice", dst)
		}
		s.Tmpfs[path.Clean(dst)] = opts
	}
	s.CapAdd = checkCaps(p, at+".cap_add", ct.CapAdd)
	s.CapDrop = checkCaps(p, at+".cap_drop", ct.CapDrop)
	for j, o := range ct.SecurityOpt {
		if err := checkSecurityOpt(o); err != nil {
			p.addf(fmt.Sprintf("%s.security_opt[%d]", at, j), "%s: %v", p.quote(fmt.Sprintf("%s.security_opt[%d]", at, j), o), err)
		}
	}
	s.SecurityOpt = slices.Clone(ct.SecurityOpt)
	for j, h := range ct.ExtraHosts {
		hp := fmt.Sprintf("%s.extra_hosts[%d]", at, j)
		host, err := extraHost(h)
		if err != nil {
			p.addf(hp, "%s: %v", p.quote(hp, h), err)
			continue
		}
		s.ExtraHosts = append(s.ExtraHosts, host)
	}
	for _, name := range slices.Sorted(maps.Keys(ct.Ulimits)) {
		up := at + ".ulimits." + name
		u, err := parseUlimit(name, ct.Ulimits[name])
		if err != nil {
			p.addf(up, "%s: %v", p.quote(up, ct.Ulimits[name]), err)
			continue
		}
		s.Ulimits = append(s.Ulimits, u)
	}
	s.Healthcheck = ct.healthcheck
	ct.settings = s
}

// checkLogging checks a log driver and, for the drivers that rotate
// (json-file, local), the rotation options.
func checkLogging(p *problems, at string, l *Logging) {
	if l.Driver == "" {
		p.addf(at+".driver", "missing: json-file, local, journald, syslog, none... (the engine's own plugins count too)")
	} else if !validName(l.Driver, 1) && !strings.Contains(l.Driver, "/") {
		p.addf(at+".driver", "%s: not a log driver name", p.quote(at+".driver", l.Driver))
	}
	for _, k := range slices.Sorted(maps.Keys(l.Options)) {
		v := l.Options[k]
		op := at + ".options." + k
		switch {
		case k == "":
			p.addf(at+".options", "empty option name")
		case l.Driver == "none":
			p.addf(op, "the none driver takes no options")
		case (l.Driver == "json-file" || l.Driver == "local") && k == "max-size":
			if n, err := units.RAMInBytes(v); err != nil || n < 1 {
				p.addf(op, "%s: want a size like 10m", p.quote(op, v))
			}
		case (l.Driver == "json-file" || l.Driver == "local") && k == "max-file":
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				p.addf(op, "%s: want a number of files, at least 1", p.quote(op, v))
			}
		}
	}
}

// capabilities are the Linux capabilities the engine knows, without their
// CAP_ prefix.
var capabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF",
	"CHECKPOINT_RESTORE", "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER",
	"FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE",
	"MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE",
	"SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
}

// checkCaps checks capability names as docker run --cap-add takes them
// (NET_ADMIN, CAP_NET_ADMIN, any case, or ALL) and returns them as the
// engine stores them: CAP_NET_ADMIN, ALL.
func checkCaps(p *problems, at string, caps []string) []string {
	var out []string
	for j, c := range caps {
		name := strings.TrimPrefix(strings.ToUpper(c), "CAP_")
		if name == "ALL" {
			out = append(out, "ALL")
			continue
		}
		if !slices.Contains(capabilities, name) {
			cp := fmt.Sprintf("%s[%d]", at, j)
			p.addf(cp, "unknown capability %s: want a name like NET_ADMIN or CAP_NET_ADMIN, or ALL", p.quote(cp, c))
			continue
		}
		out = append(out, "CAP_"+name)
	}
	return out
}

// checkSecurityOpt checks a docker run --security-opt value. A seccomp
// profile file is refused: docker run reads it on the client and sends its
// content, and the file liftoff would read is not on the Docker host.
func checkSecurityOpt(o string) error {
	k, v, hasValue := strings.Cut(o, "=")
	if !hasValue {
		k, v, hasValue = strings.Cut(o, ":")
	}
	switch k {
	case "no-new-privileges":
		if hasValue && v != "true" && v != "false" {
			return fmt.Errorf("want no-new-privileges[:true|false]")
		}
	case "label", "apparmor":
		if v == "" {
			return fmt.Errorf("%s needs a value (%s=...)", k, k)
		}
	case "seccomp":
		if v != "unconfined" {
			return fmt.Errorf("liftoff takes seccomp=unconfined only: a profile file is read by the docker CLI, not by the engine")
		}
	case "systempaths":
		if v != "unconfined" {
			return fmt.Errorf("want systempaths=unconfined")
		}
	default:
		return fmt.Errorf("unknown option: want no-new-privileges, label=..., apparmor=..., seccomp=unconfined or systempaths=unconfined")
	}
	return nil
}

// extraHost checks an extra host, host:ip or host=ip as Compose allows,
// and returns it as the engine takes it (host:ip).
func extraHost(h string) (string, error) {
	sep := strings.IndexAny(h, ":=")
	if sep <= 0 {
		return "", fmt.Errorf("want host:ip")
	}
	host, ip := h[:sep], h[sep+1:]
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if strings.ContainsAny(host, " \t") {
		return "", fmt.Errorf("want host:ip, a host name without spaces")
	}
	if ip != "host-gateway" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("want host:ip with an IP address or host-gateway")
		}
	}
	return host + ":" + ip, nil
}

// ulimitNames are the limits docker run --ulimit knows.
var ulimitNames = []string{"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
	"nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

// parseUlimit parses a limit given as "n" (soft and hard) or "soft:hard";
// -1 is unlimited.
func parseUlimit(name, v string) (Ulimit, error) {
	if !slices.Contains(ulimitNames, name) {
		return Ulimit{}, fmt.Errorf("unknown limit: want one of %s", strings.Join(ulimitNames, ", "))
	}
	soft, hard, two := strings.Cut(v, ":")
	s, err1 := strconv.ParseInt(soft, 10, 64)
	h := s
	var err2 error
	if two {
		h, err2 = strconv.ParseInt(hard, 10, 64)
	}
	switch {
	case err1 != nil || err2 != nil || s < -1 || h < -1:
		return Ulimit{}, fmt.Errorf("want a number (soft and hard) or soft:hard, -1 for unlimited")
	case h != -1 && (s == -1 || s > h):
		return Ulimit{}, fmt.Errorf("the soft limit is above the hard one")
	}
	return Ulimit{Name: name, Soft: s, Hard: h}, nil
}

// validSignal tells whether s names a signal as docker run --stop-signal
// takes it: SIGTERM, TERM or a number.
func validSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n > 0 && n < 65
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		return true
	}
	switch name {
	case "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
		"KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS",
		"TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM",
		"WINCH", "XCPU", "XFSZ":
		return true
	}
	return false
}

// givenSettings returns the yaml keys of the settings given in ct.
func givenSettings(ct *Container) []string {
	var keys []string
	add := func(key string, given bool) {
		if given {
			keys = append(keys, key)
		}
	}
	add("memory", ct.Memory != "")
	add("memory_reservation", ct.MemoryReservation != "")
	add("cpus", ct.CPUs != 0)
	add("pids_limit", ct.PidsLimit != 0)
	add("shm_size", ct.ShmSize != "")
	add("logging", ct.Logging != nil)
	add("user", ct.User != "")
	add("working_dir", ct.WorkingDir != "")
	add("stop_signal", ct.StopSignal != "")
	add("entrypoint", ct.Entrypoint != nil)
	add("init", ct.Init)
	add("read_only", ct.ReadOnly)
	add("tmpfs", len(ct.Tmpfs) > 0)
	add("cap_add", len(ct.CapAdd) > 0)
	add("cap_drop", len(ct.CapDrop) > 0)
	add("security_opt", len(ct.SecurityOpt) > 0)
	add("extra_hosts", len(ct.ExtraHosts) > 0)
	add("ulimits", len(ct.Ulimits) > 0)
	return keys
}
