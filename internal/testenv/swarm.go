package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Swarm makes the test engine a single-node swarm manager (advertised on
// 127.0.0.1) for as long as the test runs, and leaves it as it was found
// once no test uses it any more: the last user leaves the swarm, and
// removes the docker_gwbridge network, only if the helper made them.
//
// Test binaries of several packages run at once and share the engine, and
// most of their tests want it as it is; so the processes that use the
// swarm count themselves in a state file under os.TempDir(), locked with
// flock(2): the first initializes the swarm (noting that it did), the last
// leaves it. A process that died holding it is dropped from the count by
// the next one that looks, so a crashed test run leaves the swarm only
// until the next run that uses it ends.
//
// The swarm is held until e's cleanup, after e has removed what the test
// made, and after the cleanup of every Eng the test made later (cleanups
// run last-registered first): an Eng made before e must not make
// services. Services whose name starts with one of the test's UniqueName
// prefixes are removed when the test ends, before its containers,
// networks and images.
func (e *Eng) Swarm(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	held := e.swarm
	e.mu.Unlock()
	if held {
		return
	}
	swarmUsers.mu.Lock()
	defer swarmUsers.mu.Unlock()
	if swarmUsers.n == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := holdSwarm(ctx, e.cli)
		cancel()
		if err != nil {
			t.Fatalf("testenv: swarm: %v", err)
		}
	}
	swarmUsers.n++
	e.mu.Lock()
	e.swarm = true
	e.mu.Unlock()
}

// leaveSwarm ends e's hold of the swarm, if it has one: the last holder
// of the process stops counting the process, and the last process leaves
// the swarm if a helper made it.
func (e *Eng) leaveSwarm(t testing.TB) {
	e.mu.Lock()
	held := e.swarm
	e.swarm = false
	e.mu.Unlock()
	if !held {
		return
	}
	swarmUsers.mu.Lock()
	defer swarmUsers.mu.Unlock()
	swarmUsers.n--
	if swarmUsers.n > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := releaseSwarm(ctx, e.cli); err != nil {
		t.Errorf("testenv: swarm: %v", err)
	}
}

// swarmUsers counts this process's tests that hold the swarm: the
// process counts once in the state file while any does.
var swarmUsers struct {
	mu sync.Mutex
	n  int
}

// swarmHeld tells whether a test of this process holds the swarm.
func swarmHeld() bool {
	swarmUsers.mu.Lock()
	defer swarmUsers.mu.Unlock()
	return swarmUsers.n > 0
}

// swarmState is the file shared by the test processes that use the swarm.
type swarmState struct {
	// Made: the swarm was inactive and a helper initialized it; the
	// last holder leaves it.
	Made bool `json:"made"`
	// MadeBridge: docker_gwbridge did not exist before; it is removed
	// after leaving.
	MadeBridge bool     `json:"made_bridge"`
	Holders    []holder `json:"holders"`
}

// holder is a process; its start time tells it from a later process that
// got the same pid.
type holder struct {
	PID   int    `json:"pid"`
	Start string `json:"start"`
}

func self() holder { return holder{PID: os.Getpid(), Start: procStart(os.Getpid())} }

