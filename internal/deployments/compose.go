package deployments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	composeloader "github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
)

// Compose names the service of a compose file a deployment runs: its
// container spec is read from there instead of from container:.
type Compose struct {
	// File is the compose file, relative to the config file's directory.
	File string `yaml:"file"`
	// Service is the service's name in it (default: the deployment's name).
	Service string `yaml:"service"`
	// Project is the Compose project the container belongs to (default as
	// Docker Compose: COMPOSE_PROJECT_NAME, the file's name:, else its
	// directory's name).
	Project string `yaml:"project"`

	svc *ComposeService // as loaded by Validate
	// own and ownStop are the deployment's container and stop_timeout as
	// written, kept so that Validate run again, and Fresh, see them and
	// not the service's.
	own     *Container
	ownStop time.Duration
	// replica is the container's number in its service, for a process's
	// replica (see Process.Service); 0 for a single deployment's (1).
	replica int
}

// processServices tells whether d's processes name their compose
// services (processes.<name>.service) instead of compose.service naming
// the one service of the deployment.
func (d *Deployment) processServices() bool {
	for _, pr := range d.Processes {
		if pr.Service != "" {
			return true
		}
	}
	return false
}

// Labels Docker Compose puts on the containers of a project, and reads to
// find them (docker compose ps, logs). liftoff's containers carry them so
// that Compose shows what liftoff runs.
const (
	ComposeProjectLabel     = "com.docker.compose.project"
	ComposeServiceLabel     = "com.docker.compose.service"
	ComposeNumberLabel      = "com.docker.compose.container-number"
	ComposeOneoffLabel      = "com.docker.compose.oneoff"
	ComposeWorkingDirLabel  = "com.docker.compose.project.working_dir"
	ComposeConfigFilesLabel = "com.docker.compose.project.config_files"
	// ComposeVersionLabel is the version of Compose that made the
	// container. docker-compose 1.x compares it with 1.21.0 on every
	// container of the project and fails on one without it; liftoff
	// writes ComposeVersion.
	ComposeVersionLabel = "com.docker.compose.version"
	ComposeVersion      = "2.0.0"
)

// ComposeService is one service of a compose file as liftoff runs it: the
// container spec, with what goes beside it in a deployment. The
// environment is kept apart from Container: liftoff's layers go on top.
type ComposeService struct {
	Project    string // the project name, as Compose decided it
	Service    string
	WorkingDir string // the project's directory
	Files      []string

	// Image is the service's repository, its tag dropped: liftoff runs
	// the digest that was pushed.
	Image     string
	Container Container
	Env       map[string]string // environment and env_file, resolved
	// Secret holds the variables of Env whose value may be secret: all
	// but those written as a plain value under environment:.
	Secret map[string]bool
	// StopTimeout is stop_grace_period; 0 when not given.
	StopTimeout time.Duration
}

// ComposeProject is a compose file loaded as Docker Compose would load it
// (interpolation, .env, extends, profiles), from which services are taken
// one by one with Service.
type ComposeProject struct {
	p *types.Project
	// raw is the project read again without interpolation, to tell the
	// variables written as plain values from those that came from ${VAR}
	// or an env_file (nil: every value counts as secret).
	raw *types.Project
}

// LoadCompose loads the compose file at path. project, if not empty,
// names the project; lookup is the environment interpolation and
// COMPOSE_* variables come from (liftoff's own), besides the project's
// .env. A service disabled by its profiles may still be taken by Service:
// as with `docker compose up SERVICE`, naming it enables it.
func LoadCompose(ctx context.Context, path, project string, lookup func(string) (string, bool)) (*ComposeProject, error) {
	dir := filepath.Dir(path)
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(environ(lookup, path)),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(),
	}
	if project != "" {
		opts = append(opts, cli.WithName(project))
	}
	o, err := cli.NewProjectOptions([]string{path}, append(slices.Clip(opts), cli.WithDiscardEnvFile)...)
	if err != nil {
		return nil, unquote(err)
	}
	p, err := o.LoadProject(ctx)
	cp := &ComposeProject{p: p}
	var rawErr error
	// The raw read sees no environment: with one, the loader fills in
	// "environment: [NAME]" from it, and a value taken from liftoff's
	// environment would look written in the file, not secret.
	raw := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(dir), cli.WithInterpolation(false), cli.WithoutEnvironmentResolution}
	if project != "" {
		raw = append(raw, cli.WithName(project))
	}
	if o, err := cli.NewProjectOptions([]string{path}, raw...); err == nil {
		cp.raw, rawErr = o.LoadProject(ctx)
	}
	if err != nil {
		// compose-go's errors quote the values they could not use, and
		// a value may come from ${VAR}, .env or an env_file: say what
		// the file alone says (read without interpolation), else the
		// error; either without what it quotes but the paths of keys.
		if rawErr != nil {
			err = rawErr
		}
		return nil, unquote(err)
	}
	return cp, nil
}

