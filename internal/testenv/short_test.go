package testenv

import "testing"

// The fast loop may leave a slow test out, but never under
// LIFTOFF_REQUIRE_DOCKER=1, where every test must run.
func TestSlowLeftOutOnlyFromTheFastLoop(t *testing.T) {
	for _, c := range []struct {
		short   bool
		require string
		want    bool
	}{{false, "", false}, {false, "1", false}, {true, "", true}, {true, "0", true}, {true, "1", false}} {
		if got := leftOut(c.short, c.require); got != c.want {
			t.Errorf("leftOut(short %v, LIFTOFF_REQUIRE_DOCKER=%q) = %v, want %v", c.short, c.require, got, c.want)
		}
	}
}
