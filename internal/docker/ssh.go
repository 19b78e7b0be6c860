package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sshDialer returns a dialer for an ssh:// engine that does what the docker
// CLI does, without depending on it: every connection is a process
//
//	ssh -o ConnectTimeout=30 -o BatchMode=yes -T [-l user] [-p port] -- host docker system dial-stdio
//
// whose standard input and output carry the connection to the remote
// engine's socket. BatchMode: a daemon has no one to type a password or
// accept a host key; keys and known_hosts must be set up beforehand.
func sshDialer(host string) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	u, err := url.Parse(host)
	switch {
	case err != nil:
		return nil, fmt.Errorf("ssh host %q: %w", host, err)
	case u.Scheme != "ssh" || u.Hostname() == "":
		return nil, fmt.Errorf("ssh host %q: want ssh://[user@]host[:port]", host)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("ssh host %q: want ssh://[user@]host[:port], without a path", host)
	}
	args := []string{"-o", "ConnectTimeout=30", "-o", "BatchMode=yes", "-T"}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return nil, fmt.Errorf("ssh host %q: a password in the URL is not supported: use a key", u.Redacted())
		}
		args = append(args, "-l", u.User.Username())
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	args = append(args, "--", u.Hostname(), "docker", "system", "dial-stdio")
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialCommand(ctx, "ssh", args...)
	}, nil
}

// commandError is a connection command that failed: it could not start,
// or it ended before the connection did (ssh could not reach the host, or
// docker there could not reach its engine). The engine is unavailable.
type commandError struct {
	cmd    string
	err    error
	stderr string // the end of what it wrote to its standard error
}

func (e *commandError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.cmd, e.err)
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

func (e *commandError) Unwrap() error { return e.err }

// isCommandFailure tells whether err comes from a connection command that
// failed.
func isCommandFailure(err error) bool {
	var ce *commandError
	return errors.As(err, &ce)
}

// commandConn is a net.Conn over a command's standard input and output.
// Both are pipes of its own (not exec's StdinPipe and StdoutPipe), so that
// the command may be waited for while its last output is still unread.
type commandConn struct {
	name   string
	cmd    *exec.Cmd
	stdin  *os.File // write end
	stdout *os.File // read end
	stderr *lastLines

	closed atomic.Bool
	exited chan struct{} // closed once the command has exited; then wait is set
	wait   error

	closeOnce sync.Once
}

// dialCommand starts name with args and returns the connection its
// standard input and output make. ctx bounds the start only: the
// connection outlives it, as a dialled one does.
func dialCommand(ctx context.Context, name string, args ...string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &commandConn{name: name, stdin: inW, stdout: outR, stderr: &lastLines{max: 2048}, exited: make(chan struct{})}
	c.cmd = exec.Command(name, args...)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, c.stderr
	detach(c.cmd)
	err = c.cmd.Start()
	// The child has its own copies of these ends.
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, &commandError{cmd: name, err: err}
	}
	go func() {
		c.wait = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// Read reads what the command writes. Its output ending while the
// connection is open means the command ended: if it failed, the error says
// how, with what it wrote to its standard error.
func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF && !c.closed.Load() {
		if werr := c.exitErr(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Write writes to the command's standard input. A command that ended is a
// commandError.
func (c *commandConn) Write(p []byte) (int, error) {
	n, err := c.stdin.Write(p)
	if err != nil && !c.closed.Load() {
		if werr := c.exitErr(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// exitErr waits a moment for the command to exit (its output ended, or its
// input closed: it is on its way) and returns its failure, if it failed.
func (c *commandConn) exitErr() error {
	select {
	case <-c.exited:
	case <-time.After(2 * time.Second):
		return &commandError{cmd: c.name, err: errors.New("its output ended but it did not exit"), stderr: c.stderr.String()}
	}
	if c.wait != nil {
		return &commandError{cmd: c.name, err: c.wait, stderr: c.stderr.String()}
	}
	return &commandError{cmd: c.name, err: io.ErrUnexpectedEOF, stderr: c.stderr.String()}
}

// CloseWrite closes the command's standard input: a hijacked connection
// (attach, exec) half-closes that way.
func (c *commandConn) CloseWrite() error { return c.stdin.Close() }

// Close ends the connection: the command is killed and waited for.
func (c *commandConn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.stdin.Close()
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
		c.stdout.Close()
	})
	return nil
}

func (c *commandConn) LocalAddr() net.Addr  { return commandAddr("liftoff") }
func (c *commandConn) RemoteAddr() net.Addr { return commandAddr(c.name) }

func (c *commandConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}
func (c *commandConn) SetReadDeadline(t time.Time) error  { return c.stdout.SetReadDeadline(t) }
func (c *commandConn) SetWriteDeadline(t time.Time) error { return c.stdin.SetWriteDeadline(t) }

// commandAddr is the address of either end of a commandConn.
type commandAddr string

func (a commandAddr) Network() string { return "command" }
func (a commandAddr) String() string  { return string(a) }

// lastLines keeps the last max bytes written to it, for an error message;
// it may be read while written.
type lastLines struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *lastLines) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *lastLines) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