// resolveDisabled resolves the environment and the labels of svc, a
// service of p disabled by its profiles, as loading p resolved those of
// the enabled ones; p itself is not changed.
func resolveDisabled(p *types.Project, svc types.ServiceConfig) (types.ServiceConfig, error) {
	one := types.Project{Name: p.Name, WorkingDir: p.WorkingDir, Environment: p.Environment,
		Services: types.Services{svc.Name: svc}}
	q, err := one.WithServicesEnvironmentResolved(true)
	if err != nil {
		return svc, err
	}
	if q, err = q.WithServicesLabelsResolved(true); err != nil {
		return svc, err
	}
	return q.Services[svc.Name], nil
}

// unquote returns err without the values it quotes, which may be secret,
// but for the paths of keys ('services[web].mem_limit').
func unquote(err error) error {
	return errors.New(quoted.ReplaceAllStringFunc(err.Error(), func(q string) string {
		if keyPath.MatchString(q[1 : len(q)-1]) {
			return q
		}
		return "(value not shown)"
	}))
}

var (
	// quoted finds what an error of compose-go quotes.
	quoted = regexp.MustCompile(`"[^"]*"|'[^']*'`)
	// keyPath matches the path of a key of the compose file.
	keyPath = regexp.MustCompile(`^(services|networks|volumes|secrets|configs|models|include)([.\[][a-zA-Z0-9_.\[\]-]*)?$`)
)

