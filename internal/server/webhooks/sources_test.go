package webhooks

import (
	"maps"
	"slices"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// TestSourcesMatchConfig: the server has a parser for every source that
// hooks[].source accepts, and for no other: a source without one would
// answer 404 to every delivery, and a parser the config cannot reach is
// dead code.
func TestSourcesMatchConfig(t *testing.T) {
	srv := newHarness(t, nil).hh
	served := slices.Sorted(maps.Keys(srv.sources))
	accepted := slices.Sorted(slices.Values(deployments.HookSources()))
	if !slices.Equal(served, accepted) {
		t.Errorf("server parses %q; the config accepts %q", served, accepted)
	}
	if slices.Contains(served, sourceUnknown) {
		t.Errorf("%q is a served source and the metrics label of unknown ones", sourceUnknown)
	}
	for _, src := range accepted {
		cfg := "hooks: [{source: " + src + ", token: " + testToken + "}]\n"
		if deployments.SignedSource(src) {
			cfg = "hooks: [{source: " + src + ", token: " + testToken + ", secret: " + testToken + "}]\n"
		}
		if _, err := deployments.Parse([]byte(cfg), t.TempDir(), nil); err != nil {
			t.Errorf("source %q: %v", src, err)
		}
	}
}
