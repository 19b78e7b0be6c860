package docker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// swarmFixture is a client of the test engine made a swarm manager, a
// registry, an attachable overlay network and a unique service name.
type swarmFixture struct {
	e    *testenv.Eng
	c    *docker.Client
	reg  *testenv.Reg
	name string // of the service
	net  string
}

func newSwarmFixture(t *testing.T, opts ...testenv.RegOption) *swarmFixture {
	t.Helper()
	f := &swarmFixture{e: testenv.Engine(t)}
	f.e.Swarm(t)
	f.c, _ = newClient(t)
	f.reg = f.e.Registry(t, opts...)
	f.name = f.e.UniqueName(t, "svc")
	f.net = f.e.UniqueName(t, "svcnet")
	f.e.OverlayNetwork(t, f.net)
	return f
}

// spec is a service of image (pinned by digest) on the fixture's network,
// updated start-first, rolled back on a failure within 2s.
func (f *swarmFixture) spec(digest string, env ...string) deploy.ServiceSpec {
	return deploy.ServiceSpec{
		Spec: deploy.Spec{
			Name:     f.name,
			Image:    f.reg.Host() + "/acme/svc@" + digest,
			Env:      env,
			Labels:   map[string]string{deploy.LabelManaged: "true", deploy.LabelDigest: digest},
			Networks: []string{f.net},
			Aliases:  []string{"web"},
		},
		ServiceLabels: map[string]string{deploy.LabelDeploy: "7"},
		Replicas:      1,
		StopGrace:     2 * time.Second,
		Update:        deploy.ServiceUpdate{Parallelism: 1, Order: "start-first", Monitor: 2 * time.Second, FailureAction: "rollback"},
	}
}

