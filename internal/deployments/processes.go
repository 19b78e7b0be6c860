package deployments

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Process is one of deployments[].processes: a process of an app, run from
// the deployment's image with the deployment's final environment, with its
// own command and, optionally, its own container settings and gate. A
// deployment with processes is deployed as one: one resolve, pull, policy
// check, backup and release, then each process swapped in turn (see Order),
// and all of them rolled back if one fails its gate.
type Process struct {
	// Service, with the deployment's compose:, names the compose service
	// the process runs: its command, container spec, environment and
	// healthcheck come from there (as compose.service does for a single
	// deployment). Either every process names one or none does.
	Service string `yaml:"service"`
	// Command is run after the image's entrypoint, as docker run IMAGE
	// CMD...; empty: the image's CMD.
	Command []string `yaml:"command"`
	// Scale is how many replicas run on the deployment's engine (default
	// 1), each a container of its own.
	Scale *int `yaml:"scale"`
	// Container, if set, is the process's container spec: the same type
	// as a deployment's. Its ports, aliases, restart and labels add to or
	// replace the deployment's (see Unit); name and command are refused
	// (the name is derived, the command is Command).
	Container *Container `yaml:"container"`
	// Health, if set, is the process's gate instead of the deployment's.
	Health *Health `yaml:"health"`
	// Proxy, on one process of the app (its web), puts liftoff's front
	// door before it: its one replica is swapped as a proxied
	// deployment is (start beside, gate, switch, drain).
	Proxy *Proxy `yaml:"proxy"`

	svc *ComposeService // Service as loaded by Validate
}

// Unit is one container of an app of several processes: a replica of a
// process. Deployment is what the engine swaps for it: the app's
// deployment with the process's container spec and gate, named
// AppName/process.replica (a name no deployment can have), with no
// processes, release, backup or proxy of its own.
type Unit struct {
	Process    string
	Replica    int // 1..scale
	Deployment *Deployment
}

// UnitName is the name the engine and the journal know a replica of a
// process by: "dblood/web.1". Deployment names cannot hold a '/'.
func UnitName(app, process string, replica int) string {
	return app + "/" + process + "." + strconv.Itoa(replica)
}

// UnitContainerName is the container's name of replica n of a process:
// <container.name>-<process>-<n>, as Docker Compose names a service's.
func UnitContainerName(container, process string, replica int) string {
	return container + "-" + process + "-" + strconv.Itoa(replica)
}

// HasProcesses tells whether the deployment is an app of several
// processes.
func (d *Deployment) HasProcesses() bool { return len(d.Processes) > 0 }

// Units returns the deployment's containers, process by process in the
// order they are swapped, replicas in order; nil for a deployment without
// processes. Set by Validate.
func (d *Deployment) Units() []Unit { return d.units }

// ProcessOrder returns the order the processes are swapped in: Order if
// given, else by name with "web" last (what serves users changes last,
// once the others run the new version).
func (d *Deployment) ProcessOrder() []string {
	if len(d.Order) > 0 {
		return d.Order
	}
	names := slices.Sorted(maps.Keys(d.Processes))
	if i := slices.Index(names, "web"); i >= 0 {
		names = append(slices.Delete(names, i, i+1), "web")
	}
	return names
}

func (d *Deployment) hasProcess(name string) bool {
	_, ok := d.Processes[name]
	return ok
}

// Unit returns the unit deployment named name ("app/web.1") of a
// configured app, or nil.
func (c *Config) Unit(name string) *Unit {
	app, _, ok := strings.Cut(name, "/")
	if !ok {
		return nil
	}
	d := c.Deployment(app)
	if d == nil {
		return nil
	}
	for i := range d.units {
		if d.units[i].Deployment.Name == name {
			return &d.units[i]
		}
	}
	return nil
}