// environ is the environment Compose interpolates the file with and
// takes COMPOSE_* from: lookup's value of each variable the process has,
// the file names (${VAR}, $VAR) and COMPOSE_PROJECT_NAME, COMPOSE_PROFILES.
// lookup is a function, so the names are gathered first.
func environ(lookup func(string) (string, bool), path string) []string {
	if lookup == nil {
		return nil
	}
	names := []string{"COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	if data, err := os.ReadFile(path); err == nil {
		for _, m := range varRef.FindAllSubmatch(data, -1) {
			names = append(names, string(m[1]))
		}
	}
	slices.Sort(names)
	var out []string
	for _, k := range slices.Compact(names) {
		if v, ok := lookup(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// varRef finds the variables a compose file interpolates.
var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// Name is the project's name.
func (cp *ComposeProject) Name() string { return cp.p.Name }

// Services lists the services of the project, enabled or not, sorted.
func (cp *ComposeProject) Services() []string {
	names := slices.Collect(maps.Keys(cp.p.Services))
	names = append(names, slices.Collect(maps.Keys(cp.p.DisabledServices))...)
	slices.Sort(names)
	return names
}

// Service turns the named service into liftoff's container spec. It
// refuses what liftoff cannot honour: the error names every such key.
func (cp *ComposeProject) Service(name string) (*ComposeService, error) {
	p := cp.p
	svc, ok := p.Services[name]
	if !ok {
		if svc, ok = p.DisabledServices[name]; !ok {
			return nil, fmt.Errorf("no service %q (the file has %s)", name, strings.Join(cp.Services(), ", "))
		}
		// Compose reads env_file and label_file, and fills in
		// "environment: [NAME]", only for the services of the active
		// profiles: do it for this one, as naming it enables it.
		var err error
		if svc, err = resolveDisabled(p, svc); err != nil {
			return nil, fmt.Errorf("service %s: %w", name, unquote(err))
		}
	}
	var refused []string
	refuse := func(key, why string) { refused = append(refused, key+": "+why) }
	checkComposeKeys(svc, refuse)

	out := &ComposeService{Project: p.Name, Service: name, WorkingDir: p.WorkingDir, Files: p.ComposeFiles, Env: map[string]string{}}
	if svc.Image == "" {
		refuse("image", "missing: liftoff deploys images that are pushed (build is ignored)")
	} else if named, err := reference.ParseNormalizedNamed(svc.Image); err != nil {
		refuse("image", fmt.Sprintf("%q is not an image reference", svc.Image))
	} else {
		out.Image = named.Name()
	}
	var plain types.MappingWithEquals
	if cp.raw != nil {
		if r, err := cp.raw.GetService(name); err == nil {
			plain = r.Environment
		} else if r, ok := cp.raw.DisabledServices[name]; ok {
			plain = r.Environment
		}
	}
	out.Secret = map[string]bool{}
	for k, v := range svc.Environment {
		if v == nil {
			continue // "environment: [NAME]" with NAME unset: Compose leaves it out too
		}
		out.Env[k] = *v
		if raw, ok := plain[k]; !ok || raw == nil || strings.Contains(*raw, "$") || *raw != *v {
			out.Secret[k] = true
		}
	}

	ct := &out.Container
	ct.Name = svc.ContainerName
	if svc.Entrypoint != nil {
		ct.Entrypoint = slices.Clone([]string(svc.Entrypoint))
	}
	if svc.Command != nil {
		ct.Command = slices.Clone([]string(svc.Command))
	}
	ct.Labels = maps.Clone(map[string]string(svc.Labels))
	for _, port := range svc.Ports {
		ct.Ports = append(ct.Ports, portSpec(port))
	}
	for _, v := range svc.Volumes {
		switch v.Type {
		case types.VolumeTypeTmpfs:
			ct.Tmpfs = append(ct.Tmpfs, tmpfsSpec(v))
		case types.VolumeTypeBind, types.VolumeTypeVolume:
			spec, err := volumeSpec(p, v)
			if err != nil {
				refuse("volumes", err.Error())
				continue
			}
			ct.Volumes = append(ct.Volumes, spec)
		default:
			refuse("volumes", fmt.Sprintf("type %s: liftoff mounts bind, volume and tmpfs", v.Type))
		}
	}
	// Docker Compose makes every container known by its service's name
	// on each of its networks; liftoff's aliases hold on every network.
	aliases := []string{name}
	for _, n := range slices.Sorted(maps.Keys(svc.Networks)) {
		real := n
		if nw, ok := p.Networks[n]; ok && nw.Name != "" {
			real = nw.Name
		}
		ct.Networks = append(ct.Networks, real)
		if c := svc.Networks[n]; c != nil {
			for _, a := range c.Aliases {
				if !slices.Contains(aliases, a) {
					aliases = append(aliases, a)
				}
			}
		}
	}
	if len(ct.Networks) > 0 {
		ct.Aliases = aliases
	}
	ct.Restart = svc.Restart
	if svc.Deploy != nil && svc.Deploy.RestartPolicy != nil && ct.Restart == "" {
		ct.Restart = svc.Deploy.RestartPolicy.Condition
		if ct.Restart == "any" {
			ct.Restart = "always"
		} else if ct.Restart == "none" {
			ct.Restart = "no"
		}
		if n := svc.Deploy.RestartPolicy.MaxAttempts; n != nil && ct.Restart == "on-failure" {
			ct.Restart += ":" + strconv.FormatUint(*n, 10)
		}
	}

	ct.Memory = bytesSpec(svc.MemLimit)
	ct.MemoryReservation = bytesSpec(svc.MemReservation)
	ct.CPUs = float64(svc.CPUS)
	ct.PidsLimit = svc.PidsLimit
	if d := svc.Deploy; d != nil {
		if l := d.Resources.Limits; l != nil {
			if ct.Memory == "" {
				ct.Memory = bytesSpec(l.MemoryBytes)
			}
			if ct.CPUs == 0 {
				ct.CPUs = float64(l.NanoCPUs)
			}
			if ct.PidsLimit == 0 {
				ct.PidsLimit = l.Pids
			}
		}
		if r := d.Resources.Reservations; r != nil && ct.MemoryReservation == "" {
			ct.MemoryReservation = bytesSpec(r.MemoryBytes)
		}
	}
	ct.ShmSize = bytesSpec(svc.ShmSize)
	if l := svc.Logging; l != nil && (l.Driver != "" || len(l.Options) > 0) {
		ct.Logging = &Logging{Driver: l.Driver, Options: maps.Clone(map[string]string(l.Options))}
		if ct.Logging.Driver == "" {
			// Compose leaves the driver to the engine then; liftoff names
			// the one whose options these are most likely to be.
			ct.Logging.Driver = DefaultLogDriver
		}
	}
	ct.User = svc.User
	ct.WorkingDir = svc.WorkingDir
	ct.StopSignal = svc.StopSignal
	ct.Init = svc.Init != nil && *svc.Init
	ct.ReadOnly = svc.ReadOnly
	ct.Tmpfs = append(slices.Clone([]string(svc.Tmpfs)), ct.Tmpfs...)
	ct.CapAdd = slices.Clone(svc.CapAdd)
	ct.CapDrop = slices.Clone(svc.CapDrop)
	ct.SecurityOpt = slices.Clone(svc.SecurityOpt)
	ct.ExtraHosts = svc.ExtraHosts.AsList(":")
	slices.Sort(ct.ExtraHosts)
	for n, u := range svc.Ulimits {
		if ct.Ulimits == nil {
			ct.Ulimits = map[string]string{}
		}
		if u.Single != 0 {
			ct.Ulimits[n] = strconv.Itoa(u.Single)
		} else {
			ct.Ulimits[n] = strconv.Itoa(u.Soft) + ":" + strconv.Itoa(u.Hard)
		}
	}
	if h := svc.HealthCheck; h != nil {
		ct.healthcheck = composeHealth(h)
	}
	if g := svc.StopGracePeriod; g != nil {
		out.StopTimeout = time.Duration(*g)
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		return out, &ComposeError{Service: name, Problems: refused}
	}
	return out, nil
}

// composeLoad is one compose file read while validating a config.
type composeLoad struct {
	proj *ComposeProject
	err  error
}

// ComposeError lists what liftoff cannot honour in a compose service.
type ComposeError struct {
	Service  string
	Problems []string // "key: why"
}

func (e *ComposeError) Error() string {
	return fmt.Sprintf("service %s: %s", e.Service, strings.Join(e.Problems, "; "))
}

// composeKeys says what liftoff does with each key of a compose service:
// "" it maps it, "ignored" it leaves it out on purpose. A key not listed
// is refused.
var composeKeys = map[string]string{
	"image": "", "command": "", "entrypoint": "", "environment": "", "env_file": "",
	"ports": "", "volumes": "", "networks": "", "healthcheck": "", "restart": "",
	"labels": "", "user": "", "working_dir": "", "stop_signal": "", "stop_grace_period": "",
	"mem_limit": "", "mem_reservation": "", "cpus": "", "pids_limit": "", "shm_size": "",
	"logging": "", "init": "", "read_only": "", "tmpfs": "", "cap_add": "", "cap_drop": "",
	"security_opt": "", "extra_hosts": "", "ulimits": "", "container_name": "",
	"deploy": "", "depends_on": "", // checked further in checkComposeKeys

	"build":       "ignored",
	"profiles":    "ignored",
	"pull_policy": "ignored",
	"expose":      "ignored",
	"develop":     "ignored",
	"label_file":  "ignored", // read into labels by the loader
	"attach":      "ignored",
	"stdin_open":  "ignored",
	"tty":         "ignored",
}

// ComposeKeys returns the keys of a compose service that liftoff maps
// and those it ignores; every other key is refused.
func ComposeKeys() (mapped, ignored []string) {
	for k, v := range composeKeys {
		if v == "" {
			mapped = append(mapped, k)
		} else {
			ignored = append(ignored, k)
		}
	}
	slices.Sort(mapped)
	slices.Sort(ignored)
	return mapped, ignored
}

// checkComposeKeys refuses the keys of svc liftoff cannot honour. It reads
// the service as compose-go serializes it, so that a key added to the
// Compose spec is refused until liftoff knows it.
func checkComposeKeys(svc types.ServiceConfig, refuse func(key, why string)) {
	b, err := json.Marshal(svc)
	if err != nil {
		refuse("(service)", err.Error())
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		refuse("(service)", err.Error())
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if string(m[k]) == "null" {
			continue
		}
		if _, ok := composeKeys[k]; !ok {
			refuse(k, "liftoff cannot honour it")
		}
	}
	if svc.Scale != nil && *svc.Scale > 1 {
		refuse("scale", "liftoff runs one container per deployment")
	}
	for _, dep := range slices.Sorted(maps.Keys(svc.DependsOn)) {
		if c := svc.DependsOn[dep].Condition; c != "" && c != types.ServiceConditionStarted {
			refuse("depends_on."+dep+".condition", fmt.Sprintf("%s: liftoff deploys each service on its own and does not wait for another", c))
		}
	}
	if d := svc.Deploy; d != nil {
		if d.Replicas != nil && *d.Replicas != 1 {
			refuse("deploy.replicas", fmt.Sprintf("%d: liftoff runs one container per deployment (more replicas need Swarm: see service:)", *d.Replicas))
		}
		if d.Mode != "" && d.Mode != "replicated" {
			refuse("deploy.mode", d.Mode+": Swarm only")
		}
		for key, given := range map[string]bool{
			"deploy.update_config":                      d.UpdateConfig != nil,
			"deploy.rollback_config":                    d.RollbackConfig != nil,
			"deploy.placement":                          len(d.Placement.Constraints)+len(d.Placement.Preferences) > 0 || d.Placement.MaxReplicas > 0,
			"deploy.endpoint_mode":                      d.EndpointMode != "",
			"deploy.labels":                             len(d.Labels) > 0,
			"deploy.resources.limits.devices":           d.Resources.Limits != nil && len(d.Resources.Limits.Devices) > 0,
			"deploy.resources.reservations.cpus":        d.Resources.Reservations != nil && d.Resources.Reservations.NanoCPUs != 0,
			"deploy.resources.reservations.devices":     d.Resources.Reservations != nil && len(d.Resources.Reservations.Devices) > 0,
			"deploy.resources.reservations.pids":        d.Resources.Reservations != nil && d.Resources.Reservations.Pids != 0,
			"deploy.restart_policy.delay":               d.RestartPolicy != nil && d.RestartPolicy.Delay != nil,
			"deploy.restart_policy.window":              d.RestartPolicy != nil && d.RestartPolicy.Window != nil,
			"deploy.resources.limits.generic_resources": d.Resources.Limits != nil && len(d.Resources.Limits.GenericResources) > 0,
		} {
			if given {
				refuse(key, "Swarm only")
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(svc.Networks)) {
		c := svc.Networks[n]
		if c == nil {
			continue
		}
		if c.Ipv4Address != "" || c.Ipv6Address != "" || len(c.LinkLocalIPs) > 0 || c.MacAddress != "" ||
			len(c.DriverOpts) > 0 || c.Priority != 0 || c.GatewayPriority != 0 || c.InterfaceName != "" {
			refuse("networks."+n, "liftoff takes aliases only (a fixed address would clash when two containers run during a deploy)")
		}
	}
	for i, p := range svc.Ports {
		if p.Mode == "host" {
			refuse(fmt.Sprintf("ports[%d].mode", i), "host: Swarm only")
		}
	}
	for i, v := range svc.Volumes {
		if v.Volume != nil && v.Volume.Subpath != "" {
			refuse(fmt.Sprintf("volumes[%d].volume.subpath", i), "docker run -v has no subpath")
		}
	}
	if h := svc.HealthCheck; h != nil && h.StartInterval != nil {
		refuse("healthcheck.start_interval", "not set by liftoff (the engine API it speaks predates it)")
	}
}

// portSpec writes a compose port as docker run -p does.
func portSpec(p types.ServicePortConfig) string {
	var b strings.Builder
	if p.HostIP != "" {
		if a, err := netip.ParseAddr(p.HostIP); err == nil && a.Is6() {
			b.WriteString("[" + p.HostIP + "]:")
		} else {
			b.WriteString(p.HostIP + ":")
		}
	}
	if p.Published != "" || p.HostIP != "" {
		b.WriteString(p.Published + ":")
	}
	b.WriteString(strconv.FormatUint(uint64(p.Target), 10))
	if p.Protocol != "" && p.Protocol != "tcp" {
		b.WriteString("/" + p.Protocol)
	}
	return b.String()
}

// volumeSpec writes a bind or volume mount as docker run -v does, with
// the volume's name as Compose gives it (project_name).
func volumeSpec(p *types.Project, v types.ServiceVolumeConfig) (string, error) {
	src := v.Source
	if v.Type == types.VolumeTypeVolume {
		if src == "" {
			// Compose hands a recreated container the volume of the one
			// it replaces; liftoff would give each deploy a new, empty one.
			return "", fmt.Errorf("%s: an anonymous volume: name it (a named volume outlives each deploy's container)", v.Target)
		}
		if vol, ok := p.Volumes[src]; ok && vol.Name != "" {
			src = vol.Name
		}
	}
	var opts []string
	if v.ReadOnly {
		opts = append(opts, "ro")
	}
	if b := v.Bind; b != nil {
		if b.Propagation != "" {
			opts = append(opts, b.Propagation)
		}
		if b.SELinux != "" {
			opts = append(opts, b.SELinux)
		}
	}
	if vv := v.Volume; vv != nil && vv.NoCopy {
		opts = append(opts, "nocopy")
	}
	spec := src + ":" + v.Target
	if len(opts) > 0 {
		spec += ":" + strings.Join(opts, ",")
	}
	if _, err := checkVolume(spec); err != nil {
		return "", err
	}
	return spec, nil
}

// tmpfsSpec writes a tmpfs mount as docker run --tmpfs does.
func tmpfsSpec(v types.ServiceVolumeConfig) string {
	var opts []string
	if t := v.Tmpfs; t != nil {
		if t.Size > 0 {
			opts = append(opts, "size="+strconv.FormatInt(int64(t.Size), 10))
		}
		if t.Mode != 0 {
			opts = append(opts, "mode="+strconv.FormatUint(uint64(t.Mode), 8))
		}
	}
	if len(opts) == 0 {
		return v.Target
	}
	return v.Target + ":" + strings.Join(opts, ",")
}

func bytesSpec(b types.UnitBytes) string {
	if b <= 0 {
		return ""
	}
	return strconv.FormatInt(int64(b), 10)
}

// composeHealth is a service's healthcheck as the engine takes it.
func composeHealth(h *types.HealthCheckConfig) *Healthcheck {
	if h.Disable {
		return &Healthcheck{Test: []string{"NONE"}}
	}
	out := &Healthcheck{Test: slices.Clone([]string(h.Test))}
	if h.Interval != nil {
		out.Interval = time.Duration(*h.Interval)
	}
	if h.Timeout != nil {
		out.Timeout = time.Duration(*h.Timeout)
	}
	if h.StartPeriod != nil {
		out.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.Retries != nil {
		out.Retries = int(*h.Retries)
	}
	return out
}

// applyCompose reads d's compose service into d: image, container spec,
// stop timeout, and the environment liftoff's layers go on top of. What
// the deployment sets itself beside compose must not contradict it.
//
// loaded, when not nil, holds the files read so far by file and project,
// so that a config with several services of one file reads it once.
func (c *Config) applyCompose(p *problems, at string, d *Deployment, loaded map[[2]string]composeLoad) {
	cm := d.Compose
	if cm == nil {
		if c.nullPaths[at+".compose"] {
			p.addf(at+".compose", "given with no value: remove it, or give file:")
		}
		return
	}
	if cm.File == "" {
		p.addf(at+".compose.file", "missing: the compose file, e.g. docker-compose.yml")
		return
	}
	if pr := cm.Project; pr != "" && pr != composeloader.NormalizeProjectName(pr) {
		p.addf(at+".compose.project", "%s: want lowercase letters, digits, - and _, starting with a letter or digit, as Compose does", p.quote(at+".compose.project", pr))
		return
	}
	name := cm.Service
	if name == "" {
		name = d.Name
	}
	file := c.resolve(cm.File)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Without the service, the image it names is unknown: "image:
	// missing" would only repeat the error.
	p.done[at+".image"] = d.Image == ""
	key := [2]string{file, cm.Project}
	l, ok := loaded[key]
	if !ok {
		l.proj, l.err = LoadCompose(ctx, file, cm.Project, c.lookup)
		if loaded != nil {
			loaded[key] = l
		}
	}
	proj, err := l.proj, l.err
	if err != nil {
		p.addf(at+".compose", "%s: %s", cm.File, composeLoadError(err))
		return
	}
	if d.processServices() {
		c.applyProcessServices(p, at, d, proj)
		// Without one image for the services, an error said why.
		p.done[at+".image"] = d.Image == ""
		return
	}
	svc, err := proj.Service(name)
	var ce *ComposeError
	switch {
	case errors.As(err, &ce):
		for _, pr := range ce.Problems {
			p.addf(at+".compose", "%s: service %s: %s", cm.File, name, pr)
		}
		return
	case err != nil:
		p.addf(at+".compose.service", "%s: %v", cm.File, err)
		return
	}
	cm.svc = svc
	p.done[at+".image"] = false

	if d.Image == "" {
		d.Image = svc.Image
	} else if n, err := reference.ParseNormalizedNamed(d.Image); err == nil && n.Name() != svc.Image {
		p.addf(at+".image", "%s, but service %s of %s runs %s: give one of them", p.quote(at+".image", d.Image), name, cm.File, svc.Image)
	}
	if cm.own == nil {
		own := d.Container
		cm.own, cm.ownStop = &own, d.StopTimeout
	}
	own := *cm.own
	for _, k := range givenContainerKeys(&own) {
		p.addf(at+".container."+k, "comes from service %s of %s: set it there", name, cm.File)
	}
	ct := serviceContainer(svc, own, cm.replica)
	d.Container = ct
	if d.StopTimeout = cm.ownStop; d.StopTimeout == 0 {
		d.StopTimeout = svc.StopTimeout
	}
	if ct.healthcheck != nil && len(d.Health.Cmd) > 0 {
		p.addf(at+".health.cmd", "service %s of %s has a healthcheck: keep one of them", name, cm.File)
	}
}

// serviceContainer is the container of replica n (0: the only one) of
// svc, with Compose's labels, under own's name if it gives one.
func serviceContainer(svc *ComposeService, own Container, n int) Container {
	ct := svc.Container
	ct.Labels = maps.Clone(ct.Labels)
	if ct.Labels == nil {
		ct.Labels = map[string]string{}
	}
	maps.Copy(ct.Labels, composeLabels(svc, n))
	if own.Name != "" {
		ct.Name = own.Name
	}
	ct.ReplaceUnmanaged = own.ReplaceUnmanaged
	return ct
}

// applyProcessServices reads the compose service of each process of d
// (processes.<name>.service) from proj: one image for all of them (one
// push deploys the app), and the app's own container reduced to what is
// liftoff's (name, replace_unmanaged). Each unit takes its service's
// spec in Deployment.unit.
func (c *Config) applyProcessServices(p *problems, at string, d *Deployment, proj *ComposeProject) {
	cm := d.Compose
	if cm.Service != "" {
		p.addf(at+".compose.service", "the processes name their services (processes.<name>.service): drop compose.service")
		return
	}
	images := map[string][]string{} // image → "process (service x)"
	for _, name := range slices.Sorted(maps.Keys(d.Processes)) {
		pr := d.Processes[name]
		pp := at + ".processes." + name + ".service"
		if pr.Service == "" {
			p.addf(pp, "missing: with compose: and a process naming its service, every process names one (services of %s)", cm.File)
			continue
		}
		svc, err := proj.Service(pr.Service)
		var ce *ComposeError
		switch {
		case errors.As(err, &ce):
			for _, why := range ce.Problems {
				p.addf(pp, "%s: service %s: %s", cm.File, pr.Service, why)
			}
			continue
		case err != nil:
			p.addf(pp, "%s: %v", cm.File, err)
			continue
		}
		if svc.Container.Name != "" {
			p.addf(pp, "%s: service %s: container_name: a process's containers are named <name>-%s-<n>: drop container_name", cm.File, pr.Service, name)
			continue
		}
		pr.svc = svc
		d.Processes[name] = pr
		images[svc.Image] = append(images[svc.Image], fmt.Sprintf("%s (service %s)", name, pr.Service))
	}
	if len(images) > 1 {
		var list []string
		for _, img := range slices.Sorted(maps.Keys(images)) {
			list = append(list, fmt.Sprintf("%s runs %s", strings.Join(images[img], ", "), img))
		}
		p.addf(at+".processes", "the services of %s run different images (%s): an app's processes run one image, deployed by one push; give the others a deployment of their own", cm.File, strings.Join(list, "; "))
		return
	}
	for img := range images {
		if d.Image == "" {
			d.Image = img
		} else if n, err := reference.ParseNormalizedNamed(d.Image); err == nil && n.Name() != img {
			p.addf(at+".image", "%s, but the services of %s run %s: give one of them", p.quote(at+".image", d.Image), cm.File, img)
		}
	}
	if cm.own == nil {
		own := d.Container
		cm.own, cm.ownStop = &own, d.StopTimeout
	}
	own := *cm.own
	for _, k := range givenContainerKeys(&own) {
		p.addf(at+".container."+k, "comes from each process's service of %s: set it there", cm.File)
	}
	d.Container = Container{Name: own.Name, ReplaceUnmanaged: own.ReplaceUnmanaged}
	d.StopTimeout = cm.ownStop // each unit falls back on its service's
}

// composeLoadError is compose-go's error on one line, as every error of
// the config is (LoadCompose has taken the values out of it).
func composeLoadError(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// composeLabels are the labels Docker Compose puts on a service's first
// container, which `docker compose ps` and `logs` look for.
func composeLabels(s *ComposeService, n int) map[string]string {
	return map[string]string{
		ComposeProjectLabel:     s.Project,
		ComposeServiceLabel:     s.Service,
		ComposeNumberLabel:      strconv.Itoa(max(n, 1)),
		ComposeOneoffLabel:      "False",
		ComposeWorkingDirLabel:  s.WorkingDir,
		ComposeConfigFilesLabel: strings.Join(s.Files, ","),
		ComposeVersionLabel:     ComposeVersion,
	}
}

// givenContainerKeys returns the keys of container: that were given, but
// for name and replace_unmanaged, which are liftoff's own.
func givenContainerKeys(ct *Container) []string {
	var keys []string
	add := func(key string, given bool) {
		if given {
			keys = append(keys, key)
		}
	}
	add("ports", len(ct.Ports) > 0)
	add("volumes", len(ct.Volumes) > 0)
	add("networks", len(ct.Networks) > 0)
	add("aliases", len(ct.Aliases) > 0)
	add("restart", ct.Restart != "")
	add("command", ct.Command != nil)
	add("labels", len(ct.Labels) > 0)
	return append(keys, givenSettings(ct)...)
}

// Fresh returns d with its compose service read again, as a deploy that
// starts now must run it: like env_files, a compose file (and its .env
// and env_files) edited since the config was loaded applies to the next
// deploy without a reload. d is not changed. A deployment without compose
// is returned as is. An error, naming the file, the service and the key,
// means the file no longer gives a container this deployment can run
// (among others: another image, another container name: those need a
// reload, which checks the whole config).
func (c *Config) Fresh(d *Deployment) (*Deployment, error) {
	if d.Compose == nil || d.Compose.own == nil || d.processServices() {
		// An app whose processes name services: each unit is read
		// again on its own (the unit has no processes).
		return d, nil
	}
	nd := *d
	cm := *d.Compose
	nd.Compose = &cm
	p := newProblems(c.secretPaths)
	c.applyCompose(p, d.path, &nd, nil)
	if err := p.err(); err != nil {
		return nil, err
	}
	if nd.Container.Name == "" {
		nd.Container.Name = nd.Name
	}
	if nd.StopTimeout == 0 {
		nd.StopTimeout = DefaultStopTimeout
	}
	at := d.path + ".container"
	if nd.Container.Name != d.Container.Name {
		p.addf(at+".name", "service %s of %s now names the container %s, not %s: reload liftoff's config to rename it", cm.svc.Service, cm.File, nd.Container.Name, d.Container.Name)
	}
	if nd.Strategy == StartFirst && len(nd.Container.Ports) > 0 {
		p.addf(d.path+".strategy", "start-first runs two containers at once, and service %s of %s now publishes ports", cm.svc.Service, cm.File)
	}
	checkContainer(p, at, &nd.Container, nil)
	if err := p.err(); err != nil {
		return nil, err
	}
	return &nd, nil
}
