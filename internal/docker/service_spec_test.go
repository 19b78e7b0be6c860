package docker

import (
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

func TestServiceSpec(t *testing.T) {
	in := deploy.ServiceSpec{
		Spec: deploy.Spec{
			Name: "web", Image: "127.0.0.1:5000/acme/web@sha256:abc", Env: []string{"A=1"}, Cmd: []string{"serve", "--port=8000"},
			Labels:   map[string]string{deploy.LabelManaged: "true"},
			Ports:    []string{"8080:8000", "0.0.0.0:5353:53/udp"},
			Volumes:  []string{"/srv/data:/data:ro", "cache:/cache", "/scratch"},
			Networks: []string{"front", "back"}, Aliases: []string{"web"},
			Restart:     "on-failure:3",
			Healthcheck: &deploy.Healthcheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 3},
		},
		ServiceLabels: map[string]string{deploy.LabelDeploy: "42"},
		Replicas:      3,
		StopGrace:     5 * time.Second,
		Update:        deploy.ServiceUpdate{Parallelism: 2, Delay: time.Second, Order: "start-first", Monitor: 10 * time.Second, FailureAction: "rollback"},
	}
	got, err := serviceSpec(in)
	if err != nil {
		t.Fatal(err)
	}
	cs := got.TaskTemplate.ContainerSpec
	if got.Name != "web" || cs.Image != in.Image || !reflect.DeepEqual(cs.Env, in.Env) || !reflect.DeepEqual(cs.Args, in.Cmd) || cs.Command != nil {
		t.Errorf("container spec: %+v", cs)
	}
	if !reflect.DeepEqual(cs.Labels, in.Labels) || got.Labels[deploy.LabelDeploy] != "42" || got.Labels[deploy.LabelManaged] != "true" || cs.Labels[deploy.LabelDeploy] != "" {
		t.Errorf("labels: service %v, tasks %v", got.Labels, cs.Labels)
	}
	if cs.StopGracePeriod == nil || *cs.StopGracePeriod != 5*time.Second {
		t.Errorf("stop grace %v", cs.StopGracePeriod)
	}
	if h := cs.Healthcheck; h == nil || !reflect.DeepEqual(h.Test, in.Healthcheck.Test) || h.Interval != time.Second || h.Timeout != 2*time.Second || h.Retries != 3 {
		t.Errorf("healthcheck %+v", cs.Healthcheck)
	}
	wantMounts := []mount.Mount{
		{Type: mount.TypeBind, Source: "/srv/data", Target: "/data", ReadOnly: true},
		{Type: mount.TypeVolume, Source: "cache", Target: "/cache"},
		{Type: mount.TypeVolume, Target: "/scratch"},
	}
	if !reflect.DeepEqual(cs.Mounts, wantMounts) {
		t.Errorf("mounts %+v", cs.Mounts)
	}
	three := uint64(3)
	if r := got.TaskTemplate.RestartPolicy; r == nil || r.Condition != swarm.RestartPolicyConditionOnFailure || r.MaxAttempts == nil || *r.MaxAttempts != three {
		t.Errorf("restart policy %+v", r)
	}
	wantNets := []swarm.NetworkAttachmentConfig{{Target: "front", Aliases: []string{"web"}}, {Target: "back", Aliases: []string{"web"}}}
	if !reflect.DeepEqual(got.TaskTemplate.Networks, wantNets) {
		t.Errorf("networks %+v", got.TaskTemplate.Networks)
	}
	if r := got.Mode.Replicated; r == nil || r.Replicas == nil || *r.Replicas != 3 {
		t.Errorf("mode %+v", got.Mode)
	}
	wantUpdate := swarm.UpdateConfig{Parallelism: 2, Delay: time.Second, Order: swarm.UpdateOrderStartFirst, Monitor: 10 * time.Second, FailureAction: swarm.UpdateFailureActionRollback}
	if got.UpdateConfig == nil || *got.UpdateConfig != wantUpdate {
		t.Errorf("update config %+v", got.UpdateConfig)
	}
	wantBack := wantUpdate
	wantBack.FailureAction = swarm.UpdateFailureActionPause
	if got.RollbackConfig == nil || *got.RollbackConfig != wantBack {
		t.Errorf("rollback config %+v", got.RollbackConfig)
	}
	wantPorts := []swarm.PortConfig{
		{Protocol: network.TCP, TargetPort: 8000, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress},
		{Protocol: network.UDP, TargetPort: 53, PublishedPort: 5353, PublishMode: swarm.PortConfigPublishModeIngress},
	}
	if got.EndpointSpec == nil || !reflect.DeepEqual(got.EndpointSpec.Ports, wantPorts) {
		t.Errorf("endpoint %+v", got.EndpointSpec)
	}
}

func TestServiceSpecRefuses(t *testing.T) {
	base := deploy.ServiceSpec{Spec: deploy.Spec{Name: "web", Image: "acme/web@sha256:abc"}, Replicas: 1}
	for name, change := range map[string]func(*deploy.ServiceSpec){
		"no image":          func(s *deploy.ServiceSpec) { s.Image = "" },
		"port on one ip":    func(s *deploy.ServiceSpec) { s.Ports = []string{"127.0.0.1:8080:8000"} },
		"no host port":      func(s *deploy.ServiceSpec) { s.Ports = []string{"8000"} },
		"relative target":   func(s *deploy.ServiceSpec) { s.Volumes = []string{"data:data"} },
		"selinux relabel":   func(s *deploy.ServiceSpec) { s.Volumes = []string{"/srv:/srv:z"} },
		"nocopy on a bind":  func(s *deploy.ServiceSpec) { s.Volumes = []string{"/srv:/srv:nocopy"} },
		"aliases, no net":   func(s *deploy.ServiceSpec) { s.Aliases = []string{"web"} },
		"bad restart":       func(s *deploy.ServiceSpec) { s.Restart = "sometimes" },
		"empty healthcheck": func(s *deploy.ServiceSpec) { s.Healthcheck = &deploy.Healthcheck{} },
	} {
		s := base
		change(&s)
		if _, err := serviceSpec(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestServiceRestart(t *testing.T) {
	for in, want := range map[string]*swarm.RestartPolicy{
		"":               nil,
		"no":             {Condition: swarm.RestartPolicyConditionNone},
		"always":         {Condition: swarm.RestartPolicyConditionAny},
		"unless-stopped": {Condition: swarm.RestartPolicyConditionAny},
		"on-failure":     {Condition: swarm.RestartPolicyConditionOnFailure},
	} {
		got, err := serviceRestart(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("serviceRestart(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}
