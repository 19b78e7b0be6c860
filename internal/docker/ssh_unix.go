//go:build unix

package docker

import (
	"os/exec"
	"syscall"
)

// detach puts the command in a process group of its own: a Ctrl-C in the
// terminal liftoff runs in must not cut its connections while it drains
// the deploys in flight.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
