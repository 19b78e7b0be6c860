package deploy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// fakeRuntime is an in-memory container runtime: containers by id with
// unique names, a registry of tags → digests, and hooks to fail or block
// any call.
type fakeRuntime struct {
	mu         sync.Mutex
	tags       map[string]string // "host/repo:tag" → digest
	imageEnv   map[string][]string
	containers map[string]*Container
	env        map[string][]string // container id → its env
	aliases    map[string][]string // container id → its network aliases
	networks   map[string][]string // container id → its networks
	ports      map[string][]string // container id → its spec's ports
	nextPort   int                 // the last host port given
	nextID     int
	calls      []string

	// fail, if set, may return an error for a call (op, arg) before it runs.
	fail func(op, arg string) error
	// exitOnStart makes a started container exit at once with this code
	// when its image contains the string.
	exitOnStart map[string]int
	// health gives a container whose image contains the key that Docker
	// health status ("starting" holds a gate until its deadline).
	health map[string]string
	// resolveGate, if set, is received from before Resolve answers.
	resolveGate chan struct{}
	// subnets: the networks have subnets of their own, so Drain takes a
	// container's aliases away; without, it leaves them (as Docker does on
	// a network created plainly).
	subnets bool
	// oneOffs are the one-off containers run, in order; runOnce, if set,
	// says how each ends (default: exit 0, no output).
	oneOffs []OneOff
	runOnce func(OneOff) OneOffResult
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{
		tags:        map[string]string{},
		imageEnv:    map[string][]string{},
		containers:  map[string]*Container{},
		env:         map[string][]string{},
		aliases:     map[string][]string{},
		networks:    map[string][]string{},
		ports:       map[string][]string{},
		exitOnStart: map[string]int{},
		health:      map[string]string{},
	}
}

func (f *fakeRuntime) call(op, arg string) error {
	f.mu.Lock()
	f.calls = append(f.calls, op+" "+arg)
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return fail(op, arg)
	}
	return nil
}

func (f *fakeRuntime) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, op+" ") {
			n++
		}
	}
	return n
}

func (f *fakeRuntime) push(ref, digest string, env ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tags[ref] = digest
	f.imageEnv[digest] = env
}

func (f *fakeRuntime) byName(name string) *Container {
	for _, c := range f.containers {
		if c.Name == name || c.ID == name {
			return c
		}
	}
	return nil
}

// add puts a container in place as if created earlier.
func (f *fakeRuntime) add(c Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	if c.ID == "" {
		c.ID = fmt.Sprintf("c%d", f.nextID)
	}
	f.containers[c.ID] = &c
}

func (f *fakeRuntime) get(name string) (Container, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(name)
	if c == nil {
		return Container{}, false
	}
	return *c, true
}

func (f *fakeRuntime) all() []Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Container
	for _, c := range f.containers {
		out = append(out, *c)
	}
	return out
}

func (f *fakeRuntime) Ping(ctx context.Context) error { return f.call("ping", "") }

