package daemon_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestHealthGate deploys v1 and then v2 through the webhook, where v2 is
// made to pass or fail each part of the health gate, and checks what runs
// afterwards: v2 alone when it passed, v1 alone (the same container) when
// it was rolled back.
func TestHealthGate(t *testing.T) {
	t.Parallel()
	const url = `url: "http://{container}:8000/healthz"`
	hc := testenv.AppImage{Version: "v1", Healthcheck: true}
	tests := []struct {
		name   string
		health string           // the deployment's health: mapping
		v1, v2 testenv.AppImage // v1 passes the gate
		want   deploy.Outcome
		reason string // in the error and the log
		docker string // Docker health status of the container left running, if any
	}{{
		name:   "image healthcheck healthy",
		health: "{timeout: 20s, min_uptime: 500ms}",
		v1:     hc, v2: testenv.AppImage{Version: "v2", Healthcheck: true},
		want: deploy.Succeeded, docker: "healthy",
	}, {
		name:   "image healthcheck unhealthy",
		health: "{timeout: 20s, min_uptime: 500ms}",
		v1:     hc, v2: testenv.AppImage{Version: "v2", Healthcheck: true, Env: []string{"TESTAPP_HEALTH=fail"}},
		want: deploy.RolledBack, reason: "Docker health check reports unhealthy", docker: "healthy",
	}, {
		name:   "health.cmd healthy",
		health: "{cmd: [/app, healthcheck], interval: 300ms, retries: 2, timeout: 20s, min_uptime: 500ms}",
		v1:     testenv.AppImage{Version: "v1"}, v2: testenv.AppImage{Version: "v2"},
		want: deploy.Succeeded, docker: "healthy",
	}, {
		name:   "health.cmd unhealthy",
		health: "{cmd: [/app, healthcheck], interval: 300ms, retries: 2, timeout: 20s, min_uptime: 500ms}",
		v1:     testenv.AppImage{Version: "v1"}, v2: testenv.AppImage{Version: "v2", Env: []string{"TESTAPP_HEALTH=fail"}},
		want: deploy.RolledBack, reason: "Docker health check reports unhealthy", docker: "healthy",
	}, {
		name:   "health.url passing",
		health: "{" + url + ", timeout: 20s, min_uptime: 500ms}",
		v1:     testenv.AppImage{Version: "v1"}, v2: testenv.AppImage{Version: "v2"},
		want: deploy.Succeeded,
	}, {
		name:   "health.url failing",
		health: "{" + url + ", timeout: 3s, min_uptime: 500ms}",
		v1:     testenv.AppImage{Version: "v1"}, v2: testenv.AppImage{Version: "v2", Env: []string{"TESTAPP_HEALTH=fail"}},
		want: deploy.RolledBack, reason: "timed out after 3s waiting for health.url (last: status 500)",
	}, {
		name:   "exits before min_uptime",
		health: "{timeout: 20s, min_uptime: 3s}",
		v1:     testenv.AppImage{Version: "v1"}, v2: testenv.AppImage{Version: "v2", Env: []string{"TESTAPP_EXIT_AFTER=1s"}},
		want: deploy.RolledBack, reason: "container exited (exit code 1)",
	}, {
		name:   "health.url timeout",
		health: "{" + url + ", timeout: 2s, min_uptime: 500ms}",
		v1:     testenv.AppImage{Version: "v1"}, v2: testenv.AppImage{Version: "v2", Env: []string{"TESTAPP_START_DELAY=1m"}},
		want: deploy.RolledBack, reason: "timed out after 2s waiting for health.url (last: ",
	}, {
		// Each check of v2 takes the check's whole 2s timeout: Docker
		// cannot call it unhealthy before two of them, past the gate's 2s.
		name:   "image healthcheck timeout",
		health: "{timeout: 2s, min_uptime: 500ms}",
		v1:     hc, v2: testenv.AppImage{Version: "v2", Healthcheck: true, Env: []string{"TESTAPP_HEALTH=hang"}},
		want: deploy.RolledBack, reason: "timed out after 2s waiting for Docker health status starting", docker: "healthy",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t, webYAML(tc.health, "", ""))
			name := d.prefix + "-web"
			d.pushImage("staging", tc.v1)
			d.deployOK("staging")
			d.serving(name, "v1")
			v1ID, v1Started := d.eng.ContainerID(t, name), d.eng.StartedAt(t, name)

			d.pushImage("staging", tc.v2)
			r := d.deploy("staging")
			if r.Outcome != tc.want {
				t.Fatalf("v2: %s %v, want %s", r.Outcome, r.Err, tc.want)
			}
			env := "staging"
			if tc.want == deploy.Succeeded {
				d.serving(name, "v2")
				if id := d.eng.ContainerID(t, name); id == v1ID || id != r.ContainerID {
					t.Errorf("container %s after the deploy; v1's was %s, the deploy reports %s", id, v1ID, r.ContainerID)
				}
				d.hasMetric(fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment=%q,outcome="succeeded"} 2`, name, env))
			} else {
				if r.Err == nil || !strings.Contains(r.Err.Error(), tc.reason) {
					t.Errorf("v2's error %v, want it to say %q", r.Err, tc.reason)
				}
				d.serving(name, "v1")
				// Stop-first rolled back: the same container, started again.
				if id := d.eng.ContainerID(t, name); id != v1ID {
					t.Errorf("container %s after the rollback, want v1's %s", id, v1ID)
				}
				if d.eng.StartedAt(t, name) == v1Started {
					t.Errorf("v1 was not stopped by a stop-first deploy")
				}
				d.hasMetric(fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment=%q,outcome="rolled_back"} 1`, name, env))
				d.hasMetric(fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment=%q,outcome="succeeded"} 1`, name, env))
				d.logEntry("deploy finished", map[string]string{"deployment": name, "outcome": "rolled_back", "error": tc.reason})
				d.logEntry("rolled back to the previous container", map[string]string{"deployment": name, "error": tc.reason})
			}
			d.only(name)
			if tc.docker != "" {
				// A container started again by a rollback begins at "starting".
				d.waitHealth(name, tc.docker)
			}
		})
	}
}

// TestStopThatHangsIsKilled replaces a container whose app ignores SIGTERM:
// the stop waits out stop_timeout, kills it, and the deploy goes on.
func TestStopThatHangsIsKilled(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{"stop-first", "start-first"} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			var ctr string
			if strategy == "start-first" {
				ctr = "networks: [%[1]s-net]"
			}
			d := startDaemon(t, webYAML("{min_uptime: 500ms}", ctr, "strategy: "+strategy))
			if strategy == "start-first" {
				d.eng.Network(t, d.prefix+"-net")
			}
			name := d.prefix + "-web"
			d.pushImage("staging", testenv.AppImage{Version: "v1", Env: []string{"TESTAPP_IGNORE_TERM=1"}})
			d.deployOK("staging")
			d.serving(name, "v1")
			v1ID := d.eng.ContainerID(t, name)

			d.pushImage("staging", testenv.AppImage{Version: "v2"})
			r := d.deployOK("staging")
			d.serving(name, "v2")
			if d.eng.ContainerID(t, name) != r.ContainerID || r.ContainerID == v1ID {
				t.Errorf("%s runs %s; the deploy reports %s, v1 was %s", name, d.eng.ContainerID(t, name), r.ContainerID, v1ID)
			}
			if d.eng.ContainerID(t, v1ID) != "" {
				t.Errorf("v1's container %s still exists", v1ID)
			}
			d.only(name)
		})
	}
}

// waitHealth waits (bounded) until the container's Docker health status is
// want.
func (d *daemon) waitHealth(container, want string) {
	d.t.Helper()
	var got string
	for range 100 {
		if h := d.eng.Inspect(d.t, container).State.Health; h != nil {
			got = string(h.Status)
		}
		if got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Errorf("Docker health of %s is %q after 10s, want %q", container, got, want)
}

// TestTagDeletedAfterPush: the webhook names a tag that is gone by the time
// liftoff resolves it. The deploy fails before anything is stopped.
func TestTagDeletedAfterPush(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, webYAML("{min_uptime: 500ms}", "", ""))
	name := d.prefix + "-web"
	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	id, started := d.eng.ContainerID(t, name), d.eng.StartedAt(t, name)

	d.pushImage("staging", testenv.AppImage{Version: "v2"})
	d.reg.Delete(t, d.repo, "staging")
	r := d.deploy("staging")
	if r.Outcome != deploy.Failed || !errors.Is(r.Err, deploy.ErrNotFound) {
		t.Fatalf("deleted tag: %s %v, want failed, not found", r.Outcome, r.Err)
	}
	d.serving(name, "v1")
	if gotID, gotStarted := d.eng.ContainerID(t, name), d.eng.StartedAt(t, name); gotID != id || gotStarted != started {
		t.Errorf("v1's container was touched: %s started %s, was %s started %s", gotID, gotStarted, id, started)
	}
	d.only(name)
	d.hasMetric(fmt.Sprintf(`liftoff_deploys_total{deployment=%q,environment="staging",outcome="failed"} 1`, name))
	d.logEntry("deploy finished", map[string]string{"deployment": name, "outcome": "failed", "error": "no such tag"})
}
