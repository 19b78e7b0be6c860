// Package deploy is liftoff's engine. It turns a Request ("deployment web
// should run tag v2") into the container it names, safely:
//
//   - a queue per deployment runs its jobs one at a time (a deploy, or a
//     repair of what an interrupted deploy left), keeps at most one deploy
//     waiting behind the running one (the latest wins) and drops duplicate
//     deliveries;
//   - a deploy is a fixed list of steps (resolve, pull, prepare, then the
//     strategy's swap, health gate and cleanup or rollback), each written to
//     the Journal before it is taken;
//   - Reconcile reads the journal after a crash or an engine outage and
//     finishes or undoes every interrupted deploy;
//   - each deployment runs on one engine (Options.Runtime, the local one,
//     or one of Options.Engines); Watch follows each engine on its own, so
//     that one that does not answer holds up only its own deployments.
//
// It defines what it needs of a container engine and of durable records
// as small interfaces, each declared by the code that uses it: Pinger
// (reconcile.go), Images (steps.go), Containers (repair.go), Swapper
// (strategy.go), OneOffs (release.go) and, for Swarm, Services
// (service.go); Requests (queue.go), Pauses (hold.go), Deploys
// (attempt.go), Interrupted (repair.go) and Successes (release.go).
// Runtime and Journal compose them for Options, which the docker and
// history packages implement. docs/ARCHITECTURE.md tells the whole story.
package deploy
