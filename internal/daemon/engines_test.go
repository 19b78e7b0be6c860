package daemon

import (
	"slices"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// TestRestartOnlyEngines: a client per engine is opened at start-up, so a
// reload that changes engines says that it applies after a restart.
func TestRestartOnlyEngines(t *testing.T) {
	web2 := deployments.Engine{Host: "tcp://10.0.0.12:2376"}
	for _, tc := range []struct {
		name     string
		old, new map[string]deployments.Engine
		want     bool
	}{
		{"none", nil, nil, false},
		{"same", map[string]deployments.Engine{"web2": web2}, map[string]deployments.Engine{"web2": web2}, false},
		{"added", nil, map[string]deployments.Engine{"web2": web2}, true},
		{"removed", map[string]deployments.Engine{"web2": web2}, nil, true},
		{"host changed", map[string]deployments.Engine{"web2": web2}, map[string]deployments.Engine{"web2": {Host: "tcp://10.0.0.13:2376"}}, true},
		{"tls changed", map[string]deployments.Engine{"web2": web2}, map[string]deployments.Engine{"web2": {Host: web2.Host, TLSCA: "/etc/liftoff/ca.pem"}}, true},
	} {
		keys := restartOnly(&deployments.Config{Engines: tc.old}, &deployments.Config{Engines: tc.new})
		if got := slices.Contains(keys, "engines"); got != tc.want {
			t.Errorf("%s: restartOnly = %v, want engines listed: %v", tc.name, keys, tc.want)
		}
	}
}
