package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Eng is a connection to the real Docker engine for one test. What the test
// makes through it (UniqueName, Network, Registry) is removed when the test
// ends, pass or fail: containers first, then networks, then images.
type Eng struct {
	cli *client.Client

	mu       sync.Mutex
	prefixes []string
	networks []string
	images   []string // references pulled from its registries, noted as each closed
	swarm    bool     // it holds the swarm (see Swarm)
}

// Engine connects to the Docker engine of DOCKER_HOST or the local socket.
// Where none answers the test is skipped, loudly, unless
// LIFTOFF_REQUIRE_DOCKER=1, which makes it fail.
func Engine(t testing.TB) *Eng {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err != nil {
			cli.Close()
		}
	}
	if err != nil {
		if os.Getenv("LIFTOFF_REQUIRE_DOCKER") == "1" {
			t.Fatalf("testenv: no Docker engine answers (LIFTOFF_REQUIRE_DOCKER=1): %v", err)
		}
		t.Skipf("SKIPPED, NO DOCKER ENGINE: none answers at DOCKER_HOST or the local socket (%v); this test needs one; set LIFTOFF_REQUIRE_DOCKER=1 to fail instead", err)
	}
	e := &Eng{cli: cli}
	t.Cleanup(func() {
		e.sweep(t)
		e.leaveSwarm(t)
		cli.Close()
	})
	return e
}

// Client returns the engine client, for what the helpers do not cover.
func (e *Eng) Client() *client.Client { return e.cli }

// Registry starts a registry like the package-level Registry and, when the
// test ends, removes from the engine every image pulled from it. Those
// images are listed as the registry closes, when the test ends or the test
// closes it, while its port is still its own: once closed, another test's
// registry may get the same port, and so the same image names.
func (e *Eng) Registry(t testing.TB, opts ...RegOption) *Reg {
	t.Helper()
	return Registry(t, append(slices.Clip(opts), beforeClose(func(r *Reg) { e.noteImages(t, r) }))...)
}

// noteImages notes, for the sweep, every image reference the engine holds
// from the registry r.
func (e *Eng) noteImages(t testing.TB, r *Reg) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := e.cli.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		t.Errorf("testenv: cleanup: list images of registry %s: %v", r.Host(), err)
		return
	}
	var refs []string
	for _, img := range list.Items {
		for _, ref := range slices.Concat(img.RepoTags, img.RepoDigests) {
			if strings.HasPrefix(ref, r.Host()+"/") {
				refs = append(refs, ref)
			}
		}
	}
	e.mu.Lock()
	e.images = append(e.images, refs...)
	e.mu.Unlock()
}

// UniqueName returns prefix plus a random suffix, lowercase and valid as a
// container or network name. Every container whose name starts with it
// (so also NAME.liftoff-prev and NAME.liftoff-next) is removed when the
// test ends.
func (e *Eng) UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	prefix = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, prefix)
	if prefix == "" || !isAlnum(prefix[0]) {
		prefix = "t" + prefix
	}
	n := "lt-" + prefix + "-" + hex.EncodeToString(b[:])
	e.CleanupContainer(t, n)
	return n
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// CleanupContainer removes, when the test ends, every container whose name
// starts with name.
func (e *Eng) CleanupContainer(t testing.TB, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prefixes = append(e.prefixes, name)
}

// Network creates a bridge network with that name and returns its id. It is
// removed when the test ends.
func (e *Eng) Network(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge"})
	if err != nil {
		t.Fatalf("testenv: create network %s: %v", name, err)
	}
	e.mu.Lock()
	e.networks = append(e.networks, res.ID)
	e.mu.Unlock()
	return res.ID
}

// sweep removes what the test made; failures to remove are test errors, as
// leftovers break later runs.
func (e *Eng) sweep(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.mu.Lock()
	prefixes, networks, images := e.prefixes, e.networks, e.images
	e.mu.Unlock()

	if len(prefixes) > 0 && swarmHeld() {
		e.removeServices(ctx, t, prefixes)
	}
	if len(prefixes) > 0 {
		list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err != nil {
			t.Errorf("testenv: cleanup: list containers: %v", err)
		}
		for _, c := range list.Items {
			if !slices.ContainsFunc(c.Names, func(n string) bool {
				return slices.ContainsFunc(prefixes, func(p string) bool {
					return strings.HasPrefix(strings.TrimPrefix(n, "/"), p)
				})
			}) {
				continue
			}
			_, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("testenv: cleanup: remove container %v: %v", c.Names, err)
			}
		}
	}

	for _, id := range networks {
		// Containers of other runs or of a crashed test may still be
		// attached; a network with endpoints cannot be removed.
		if nw, err := e.cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{}); err == nil {
			for cid := range nw.Network.Containers {
				e.cli.NetworkDisconnect(ctx, id, client.NetworkDisconnectOptions{Container: cid, Force: true})
			}
		}
		_, err := e.cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
		// An overlay network keeps the endpoints of a removed service's
		// tasks for a moment after their containers are gone.
		for try := 0; err != nil && try < 50 && strings.Contains(err.Error(), "active endpoints") && swarmHeld(); try++ {
			time.Sleep(200 * time.Millisecond)
			_, err = e.cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
		}
		switch {
		case err == nil || cerrdefs.IsNotFound(err):
		case staleEndpoints(ctx, e.cli, id, err):
			// Docker 20.10 sometimes loses count of a network's endpoints
			// when a container is removed while the engine still connects
			// or starts it (a crash test's late calls do that): it refuses
			// to remove a network no container is attached to, until the
			// engine restarts. Nothing of the test is left; say so.
			t.Logf("testenv: cleanup: network %s has no container attached, but Docker counts endpoints on it "+
				"(its stale endpoint count, fixed by restarting dockerd): left behind: %v", id, err)
		default:
			t.Errorf("testenv: cleanup: remove network %s: %v", id, err)
		}
	}

	// References, never image ids: another test may have pulled the same
	// image (same id) from its own registry.
	for _, ref := range images {
		_, err := e.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("testenv: cleanup: remove image %s: %v", ref, err)
		}
	}
}

