package deployments

import (
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/go-connections/nat"
)

// checkContainerName checks a container name given in the config.
func checkContainerName(p *problems, at, name string) {
	switch {
	case !validName(name, 2):
		p.addf(at, "invalid container name %s: want [a-zA-Z0-9][a-zA-Z0-9_.-]+", p.quote(at, name))
	case reservedSuffix(name):
		p.addf(at, "%s ends like the containers liftoff keeps or runs during a deploy (%s)", p.quote(at, name), strings.Join(reservedSuffixes(), ", "))
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

// reservedSuffixes end the names of the containers liftoff keeps or runs
// beside a deployment's own during a deploy: the previous and next ones of
// a swap, and the one-off backup and release containers (the deploy
// package's PrevSuffix, NextSuffix, BackupSuffix, ReleaseSuffix).
func reservedSuffixes() []string {
	return []string{".liftoff-prev", ".liftoff-next", ".liftoff-backup", ".liftoff-release"}
}

// reservedSuffix tells whether a container name could be taken for one
// that liftoff keeps or runs beside another deployment's during a deploy,
// and removes once done or when an interrupted deploy left it.
func reservedSuffix(s string) bool {
	for _, suffix := range reservedSuffixes() {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

// checkContainer checks the spec the docker adapter will build a container
// from, with Docker's own -p parser, so that a deploy cannot fail on a
// typo. It returns published with the container's host ports added.
func checkContainer(p *problems, at string, ct *Container, published []hostPort) []hostPort {
	published = checkPorts(p, at, ct.Ports, published)
	checkVolumes(p, at, ct.Volumes)
	checkNetworks(p, at, ct.Networks)
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
	for _, k := range slices.Sorted(maps.Keys(ct.Labels)) {
		switch {
		case k == "":
			p.addf(at+".labels", "empty label key")
		case strings.HasPrefix(k, "liftoff."):
			p.addf(at+".labels", "%q: liftoff.* labels are liftoff's own (they tell which containers it manages)", k)
		}
	}
	checkSettings(p, at, ct)
	return published
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

// checkPorts checks the container's ports (`docker run -p` specs) and
// returns published with their host ports added, reporting one that
// another container publishes already.
func checkPorts(p *problems, at string, ports []string, published []hostPort) []hostPort {
	for j, spec := range ports {
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
	return published
}

// checkNetworks checks the networks a container joins (at.networks).
func checkNetworks(p *problems, at string, networks []string) {
	nets := map[string]bool{}
	for j, n := range networks {
		np := fmt.Sprintf("%s.networks[%d]", at, j)
		switch {
		case n == "":
			p.addf(np, "empty network name")
		case nets[n]:
			p.addf(np, "listed twice")
		}
		nets[n] = true
	}
}

// checkVolumes checks the container's volumes and that no two mount on the
// same destination.
func checkVolumes(p *problems, at string, volumes []string) {
	dsts := map[string]int{}
	for j, spec := range volumes {
		vp := fmt.Sprintf("%s.volumes[%d]", at, j)
		dst, err := checkVolume(spec)
		if err != nil {
			if p.secret(vp) {
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
