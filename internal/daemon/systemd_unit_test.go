package daemon_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitBindsLowPorts: the shipped unit runs liftoff as its own
// user with CAP_NET_BIND_SERVICE as its one capability, ambient and in the
// bounding set, so that a front door on ":443" (and ":80") can open; no
// other capability is left in either.
func TestSystemdUnitBindsLowPorts(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("..", "..", "contrib", "systemd", "liftoff.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The last assignment of a key is what these keys end as (an empty
	// one resets them).
	last := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			last[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"User":                  "liftoff",
		"NoNewPrivileges":       "yes",
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
	} {
		if got, ok := last[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
}