// await polls the service until done says it is, for a minute at most.
func (f *swarmFixture) await(t *testing.T, what string, done func(deploy.Service) bool) deploy.Service {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := f.c.InspectService(ctx(t), f.name)
		if err != nil {
			t.Fatalf("inspect service: %v", err)
		}
		if done(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("service never %s: %+v", what, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// task returns the container of the service's running task of image.
func (f *swarmFixture) task(t *testing.T, image string) container.InspectResponse {
	t.Helper()
	filters := client.Filters{}
	filters.Add("service", f.name)
	filters.Add("desired-state", "running")
	res, err := f.e.Client().TaskList(ctx(t), client.TaskListOptions{Filters: filters})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range res.Items {
		if task.Spec.ContainerSpec.Image == image && task.Status.ContainerStatus != nil && task.Status.ContainerStatus.ContainerID != "" {
			return f.e.Inspect(t, task.Status.ContainerStatus.ContainerID)
		}
	}
	t.Fatalf("no running task of %s: %+v", image, res.Items)
	return container.InspectResponse{}
}

func TestServiceCreateUpdateRemove(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newSwarmFixture(t)
	if err := f.c.SwarmManager(ctx(t)); err != nil {
		t.Fatalf("SwarmManager: %v", err)
	}
	if _, err := f.c.InspectService(ctx(t), f.name); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("InspectService before create: %v, want ErrNotFound", err)
	}
	v1 := f.reg.Push(t, "acme/svc", "v1", testenv.AppImage{Version: "v1", Env: []string{"IMAGE_ONLY=yes"}})
	spec := f.spec(v1, "STAGE=staging", "SECRET=s3cr3t")
	// A health check given by the deployment (health.cmd): the task runs
	// only once healthy.
	spec.Healthcheck = &deploy.Healthcheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: 200 * time.Millisecond, Timeout: 2 * time.Second, Retries: 2}
	id, updated, err := f.c.DeployService(ctx(t), spec)
	if err != nil || updated || id == "" {
		t.Fatalf("DeployService (create) = %q, %v, %v", id, updated, err)
	}
	s := f.await(t, "runs v1", func(s deploy.Service) bool { return s.Running == 1 })
	if s.ID != id || s.Name != f.name || s.Image != spec.Image || s.Replicas != 1 || s.UpdateState != "" || !s.Managed() ||
		s.Labels[deploy.LabelDeploy] != "7" || s.Labels[deploy.LabelDigest] != v1 {
		t.Errorf("created service: %+v", s)
	}
	c := f.task(t, spec.Image)
	for _, kv := range []string{"STAGE=staging", "SECRET=s3cr3t", "IMAGE_ONLY=yes"} {
		if !slices.Contains(c.Config.Env, kv) {
			t.Errorf("task's env %v lacks %s", c.Config.Env, kv)
		}
	}
	if hc := c.Config.Healthcheck; hc == nil || !slices.Equal(hc.Test, spec.Healthcheck.Test) {
		t.Errorf("task's health check %+v, want %v", hc, spec.Healthcheck.Test)
	}
	if c.State.Health == nil || c.State.Health.Status != "healthy" {
		t.Errorf("running task not healthy: %+v", c.State.Health)
	}
	// liftoff's labels are on the tasks' containers; the deploy's only on the service.
	if c.Config.Labels[deploy.LabelDigest] != v1 || c.Config.Labels[deploy.LabelDeploy] != "" {
		t.Errorf("task's labels: %v", c.Config.Labels)
	}
	if _, ok := c.NetworkSettings.Networks[f.net]; !ok {
		t.Errorf("task is not on %s: %v", f.net, c.NetworkSettings.Networks)
	}

	// An update to v2 with another environment: Swarm rolls it out.
	v2 := f.reg.Push(t, "acme/svc", "v2", testenv.AppImage{Version: "v2"})
	spec2 := f.spec(v2, "STAGE=staging2")
	spec2.ServiceLabels[deploy.LabelDeploy] = "8"
	id2, updated, err := f.c.DeployService(ctx(t), spec2)
	if err != nil || !updated || id2 != id {
		t.Fatalf("DeployService (update) = %q, %v, %v", id2, updated, err)
	}
	s = f.await(t, "completes its update", func(s deploy.Service) bool { return s.UpdateState == deploy.UpdateCompleted })
	if s.Image != spec2.Image || s.Running != 1 || s.Labels[deploy.LabelDeploy] != "8" {
		t.Errorf("updated service: %+v", s)
	}
	c2 := f.task(t, spec2.Image)
	if !slices.Contains(c2.Config.Env, "STAGE=staging2") || c2.ID == c.ID {
		t.Errorf("updated task %s env %v", c2.ID, c2.Config.Env)
	}

	// The same spec again changes nothing; forced, the task is replaced.
	if _, _, err := f.c.DeployService(ctx(t), spec2); err != nil {
		t.Fatal(err)
	}
	s = f.await(t, "takes the same spec", func(s deploy.Service) bool { return s.Running == 1 })
	if s.UpdateState != "" {
		t.Errorf("an update that changed nothing has state %q", s.UpdateState)
	}
	if got := f.task(t, spec2.Image).ID; got != c2.ID {
		t.Errorf("an unchanged spec replaced the task: %s → %s", c2.ID, got)
	}
	spec2.Force = true
	if _, _, err := f.c.DeployService(ctx(t), spec2); err != nil {
		t.Fatal(err)
	}
	f.await(t, "completes its forced update", func(s deploy.Service) bool { return s.UpdateState == deploy.UpdateCompleted && s.Running == 1 })
	if got := f.task(t, spec2.Image).ID; got == c2.ID {
		t.Errorf("a forced update kept the task %s", got)
	}

	if err := f.c.RemoveService(ctx(t), f.name); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.InspectService(ctx(t), f.name); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("InspectService after remove: %v", err)
	}
	if err := f.c.RemoveService(ctx(t), f.name); err != nil {
		t.Errorf("RemoveService of a gone service: %v", err)
	}
}

