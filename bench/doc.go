// Package bench measures liftoff end to end against the real Docker engine:
// how long a DockerHub webhook takes to make the new version serve, how that
// compares with doing the same by hand with the docker CLI, and how long
// the service answers nothing during a stop-first or a start-first swap.
//
// Everything is in benchmarks (go test -bench, see run.sh and README.md);
// nothing here runs under a plain go test. The daemon is the real binary,
// built from ./cmd/liftoff and started with a generated config, as users
// run it.
package bench