// ContainerID returns the id of the container with that name, or "" if
// there is none.
func (e *Eng) ContainerID(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatalf("testenv: inspect %s: %v", name, err)
	}
	return res.Container.ID
}

// Inspect returns what the engine says of the container with that name
// or id; the test fails if there is none.
func (e *Eng) Inspect(t testing.TB, name string) container.InspectResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("testenv: inspect %s: %v", name, err)
	}
	if res.Container.State == nil {
		t.Fatalf("testenv: inspect %s: no state", name)
	}
	return res.Container
}

// StartedAt returns when the named container last started: it changes if
// the container was stopped and started again.
func (e *Eng) StartedAt(t testing.TB, name string) string {
	t.Helper()
	return e.Inspect(t, name).State.StartedAt
}

// RunningContainers returns the sorted names of the running containers
// whose name starts with prefix.
func (e *Eng) RunningContainers(t testing.TB, prefix string) []string {
	t.Helper()
	return slices.Sorted(maps.Keys(e.list(t, false, prefix)))
}

// Containers returns "NAME STATE", sorted, for every container whose name
// starts with prefix, stopped ones included; STATE is the engine's word
// for it: running, exited, created and so on.
func (e *Eng) Containers(t testing.TB, prefix string) []string {
	t.Helper()
	var out []string
	for n, state := range e.list(t, true, prefix) {
		out = append(out, n+" "+string(state))
	}
	slices.Sort(out)
	return out
}

// list returns the state of the running containers (all: of every
// container) whose name starts with prefix, by name.
func (e *Eng) list(t testing.TB, all bool, prefix string) map[string]container.ContainerState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: all})
	if err != nil {
		t.Fatalf("testenv: list containers: %v", err)
	}
	states := make(map[string]container.ContainerState)
	for _, c := range list.Items {
		for _, n := range c.Names {
			if n = strings.TrimPrefix(n, "/"); strings.HasPrefix(n, prefix) {
				states[n] = c.State
			}
		}
	}
	return states
}

// App is what the test app answers on GET /.
type App struct {
	Version  string            `json:"version"`
	Env      map[string]string `json:"env"`
	Hostname string            `json:"hostname"`
	// MarkerAtStart is what the file TESTAPP_MARKER_FILE held when the
	// app started: the lines release commands appended before.
	MarkerAtStart string `json:"marker_at_start"`
}

// ErrInspect is AppInfo's error when the engine did not tell where the
// container is: nothing is known of the app then.
var ErrInspect = errors.New("the engine did not answer the container's inspection")

// AppInfo asks the test app in the named container once, at its IP address
// on its first network (by name), on PORT or 8000.
func (e *Eng) AppInfo(ctx context.Context, container string) (App, error) {
	res, err := e.cli.ContainerInspect(ctx, container, client.ContainerInspectOptions{})
	if err != nil {
		return App{}, fmt.Errorf("%w: %w", ErrInspect, err)
	}
	c := res.Container
	if c.State == nil || !c.State.Running {
		return App{}, fmt.Errorf("container %s is not running", container)
	}
	var ip string
	if c.NetworkSettings != nil {
		names := make([]string, 0, len(c.NetworkSettings.Networks))
		for n := range c.NetworkSettings.Networks {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if ep := c.NetworkSettings.Networks[n]; ep != nil && ep.IPAddress.IsValid() {
				ip = ep.IPAddress.String()
				break
			}
		}
	}
	if ip == "" {
		return App{}, fmt.Errorf("container %s has no IP address", container)
	}
	port := strconv.Itoa(AppPort)
	if c.Config != nil {
		for _, kv := range c.Config.Env {
			if p, ok := strings.CutPrefix(kv, "PORT="); ok {
				port = p
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, port)+"/", nil)
	if err != nil {
		return App{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return App{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return App{}, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	var a App
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return App{}, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	return a, nil
}

// AppGet asks the test app in the named container for its version and
// environment, retrying for up to 15 seconds while it starts.
func (e *Eng) AppGet(t testing.TB, container string) (version string, env map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		a, err := e.AppInfo(actx, container)
		acancel()
		if err == nil {
			return a.Version, a.Env
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testenv: test app in %s does not answer: %v", container, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// staleEndpoints tells whether err, from removing network id, is Docker's
// "has active endpoints" for a network that no container is attached to.
func staleEndpoints(ctx context.Context, cli *client.Client, id string, err error) bool {
	if !strings.Contains(err.Error(), "has active endpoints") {
		return false
	}
	nw, ierr := cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	return ierr == nil && len(nw.Network.Containers) == 0
}
