// Package testenv holds the test helpers that every package's engine tests
// share: an in-memory image registry on 127.0.0.1, runnable test images
// built without "docker build", and a connection to the real Docker engine
// that cleans up after each test.
//
// A typical engine test:
//
//	e := testenv.Engine(t)            // skips (or fails, with LIFTOFF_REQUIRE_DOCKER=1) without an engine
//	reg := e.Registry(t)              // its images are removed from the engine at the end
//	reg.Push(t, "acme/web", "staging", testenv.AppImage{Version: "1"})
//	name := e.UniqueName(t, "web")    // containers named name* are removed at the end
//	... create and start a container from reg.Host()+"/acme/web@"+digest ...
//	version, env := e.AppGet(t, name)
//
// The test app (see testapp/) answers GET / with its version and
// environment, GET /healthz with 200 (500 with TESTAPP_HEALTH=fail, never
// with TESTAPP_HEALTH=hang), exits with TESTAPP_EXIT or after
// TESTAPP_EXIT_AFTER, and stops at once on SIGTERM (unless
// TESTAPP_IGNORE_TERM=1: then a stop waits out its grace period and
// kills). As "/app client" it is a load client (StartClient) that records
// which version answered each request, for zero-downtime tests. As
// "/app release" (Cmd ReleaseCmd()) it is a release or backup command that
// appends to TESTAPP_MARKER_FILE, prints, may hang, and exits with
// TESTAPP_RELEASE_EXIT; a server given the same TESTAPP_MARKER_FILE
// answers what the file held when it started (App.MarkerAtStart).
package testenv
