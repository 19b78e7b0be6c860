package testenv

import (
	"os"
	"testing"
)

// Slow marks a test that the fast loop, go test -short ./..., leaves to the
// full suite: the crash soaks, load and zero-downtime tests, Swarm, a second
// dockerd, the browser and the shipped image. The fast loop keeps the core
// path on the real engine (a push deployed end to end, the container
// lifecycle, the API) so that it still says whether liftoff works.
//
// A slow test never skips where LIFTOFF_REQUIRE_DOCKER=1 (CI), even with
// -short: CI runs every test.
func Slow(t testing.TB) {
	t.Helper()
	if leftOut(testing.Short(), os.Getenv("LIFTOFF_REQUIRE_DOCKER")) {
		t.Skip("slow: left to the full suite (go test -race ./...); -short runs the fast loop")
	}
}

// leftOut says whether Slow skips: under -short, unless every test must run.
func leftOut(short bool, requireDocker string) bool {
	return short && requireDocker != "1"
}
