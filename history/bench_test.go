package history

import (
	"context"
	"testing"

	"github.com/liftoff-deploy/liftoff/deploy"
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
