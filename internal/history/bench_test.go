package history

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// BenchmarkStep measures one journal write, which the engine waits for
// before each step of a deploy. The file is in the test's temporary
// directory: set TMPDIR to measure the disk liftoff.db will live on.
func BenchmarkStep(b *testing.B) {
	for _, mode := range []Sync{SyncFull, SyncNormal} {
		b.Run(string(mode), func(b *testing.B) {
			ctx := context.Background()
			s, _ := open(b, WithSync(mode))
			r := record("web")
			id, err := s.Begin(ctx, r)
			if err != nil {
				b.Fatal(err)
			}
			steps := []string{deploy.StepPull, deploy.StepStop, deploy.StepCreate, deploy.StepGate}
			i := 0
			for b.Loop() {
				r.Step = steps[i%len(steps)]
				i++
				if err := s.Step(ctx, id, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecordDeliveries measures recording deliveries in batches of
// 300 (what the daemon's recorder gathers in 25ms at 12k deliveries a
// second) into a history that holds 90,000 already, with delivery ids that
// sort by time, as the server makes them, and with random ids, as it made
// them before: each of those lands on another page of the id index. The
// column us/row is the cost of one delivery.
//
//	go test -run '^$' -bench RecordDeliveries -benchtime 200x ./internal/history/
func BenchmarkRecordDeliveries(b *testing.B) {
	const batch, before = 300, 90_000
	for _, ids := range []string{"time-ordered", "random"} {
		b.Run(ids, func(b *testing.B) {
			ctx := context.Background()
			s, _ := open(b)
			n := uint64(0)
			next := func() []deploy.Delivery {
				ds := make([]deploy.Delivery, batch)
				for i := range ds {
					n++
					id := n
					if ids == "random" {
						id *= 0x9E3779B97F4A7C15 // a bijection: no two alike
					}
					ds[i] = deploy.Delivery{ID: fmt.Sprintf("%024x", id), Source: "dockerhub", Image: "docker.io/acme/nobody-deploys-this",
						Tag: "staging", Pusher: "someone", Received: time.Now(),
						Ignored: []deployments.Ignored{{Tag: "staging", Reason: "no deployment for docker.io/acme/nobody-deploys-this"}}}
				}
				return ds
			}
			for range before / batch {
				if err := s.RecordDeliveries(ctx, next()); err != nil {
					b.Fatal(err)
				}
			}
			var rows int
			var spent time.Duration
			for b.Loop() {
				ds := next()
				start := time.Now()
				if err := s.RecordDeliveries(ctx, ds); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(start)
				rows += len(ds)
			}
			b.ReportMetric(float64(spent.Nanoseconds())/1e3/float64(rows), "us/row")
		})
	}
}

// BenchmarkFloodWithRetention writes a flood of deliveries (1M per
// iteration, in batches of 300, all within the age) into a history pruned
// as the daemon prunes it (max_deliveries 100,000, batches of 500 rows),
// here after every 10 batches written instead of every 10 minutes. It
// reports the file's size at the end (MB, the WAL included) and the most
// it reached: with retention on, the file stops growing once it holds
// max_deliveries, because the pages the prune frees are reused.
//
//	go test -run '^$' -bench FloodWithRetention -benchtime 1x ./internal/history/
func BenchmarkFloodWithRetention(b *testing.B) {
	const flood, batch, pruneBatch = 1_000_000, 300, 500
	keep := Retention{DeliveryAge: 30 * 24 * time.Hour, MaxDeliveries: 100_000, Deploys: 400}
	ctx := context.Background()
	size := func(path string) int64 {
		var n int64
		for _, f := range []string{path, path + "-wal"} {
			if st, err := os.Stat(f); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	for b.Loop() {
		s, path := open(b)
		var peak int64
		n := 0
		for i := 0; n < flood; i++ {
			ds := make([]deploy.Delivery, batch)
			for j := range ds {
				n++
				ds[j] = deploy.Delivery{ID: fmt.Sprintf("%024x", n), Source: "dockerhub", Image: "docker.io/acme/web",
					Tag: fmt.Sprintf("pr-%d", n), Pusher: "ci", Received: time.Now(), Accepted: []string{"web-previews"}}
			}
			if err := s.RecordDeliveries(ctx, ds); err != nil {
				b.Fatal(err)
			}
			if i%10 == 9 {
				for {
					p, err := s.Prune(ctx, keep, pruneBatch)
					if err != nil {
						b.Fatal(err)
					}
					if p.Deliveries < pruneBatch {
						break
					}
				}
				peak = max(peak, size(path))
			}
		}
		rows, err := s.Rows(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size(path))/1e6, "MB-end")
		b.ReportMetric(float64(peak)/1e6, "MB-peak")
		b.ReportMetric(float64(rows["deliveries"]), "rows")
	}
}
