package testenv_test

import (
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

func TestAppIgnoresTerm(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	e := testenv.Engine(t)
	reg := e.Registry(t)
	d := reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "1", Env: []string{"TESTAPP_IGNORE_TERM=1"}})
	name := e.UniqueName(t, "noterm")
	id := run(t, e, reg.Host()+"/acme/web@"+d, name, nil)
	e.AppGet(t, name) // it runs and listens: its signal handling is set up
	timeout := 1
	if _, err := e.Client().ContainerStop(t.Context(), id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	// Killed after the grace period, not exited on SIGTERM.
	if code := exitCode(t, e, id); code != 137 {
		t.Errorf("exit code after stop = %d, want 137 (SIGKILL)", code)
	}
}

func TestClientRecordsEveryRequest(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	e := testenv.Engine(t)
	reg := e.Registry(t)
	d := reg.Push(t, "acme/web", "v1", testenv.AppImage{Version: "7"})
	ref := reg.Host() + "/acme/web@" + d
	server := e.UniqueName(t, "server")
	run(t, e, ref, server, nil) // pulls ref, on a network of its own
	nw := networkOf(t, e, server)

	c := e.StartClient(t, e.UniqueName(t, "client"), ref, nw, "http://"+server+":8000/", 10*time.Millisecond)
	deadline := time.Now().Add(30 * time.Second)
	for len(c.Results(t)) < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the client has %d results after 30s, want 20: %+v", len(c.Results(t)), c.Results(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs := c.Stop(t)
	for i, r := range rs {
		if r.Seq != i || !r.Finished || r.Error != "" || r.Version != "7" || r.Addr == "" {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	// Stopped: no request is sent any more.
	if again := c.Results(t); len(again) != len(rs) {
		t.Errorf("%d results after stop, then %d", len(rs), len(again))
	}
}

func networkOf(t *testing.T, e *testenv.Eng, name string) string {
	t.Helper()
	return string(e.Inspect(t, name).HostConfig.NetworkMode)
}
