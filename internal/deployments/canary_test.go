package deployments

import (
	"strings"
	"testing"
	"time"
)

// One error each, naming its field, for proxy.canary.
func TestCanaryErrors(t *testing.T) {
	dep := func(canary string) string {
		return "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \"127.0.0.1:8001\", port: 8000, canary: " + canary + "}}\n"
	}
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no steps", dep("{step_interval: 1m}"), "deployments[0].proxy.canary.steps: missing"},
		{"step zero", dep("{steps: [0, 50]}"), "deployments[0].proxy.canary.steps[0]: 0: want a percentage from 1 to 99"},
		{"step 100", dep("{steps: [50, 100]}"), "deployments[0].proxy.canary.steps[1]: 100: want a percentage from 1 to 99"},
		{"steps not increasing", dep("{steps: [25, 5]}"), "deployments[0].proxy.canary.steps[1]: 5: want more than the step before (25)"},
		{"negative interval", dep("{steps: [5], step_interval: -1s}"), "deployments[0].proxy.canary.step_interval: must be positive"},
		{"negative p99", dep("{steps: [5], max_p99: -1ms}"), "deployments[0].proxy.canary.max_p99: must be positive"},
		{"negative min_requests", dep("{steps: [5], min_requests: -3}"), "deployments[0].proxy.canary.min_requests: must be positive"},
		{"negative max_wait", dep("{steps: [5], max_wait: -3s}"), "deployments[0].proxy.canary.max_wait: must be positive"},
		{"rate without %", dep("{steps: [5], max_error_rate: 0.01}"), `deployments[0].proxy.canary.max_error_rate: "0.01": want a percentage such as 1% or 0.5%`},
		{"rate over 100", dep("{steps: [5], max_error_rate: 150%}"), `deployments[0].proxy.canary.max_error_rate: "150%": want a percentage from 0% to 100%`},
		{"rate NaN", dep("{steps: [5], max_error_rate: NaN%}"), `deployments[0].proxy.canary.max_error_rate: "NaN%": want a percentage from 0% to 100%`},
		{"unknown key", dep("{steps: [5], max_errors: 1%}"), `unknown key "max_errors"`},
		{"null", "deployments:\n  - name: web\n    image: acme/web\n    tags: [x]\n    proxy:\n      listen: \"127.0.0.1:8001\"\n      port: 8000\n      canary:\n", "deployments[0].proxy.canary: given with no value"},
		{"service", "deployments:\n  - {name: web, image: acme/web, tags: [x], service: {}, proxy: {listen: \"127.0.0.1:8001\", port: 8000, canary: {steps: [5]}}}\n",
			"deployments[0].proxy.canary: a canary runs the new container beside the old one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, head+tt.yaml)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCanaryDefaults(t *testing.T) {
	cfg := mustParse(t, head+`deployments:
  - {name: web, image: acme/web, tags: [x], proxy: {listen: "127.0.0.1:8001", port: 8000, canary: {steps: [5, 25, 50]}}}
  - {name: api, image: acme/api, tags: [x], proxy: {listen: "127.0.0.1:8002", port: 8000, canary: {steps: [10], step_interval: 30s, max_error_rate: 0.5%, max_p99: 800ms, min_requests: 200, max_wait: 1m}}}
`)
	k := cfg.Deployments[0].Proxy.Canary
	if k.StepInterval != DefaultCanaryStepInterval || k.MinRequests != DefaultCanaryMinRequests || k.ErrorRate != 0.01 ||
		k.MaxWait != 5*DefaultCanaryStepInterval || k.MaxP99 != 0 {
		t.Errorf("defaults %+v", *k)
	}
	k = cfg.Deployments[1].Proxy.Canary
	if k.StepInterval != 30*time.Second || k.MinRequests != 200 || k.ErrorRate != 0.005 || k.MaxWait != time.Minute || k.MaxP99 != 800*time.Millisecond {
		t.Errorf("given %+v", *k)
	}
}