func (f *fakeRuntime) Resolve(ctx context.Context, ref string, auth Auth) (string, error) {
	if err := f.call("resolve", ref); err != nil {
		return "", err
	}
	if f.resolveGate != nil {
		select {
		case <-f.resolveGate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.tags[ref]
	if !ok {
		return "", fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	return d, nil
}

func (f *fakeRuntime) Pull(ctx context.Context, ref string, auth Auth) error {
	return f.call("pull", ref)
}

func (f *fakeRuntime) ImageEnv(ctx context.Context, ref string) ([]string, error) {
	if err := f.call("image_env", ref); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, digest, _ := strings.Cut(ref, "@")
	return f.imageEnv[digest], nil
}

func (f *fakeRuntime) Inspect(ctx context.Context, name string) (Container, error) {
	if err := f.call("inspect", name); err != nil {
		return Container{}, err
	}
	c, ok := f.get(name)
	if !ok {
		return Container{}, fmt.Errorf("container %s: %w", name, ErrNotFound)
	}
	f.mu.Lock()
	for marker, h := range f.health {
		if strings.Contains(c.Image, marker) {
			c.Health = h
		}
	}
	f.mu.Unlock()
	return c, nil
}

func (f *fakeRuntime) Create(ctx context.Context, s Spec) (string, error) {
	if err := f.call("create", s.Name); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName(s.Name) != nil {
		return "", fmt.Errorf("name %s in use", s.Name)
	}
	f.nextID++
	id := fmt.Sprintf("c%d", f.nextID)
	f.env[id] = append([]string(nil), s.Env...)
	f.aliases[id] = append([]string(nil), s.Aliases...)
	f.networks[id] = append([]string(nil), s.Networks...)
	f.ports[id] = append([]string(nil), s.Ports...)
	f.containers[id] = &Container{ID: id, Name: s.Name, Image: s.Image, Labels: s.Labels, Status: "created"}
	return id, nil
}

func (f *fakeRuntime) Start(ctx context.Context, id string) error {
	if err := f.call("start", id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	if c == nil {
		return ErrNotFound
	}
	c.Running, c.Status, c.StartedAt = true, "running", time.Now()
	// "127.0.0.1::8000": a free loopback port, a new one at each start.
	c.Published = nil
	for _, p := range f.ports[c.ID] {
		if ip, port, ok := strings.Cut(p, "::"); ok {
			f.nextPort++
			c.Published = map[string]string{port + "/tcp": fmt.Sprintf("%s:%d", ip, 40000+f.nextPort)}
		}
	}
	for marker, code := range f.exitOnStart {
		if strings.Contains(c.Image, marker) {
			c.Running, c.Status, c.ExitCode = false, "exited", code
		}
	}
	return nil
}

func (f *fakeRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	if err := f.call("stop", id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	if c == nil {
		return ErrNotFound
	}
	c.Running, c.Status, c.Published = false, "exited", nil
	return nil
}

func (f *fakeRuntime) Rename(ctx context.Context, id, name string) error {
	if err := f.call("rename", id+" "+name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName(name) != nil {
		return fmt.Errorf("name %s in use", name)
	}
	c := f.byName(id)
	if c == nil {
		return ErrNotFound
	}
	c.Name = name
	return nil
}

func (f *fakeRuntime) Remove(ctx context.Context, id string) error {
	if err := f.call("remove", id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.byName(id); c != nil {
		delete(f.containers, c.ID)
	}
	return nil
}

func (f *fakeRuntime) SetAliases(ctx context.Context, id string, networks, aliases []string) error {
	if err := f.call("set_aliases", id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	if c == nil {
		return ErrNotFound
	}
	f.aliases[c.ID] = append([]string(nil), aliases...)
	return nil
}

func (f *fakeRuntime) Drain(ctx context.Context, id string) (drained, kept []string, err error) {
	if err := f.call("drain", id); err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	switch {
	case c == nil:
		return nil, nil, ErrNotFound
	case !c.Running || len(f.aliases[c.ID]) == 0:
		return nil, nil, nil
	case !f.subnets:
		return nil, append([]string(nil), f.networks[c.ID]...), nil
	}
	f.aliases[c.ID] = nil
	return append([]string(nil), f.networks[c.ID]...), nil, nil
}

func (f *fakeRuntime) RunOnce(ctx context.Context, spec OneOff) (OneOffResult, error) {
	if err := f.call("run", spec.Name); err != nil {
		return OneOffResult{}, err
	}
	f.mu.Lock()
	f.oneOffs = append(f.oneOffs, spec)
	run := f.runOnce
	f.mu.Unlock()
	if run == nil {
		return OneOffResult{}, nil
	}
	return run(spec), nil
}

var _ Runtime = (*fakeRuntime)(nil)

// List returns the containers that carry all of labels ("" matches any
// value), as the docker adapter's List.
func (f *fakeRuntime) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	if err := f.call("list", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Container
next:
	for _, c := range f.containers {
		for k, v := range labels {
			if got, ok := c.Labels[k]; !ok || v != "" && got != v {
				continue next
			}
		}
		out = append(out, *c)
	}
	return out, nil
}
