package bench

import (
	"testing"
)

// BenchmarkProxySwaps is the proxy mode's zero-downtime goal: b.N
// consecutive swaps (run it with -benchtime 50x) while a client sends 200
// requests a second through liftoff's front door, each on a new
// connection, and then over kept-alive ones. failed-req must be 0 in
// every row.
//
//	go test -run '^$' -bench BenchmarkProxySwaps -benchtime 50x -timeout 30m ./bench/
func BenchmarkProxySwaps(b *testing.B) {
	var proxy swapMode
	for _, m := range swapModes {
		if m.name == "proxy" {
			proxy = m
		}
	}
	if proxy.setup == nil {
		b.Fatal("no proxy mode in swapModes")
	}
	for _, l := range []swapLoad{{200, false}, {200, true}} {
		b.Run(l.String(), func(b *testing.B) { runSwap(b, proxy, l) })
	}
}
