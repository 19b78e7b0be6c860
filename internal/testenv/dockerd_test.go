//go:build linux

package testenv_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestDockerd: a dockerd of the test's own pulls from the test registry,
// runs a container, keeps it over a stop and a start, and leaves the
// machine's engine and network alone.
func TestDockerd(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	e := testenv.Engine(t) // the machine's engine must answer, as before
	reg := testenv.Registry(t)
	ref := reg.Ref("acme/far", "v1")
	reg.Push(t, "acme/far", "v1", testenv.AppImage{Version: "v1"})
	hadDocker0 := hasDocker0(t)

	d := testenv.StartDockerd(t, reg.Host())
	cli := d.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pull, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		t.Fatalf("pull from the test registry: %v", err)
	}
	out, _ := io.ReadAll(pull)
	pull.Close()
	if strings.Contains(string(out), `"error"`) {
		t.Fatalf("pull: %s", out)
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       "far",
		Config:     &container.Config{Image: ref},
		HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	running := func() bool {
		t.Helper()
		in, err := cli.ContainerInspect(ctx, "far", client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("inspect: %v", err)
		}
		return in.Container.State.Running
	}
	if !running() {
		t.Fatal("the container does not run")
	}
	if hadDocker0 && !hasDocker0(t) {
		t.Error("the machine's docker0 is gone")
	}

	d.Stop(t)
	if _, err := cli.Ping(ctx, client.PingOptions{}); err == nil {
		t.Fatal("the stopped engine answers")
	}
	d.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for !running() {
		if time.Now().After(deadline) {
			t.Fatal("the unless-stopped container does not run again after the engine's restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.Containers(t, "far"); len(got) != 0 {
		t.Errorf("the machine's engine has %v", got)
	}
	if hadDocker0 && !hasDocker0(t) {
		t.Error("the machine's docker0 is gone")
	}
}

// hasDocker0 tells whether the machine's default bridge is there: a
// dockerd beside the machine's must not take it away.
func hasDocker0(t *testing.T) bool {
	t.Helper()
	_, err := net.InterfaceByName("docker0")
	return err == nil
}