// procStart returns the start time of process pid (field 22 of
// /proc/PID/stat, in clock ticks since boot), or "" if there is no such
// process.
func procStart(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	// The command (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:]) // from field 3 on
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

func (h holder) alive() bool { return h.Start != "" && procStart(h.PID) == h.Start }

const (
	swarmStateFile = "liftoff-testenv-swarm.json"
	swarmLockFile  = "liftoff-testenv-swarm.lock"
	gwBridge       = "docker_gwbridge"
)

// withSwarmState runs f on the state file, under an exclusive lock that
// every test process takes; f returns the state to write, or nil to
// remove the file.
func withSwarmState(f func(st *swarmState) (*swarmState, error)) error {
	dir := os.TempDir()
	lock, err := os.OpenFile(filepath.Join(dir, swarmLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	path := filepath.Join(dir, swarmStateFile)
	var st *swarmState
	switch b, err := os.ReadFile(path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		st = &swarmState{}
		if err := json.Unmarshal(b, st); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		// Processes that died holding the swarm hold it no more.
		st.Holders = slices.DeleteFunc(st.Holders, func(h holder) bool { return !h.alive() })
	}
	next, err := f(st)
	if err != nil {
		return err
	}
	if next == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	tmp := path + "." + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// holdSwarm counts this process among the swarm's users, initializing
// the swarm if it is inactive.
func holdSwarm(ctx context.Context, cli *client.Client) error {
	return withSwarmState(func(st *swarmState) (*swarmState, error) {
		info, err := cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			return st, err
		}
		if st == nil {
			st = &swarmState{}
		}
		sw := info.Info.Swarm
		switch sw.LocalNodeState {
		case swarm.LocalNodeStateActive:
			if !sw.ControlAvailable {
				return st, errors.New("the engine is a swarm worker, not a manager: services cannot be created on it")
			}
			// Made by a helper (an earlier holder's, maybe dead), or the
			// machine's own swarm: as it was noted.
		case swarm.LocalNodeStateInactive:
			_, err := cli.NetworkInspect(ctx, gwBridge, client.NetworkInspectOptions{})
			bridge := err == nil
			if err != nil && !cerrdefs.IsNotFound(err) {
				return st, err
			}
			if _, err := cli.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
				return st, fmt.Errorf("swarm init: %w", err)
			}
			st.Made, st.MadeBridge = true, !bridge
		default:
			return st, fmt.Errorf("the engine's swarm is %s (%s): fix it by hand (docker swarm leave --force)", sw.LocalNodeState, sw.Error)
		}
		if err := waitManager(ctx, cli); err != nil {
			return st, err
		}
		st.Holders = append(st.Holders, self())
		return st, nil
	})
}

// waitManager waits until the swarm takes services: just after init the
// node is a manager before it has a leader.
func waitManager(ctx context.Context, cli *client.Client) error {
	for {
		_, err := cli.ServiceList(ctx, client.ServiceListOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the swarm does not take services: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// releaseSwarm stops counting this process among the swarm's users; the
// last one leaves the swarm if a helper made it.
func releaseSwarm(ctx context.Context, cli *client.Client) error {
	return withSwarmState(func(st *swarmState) (*swarmState, error) {
		if st == nil {
			return nil, errors.New("the state file is gone: leaving the swarm as it is")
		}
		me := self()
		st.Holders = slices.DeleteFunc(st.Holders, func(h holder) bool { return h == me })
		if len(st.Holders) > 0 {
			return st, nil
		}
		if !st.Made {
			return nil, nil
		}
		if _, err := cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil {
			return st, fmt.Errorf("swarm leave: %w", err)
		}
		if st.MadeBridge {
			// Containers that were attached leave it as the engine tears
			// them down; try for a while.
			var err error
			for range 50 {
				if _, err = cli.NetworkRemove(ctx, gwBridge, client.NetworkRemoveOptions{}); err == nil || cerrdefs.IsNotFound(err) {
					err = nil
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				return nil, fmt.Errorf("remove %s: %w", gwBridge, err)
			}
		}
		return nil, nil
	})
}

// OverlayNetwork creates an attachable overlay network (a service's
// network, which a plain container may join too) with that name and
// returns its id; it is removed when the test ends. Call Swarm first.
func (e *Eng) OverlayNetwork(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "overlay", Attachable: true})
	if err != nil {
		t.Fatalf("testenv: create overlay network %s: %v", name, err)
	}
	e.mu.Lock()
	e.networks = append(e.networks, res.ID)
	e.mu.Unlock()
	return res.ID
}

// removeServices removes the services whose name starts with one of
// prefixes, and waits (a while) for their tasks' containers to go, so that
// their networks and images can be removed after.
func (e *Eng) removeServices(ctx context.Context, t testing.TB, prefixes []string) {
	list, err := e.cli.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		t.Errorf("testenv: cleanup: list services: %v", err)
		return
	}
	var gone []string
	for _, s := range list.Items {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s.Spec.Name, p) }) {
			continue
		}
		if _, err := e.cli.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("testenv: cleanup: remove service %s: %v", s.Spec.Name, err)
			continue
		}
		gone = append(gone, s.ID)
	}
	// The engine stops a removed service's tasks on its own; the
	// containers' sweep would otherwise race it.
	for _, id := range gone {
		f := client.Filters{}
		f.Add("label", "com.docker.swarm.service.id="+id)
		for {
			res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
			if err != nil || len(res.Items) == 0 || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
