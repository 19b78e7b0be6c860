//go:build linux

package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// Dockerd is a Docker engine of the test's own: a second dockerd, beside
// the machine's, that the test may stop and start again (same data) to
// play a remote engine going away and coming back.
//
// It runs in network and mount namespaces of its own, so that nothing it
// does touches the machine's engine: its default bridge (docker0) and its
// iptables are its own, and so are its mounts, which go with it. (A dockerd
// started with --bridge=none beside another instead deletes the machine's
// docker0: that is what dockerd does to the default bridge it is told not
// to use.) Its containers are reachable from its namespace only; the
// addresses given to StartDockerd (the test registry's host:port, say) are
// forwarded into it, so that it pulls from 127.0.0.1:PORT as the machine's
// engine does.
//
// Everything is removed when the test ends, pass or fail: its processes
// (dockerd, its containerd, their shims and containers), then its
// directory. It needs root and dockerd on PATH (or /usr/sbin); without
// either the test is skipped, loudly, unless LIFTOFF_REQUIRE_DOCKER=1,
// which makes it fail. A dockerd that does not start fails the test with
// the end of its log.
type Dockerd struct {
	t       testing.TB
	bin     string
	dir     string // root of its files: socket, data, exec root, log
	forward []string

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{} // closed when cmd has exited
	netns     uint64        // inode of its network namespace
	listeners []net.Listener
	cli       *client.Client
}

// StartDockerd starts a dockerd of the test's own and waits until it
// answers; forward are 127.0.0.1:PORT addresses of the test's (registries)
// that it must reach at the same address.
func StartDockerd(t testing.TB, forward ...string) *Dockerd {
	t.Helper()
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dockerd"); serr == nil {
			bin, err = "/usr/sbin/dockerd", nil
		}
	}
	switch {
	case err != nil:
		requireOrSkip(t, "no dockerd on PATH or in /usr/sbin: %v", err)
	case os.Geteuid() != 0:
		requireOrSkip(t, "a dockerd of the test's own needs root (euid %d)", os.Geteuid())
	}
	// Socket paths are limited to about 100 bytes: t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "lt-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dockerd{t: t, bin: bin, dir: dir, forward: forward}
	t.Cleanup(d.cleanup)
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start(t)
	return d
}

func requireOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("LIFTOFF_REQUIRE_DOCKER") == "1" {
		t.Fatalf("testenv: %s (LIFTOFF_REQUIRE_DOCKER=1)", msg)
	}
	t.Skipf("SKIPPED, NO SECOND DOCKER ENGINE: %s; set LIFTOFF_REQUIRE_DOCKER=1 to fail instead", msg)
}

// Host is the engine's address, for DOCKER_HOST or a config's engines.
func (d *Dockerd) Host() string { return "unix://" + d.socket() }

func (d *Dockerd) socket() string { return filepath.Join(d.dir, "docker.sock") }

// Client returns a client of the engine, for what the test checks there.
func (d *Dockerd) Client() *client.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cli
}