// checkProcesses checks deployments[].processes and order, and builds the
// units. containers and published are the container names and host ports
// taken so far on the deployment's engine; the units' are added.
func (c *Config) checkProcesses(p *problems, dp string, d *Deployment, containers map[string]int, index int, published []hostPort, listens map[string]string) []hostPort {
	if len(d.Processes) == 0 {
		if len(d.Order) > 0 {
			p.addf(dp+".order", "order is the order of processes: the deployment has none")
		}
		return published
	}
	pp := dp + ".processes"
	before := len(p.list)
	var proxied []string // the processes with a proxy
	// What belongs to a process, not to the app as a whole.
	switch {
	case d.Service != nil:
		p.addf(pp, "a Swarm service cannot have processes (give each process a deployment of its own)")
	case d.Proxy != nil:
		p.addf(dp+".proxy", "with processes, the front door belongs to the process that serves users: processes.<name>.proxy (e.g. processes.web.proxy)")
	case len(d.Container.Ports) > 0:
		p.addf(dp+".container.ports", "with processes, ports belong to the process that serves them: processes.<name>.container.ports")
	case len(d.Container.Aliases) > 0:
		p.addf(dp+".container.aliases", "with processes, aliases belong to a process: processes.<name>.container.aliases")
	case len(d.Container.Command) > 0:
		p.addf(dp+".container.command", "with processes, each process has its command: processes.<name>.command")
	}
	for _, name := range slices.Sorted(maps.Keys(d.Processes)) {
		at := pp + "." + name
		pr := d.Processes[name]
		switch {
		case !validName(name, 1):
			p.addf(pp, "invalid process name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*, as it names its containers", name)
		case reservedSuffix(name):
			p.addf(pp, "process name %q ends like the containers liftoff keeps during a deploy (%s)", name, strings.Join(reservedSuffixes(), ", "))
		}
		if pr.Scale != nil && *pr.Scale < 1 {
			p.addf(at+".scale", "want 1 or more replicas (default 1)")
		}
		if pr.Proxy != nil {
			proxied = append(proxied, name)
			if pr.Scale != nil && *pr.Scale > 1 {
				p.addf(at+".scale", "the front door sends a process's requests to one container: a process with proxy runs 1 replica")
			}
			if pr.Container != nil && len(pr.Container.Ports) > 0 {
				p.addf(at+".container.ports", "the front door reaches the process on a loopback port of its own: drop ports")
			}
			if pr.svc != nil && len(pr.svc.Container.Ports) > 0 {
				p.addf(at+".proxy", "service %s of %s publishes ports, and the front door reaches the process on a loopback port of its own: drop the service's ports", pr.Service, d.Compose.File)
			}
		} else if c.nullPaths[at+".proxy"] {
			p.addf(at+".proxy", "given with no value: remove it, or give its settings")
		}
		if pr.Service != "" && d.Compose == nil {
			p.addf(at+".service", "names a compose service: give compose: {file: ...}")
		} else if pr.Service != "" {
			if len(pr.Command) > 0 {
				p.addf(at+".command", "comes from service %s of %s: set it there", pr.Service, d.Compose.File)
			}
			if pr.Container != nil {
				p.addf(at+".container", "comes from service %s of %s: set it there", pr.Service, d.Compose.File)
			}
			if pr.Health != nil && len(pr.Health.Cmd) > 0 && pr.svc != nil && pr.svc.Container.healthcheck != nil {
				p.addf(at+".health.cmd", "service %s of %s has a healthcheck: keep one of them", pr.Service, d.Compose.File)
			}
		}
		if pr.Container != nil {
			if pr.Container.Name != "" {
				p.addf(at+".container.name", "a process's containers are named <container.name>-%s-<n>: drop name", name)
			}
			if len(pr.Container.Command) > 0 {
				p.addf(at+".container.command", "give the process's command as %s.command", at)
			}
			if pr.Container.ReplaceUnmanaged {
				p.addf(at+".container.replace_unmanaged", "set replace_unmanaged on the deployment's container")
			}
		}
		if pr.Health != nil && pr.Proxy == nil && strings.Contains(pr.Health.URL, "{upstream}") {
			p.addf(at+".health.url", "{upstream} is the address liftoff's proxy reaches the container at: the process has no proxy (use {container})")
		}
		if pr.Health != nil {
			pr.Health.fillDefaults()
			checkHealth(p, at+".health", pr.Health)
		}
	}
	if len(proxied) > 1 {
		p.addf(pp, "%s each have a proxy: give the front door to one process, the one that serves users", strings.Join(proxied, " and "))
	}
	if len(d.Order) > 0 {
		seen := map[string]bool{}
		for j, name := range d.Order {
			op := fmt.Sprintf("%s.order[%d]", dp, j)
			switch {
			case !d.hasProcess(name):
				p.addf(op, "unknown process %q (have: %s)", name, strings.Join(slices.Sorted(maps.Keys(d.Processes)), ", "))
			case seen[name]:
				p.addf(op, "process %q listed twice", name)
			}
			seen[name] = true
		}
		for _, name := range slices.Sorted(maps.Keys(d.Processes)) {
			if !seen[name] {
				p.addf(dp+".order", "does not list process %q: list every process once, or leave order out (by name, web last)", name)
			}
		}
	}
	if len(p.list) > before {
		return published
	}
	d.units = nil
	for _, name := range d.ProcessOrder() {
		pr := d.Processes[name]
		scale := 1
		if pr.Scale != nil {
			scale = *pr.Scale
		}
		at := pp + "." + name
		for n := 1; n <= scale; n++ {
			u := d.unit(name, n, pr)
			cn := u.Container.Name
			if j, dup := containers[d.Engine+"/"+cn]; dup && j != index {
				p.addf(at, "its container %q is also the container of deployments[%d]", cn, j)
			} else {
				containers[d.Engine+"/"+cn] = index
			}
			published = checkContainer(p, fmt.Sprintf("%s.container(replica %d)", at, n), &u.Container, published)
			if u.Strategy == StartFirst && len(u.Container.Ports) > 0 {
				p.addf(at+".container.ports", "start-first runs two containers at once, so it cannot publish ports (use networks and aliases)")
			}
			if u.Proxy != nil {
				c.checkProxy(p, at+".proxy", u, listens)
			}
			d.units = append(d.units, Unit{Process: name, Replica: n, Deployment: u})

		}
	}
	return published
}