func TestServiceRollsBack(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newSwarmFixture(t)
	v1 := f.reg.Push(t, "acme/svc", "v1", testenv.AppImage{Version: "v1", Healthcheck: true})
	if _, _, err := f.c.DeployService(ctx(t), f.spec(v1)); err != nil {
		t.Fatal(err)
	}
	f.await(t, "runs v1", func(s deploy.Service) bool { return s.Running == 1 })
	// v2's health check fails: the task never runs, Swarm rolls back.
	bad := f.reg.Push(t, "acme/svc", "v2", testenv.AppImage{Version: "v2", Healthcheck: true, Env: []string{"TESTAPP_HEALTH=fail"}})
	if _, _, err := f.c.DeployService(ctx(t), f.spec(bad)); err != nil {
		t.Fatal(err)
	}
	s := f.await(t, "rolls back", func(s deploy.Service) bool {
		return s.UpdateState == deploy.UpdateRollbackCompleted || s.UpdateState == deploy.UpdateCompleted || s.UpdateState == deploy.UpdatePaused
	})
	if s.UpdateState != deploy.UpdateRollbackCompleted || !strings.HasSuffix(s.Image, v1) || s.Labels[deploy.LabelDigest] != v1 {
		t.Fatalf("after a failing update: %+v", s)
	}
	t.Logf("Swarm's message: %q; last task: %q", s.UpdateMessage, s.TaskError)
	f.await(t, "runs v1 again", func(s deploy.Service) bool { return s.Running == 1 })
}

func TestServiceFreshTaskFails(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newSwarmFixture(t)
	bad := f.reg.Push(t, "acme/svc", "v1", testenv.AppImage{Version: "v1", Env: []string{"TESTAPP_EXIT=3"}})
	spec := f.spec(bad)
	spec.Restart = "no" // a task that exits is not replaced
	if _, _, err := f.c.DeployService(ctx(t), spec); err != nil {
		t.Fatal(err)
	}
	s := f.await(t, "has a task that ended", func(s deploy.Service) bool { return s.TaskError != "" })
	if !strings.Contains(s.TaskError, "exit (3)") || s.Running != 0 || s.UpdateState != "" {
		t.Errorf("service whose task exits: %+v", s)
	}
}

func TestServiceRegistryAuth(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newSwarmFixture(t, testenv.WithBasicAuth("ci", "hunter2-registry"))
	digest := f.reg.Push(t, "acme/svc", "v1", testenv.AppImage{Version: "v1"})
	// The engine has not pulled the image: the task pulls it with the
	// credentials sent along with the create.
	spec := f.spec(digest)
	spec.Auth = deploy.Auth{Username: "ci", Password: "hunter2-registry"}
	if _, _, err := f.c.DeployService(ctx(t), spec); err != nil {
		t.Fatal(err)
	}
	f.await(t, "runs with the credentials", func(s deploy.Service) bool { return s.Running == 1 })

	// Without them the task cannot pull the image.
	anon := f.spec(digest)
	anon.Name = f.e.UniqueName(t, "svcanon")
	anon.Image = f.reg.Host() + "/acme/other@" + f.reg.Push(t, "acme/other", "v1", testenv.AppImage{Version: "other"})
	if _, _, err := f.c.DeployService(ctx(t), anon); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := f.c.InspectService(ctx(t), anon.Name)
		if err != nil {
			t.Fatal(err)
		}
		if s.TaskError != "" {
			if s.Running != 0 {
				t.Errorf("anonymous service runs: %+v", s)
			}
			t.Logf("without credentials: %s", s.TaskError)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a task pulled a private image without credentials: %+v", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestServiceSpecRefused(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	f := newSwarmFixture(t)
	digest := f.reg.Push(t, "acme/svc", "v1", testenv.AppImage{Version: "v1"})
	// A plain bridge network is no swarm's.
	bridge := f.e.UniqueName(t, "bridge")
	f.e.Network(t, bridge)
	spec := f.spec(digest)
	spec.Networks = []string{bridge}
	if _, _, err := f.c.DeployService(ctx(t), spec); err == nil {
		t.Fatal("a service on a bridge network was created")
	} else {
		t.Logf("bridge network: %v", err)
	}
	if _, err := f.c.InspectService(ctx(t), f.name); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("after a refused create: %v", err)
	}
	if _, _, err := f.c.DeployService(context.Background(), deploy.ServiceSpec{Spec: deploy.Spec{Name: f.name}}); err == nil {
		t.Error("a service without an image was created")
	}
}