// Start starts the engine (again, on the same data) and waits until it
// answers, for a minute at most.
func (d *Dockerd) Start(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		t.Fatalf("testenv: dockerd %s runs already", d.dir)
	}
	logf, err := os.OpenFile(filepath.Join(d.dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	began := time.Now()
	cmd := exec.Command(d.bin,
		"--config-file", filepath.Join(d.dir, "daemon.json"), // not the machine's /etc/docker/daemon.json
		"--host", d.Host(),
		"--data-root", filepath.Join(d.dir, "data"),
		"--exec-root", filepath.Join(d.dir, "exec"),
		"--pidfile", filepath.Join(d.dir, "docker.pid"),
		"--storage-driver", "vfs", // no overlay mounts, works on any file system
		"--iptables=false", "--ip-forward=false", "--ip-masq=false",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own network namespace; its own mount namespace, whose
		// mounts (Go makes / private in it) never reach the machine's.
		Cloneflags:   syscall.CLONE_NEWNET,
		Unshareflags: syscall.CLONE_NEWNS,
		// No Pdeathsig: it fires when the thread that started the
		// process ends, and inNetns ends threads.
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start dockerd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.cmd, d.exited = cmd, exited
	nsPath := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	var st syscall.Stat_t
	if err := syscall.Stat(nsPath, &st); err != nil {
		t.Fatalf("testenv: dockerd's network namespace: %v", err)
	}
	d.netns = st.Ino
	// Loopback is down in a new namespace; the forwarded addresses
	// listen on it.
	lns, err := inNetns(nsPath, func() ([]net.Listener, error) {
		if err := loopbackUp(); err != nil {
			return nil, fmt.Errorf("loopback up: %w", err)
		}
		var lns []net.Listener
		for _, addr := range d.forward {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				for _, l := range lns {
					l.Close()
				}
				return nil, fmt.Errorf("listen on %s: %w", addr, err)
			}
			lns = append(lns, ln)
		}
		return lns, nil
	})
	if err != nil {
		t.Fatalf("testenv: dockerd's network namespace: %v", err)
	}
	for i, ln := range lns {
		go forward(ln, d.forward[i])
	}
	d.listeners = append(d.listeners, lns...)

	if d.cli == nil {
		if d.cli, err = client.New(client.WithHost(d.Host())); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := d.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("testenv: dockerd exited at start (%v); its log ends:\n%s", cmd.ProcessState, d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: dockerd does not answer a minute after its start: %v; its log ends:\n%s", err, d.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("testenv: dockerd %s answers %v after its start", d.Host(), time.Since(began).Round(time.Millisecond))
}

// Stop stops the engine as a service manager would (SIGTERM: it stops its
// containers, then exits) and waits until it has exited, for a minute at
// most. Its data stays for Start.
func (d *Dockerd) Stop(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.stopLocked(time.Minute); err != nil {
		t.Fatalf("testenv: stop dockerd: %v", err)
	}
}

// stopLocked sends SIGTERM, waits up to grace, then kills every process
// left in its network namespace (containerd, shims, containers).
func (d *Dockerd) stopLocked(grace time.Duration) error {
	if d.cmd == nil {
		return nil
	}
	var errs []error
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(grace):
		errs = append(errs, fmt.Errorf("dockerd did not exit %v after SIGTERM: killed", grace))
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
	if err := killNetns(d.netns); err != nil {
		errs = append(errs, err)
	}
	for _, ln := range d.listeners {
		ln.Close()
	}
	d.listeners = nil
	return errors.Join(errs...)
}

func (d *Dockerd) cleanup() {
	t := d.t
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil && t.Failed() {
		t.Logf("testenv: dockerd %s: its log ends:\n%s", d.Host(), d.logTail())
	}
	if err := d.stopLocked(30 * time.Second); err != nil {
		t.Errorf("testenv: cleanup: %v", err)
	}
	if d.cli != nil {
		d.cli.Close()
	}
	// Its mounts were in its own namespace, gone with it; any seen
	// here would be the machine's doing, and are detached first.
	for _, m := range mountsUnder(d.dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Errorf("testenv: cleanup: unmount %s: %v", m, err)
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("testenv: cleanup: remove %s: %v", d.dir, err)
	}
}

// logTail returns the last lines of the engine's log.
func (d *Dockerd) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// inNetns runs f on a thread moved into the network namespace at nsPath:
// sockets f opens belong to it for good. The thread is discarded after.
func inNetns[T any](nsPath string, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the goroutine's end terminates the thread,
		// which must not run anything else in that namespace.
		runtime.LockOSThread()
		var r result
		ns, err := os.Open(nsPath)
		if err != nil {
			r.err = err
			ch <- r
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			r.err = fmt.Errorf("setns: %w", err)
			ch <- r
			return
		}
		r.v, r.err = f()
		ch <- r
	}()
	r := <-ch
	return r.v, r.err
}

// loopbackUp brings lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// forward copies each connection ln accepts to and from addr, dialled from
// the machine's namespace, until ln is closed.
func forward(ln net.Listener, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// killNetns kills every process in the network namespace with inode ino
// (what dockerd left: its containerd, shims and containers) and waits until
// none is left, for 30s at most.
func killNetns(ino uint64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := pidsInNetns(ino)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of the test's dockerd survive SIGKILL", pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pidsInNetns(ino uint64) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil || st.Ino != ino {
			continue
		}
		// A zombie waits for its parent (ours, or reaped by init soon).
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := bytes.LastIndexByte(b, ')'); i > 0 && bytes.HasPrefix(b[i+1:], []byte(" Z")) {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// mountsUnder returns the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}