// unit is the deployment the engine swaps for replica n of process name:
// the app's, with the process's container settings on top of the app's
// container (ports and aliases the process's only; volumes and networks
// the process's if it gives any; labels merged, the process's win;
// restart the process's if set) and its gate.
func (d *Deployment) unit(name string, n int, pr Process) *Deployment {
	u := *d
	u.Name = UnitName(d.Name, name, n)
	u.Processes, u.Order, u.units = nil, nil, nil
	u.Release = Release{}
	u.Proxy, u.Service, u.Poll = pr.Proxy, nil, nil
	if pr.svc != nil {
		return d.serviceUnit(&u, name, n, pr)
	}
	ct := Container{
		Name:             UnitContainerName(d.ContainerName(), name, n),
		Volumes:          d.Container.Volumes,
		Networks:         d.Container.Networks,
		Restart:          d.Container.Restart,
		Command:          pr.Command,
		Labels:           maps.Clone(d.Container.Labels),
		ReplaceUnmanaged: d.Container.ReplaceUnmanaged,
	}
	if pc := pr.Container; pc != nil {
		ct.Ports, ct.Aliases = pc.Ports, pc.Aliases
		if len(pc.Volumes) > 0 {
			ct.Volumes = pc.Volumes
		}
		if len(pc.Networks) > 0 {
			ct.Networks = pc.Networks
		}
		if pc.Restart != "" {
			ct.Restart = pc.Restart
		}
		if len(pc.Labels) > 0 && ct.Labels == nil {
			ct.Labels = map[string]string{}
		}
		maps.Copy(ct.Labels, pc.Labels)
	}
	u.Container = ct
	if pr.Health != nil {
		u.Health = *pr.Health
	}
	return &u
}

// serviceUnit fills u, replica n of process name, from the compose
// service the process names: its container spec and stop timeout, with
// Compose's labels for that service and replica, and, through u.Compose,
// its environment (the layers go on top) and Fresh reading it again at
// each deploy.
func (d *Deployment) serviceUnit(u *Deployment, name string, n int, pr Process) *Deployment {
	cm := *d.Compose
	cm.Service, cm.svc, cm.replica = pr.Service, pr.svc, n
	own := Container{Name: UnitContainerName(d.ContainerName(), name, n), ReplaceUnmanaged: d.Container.ReplaceUnmanaged}
	cm.own = &own
	u.Compose = &cm
	u.Container = serviceContainer(pr.svc, own, n)
	if u.StopTimeout = cm.ownStop; u.StopTimeout == 0 {
		u.StopTimeout = pr.svc.StopTimeout
	}
	if u.StopTimeout == 0 {
		u.StopTimeout = DefaultStopTimeout
	}
	if pr.Health != nil {
		u.Health = *pr.Health
	}
	return u
}

// proxyPath is the field of d's proxy: deployments[i].proxy, or for a
// unit deployments[i].processes.<name>.proxy.
func (d *Deployment) proxyPath() string {
	_, unit, ok := strings.Cut(d.Name, "/")
	if !ok {
		return d.path + ".proxy"
	}
	if i := strings.LastIndexByte(unit, '.'); i >= 0 {
		unit = unit[:i]
	}
	return d.path + ".processes." + unit + ".proxy"
}
