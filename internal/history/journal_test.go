package history

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// t0 has nanoseconds and no monotonic reading, so that records read back
// must equal what was written, field for field.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func record(deployment string) deploy.Record {
	return deploy.Record{
		Deployment:  deployment,
		Environment: "staging",
		Image:       "docker.io/pmpl/dblood",
		Tag:         "staging",
		Trigger:     "dockerhub",
		Delivery:    "d-1",
		Pusher:      "ci",
		Step:        deploy.StepResolve,
		Started:     t0,
	}
}

func TestDeployRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)

	want := record("dblood-staging")
	id, err := s.Begin(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	want.ID = id
	check := func(stage string) {
		t.Helper()
		got, err := s.List(ctx, "dblood-staging", 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: List = %v, %v", stage, got, err)
		}
		if !reflect.DeepEqual(got[0], want) {
			t.Errorf("%s:\n got %+v\nwant %+v", stage, got[0], want)
		}
	}
	check("begun")

	want.Step = deploy.StepStop
	want.Digest = "sha256:bbb"
	want.Previous = "sha256:aaa"
	want.PrevID = "c0ffee"
	if err := s.Step(ctx, id, want); err != nil {
		t.Fatal(err)
	}
	check("stepped")
	unfinished, err := s.Unfinished(ctx)
	if err != nil || len(unfinished) != 1 || !reflect.DeepEqual(unfinished[0], want) {
		t.Fatalf("Unfinished = %+v, %v", unfinished, err)
	}
	if _, ok, err := s.Last(ctx, "dblood-staging"); ok || err != nil {
		t.Errorf("Last of an unfinished deploy = %v, %v", ok, err)
	}

	want.Step = deploy.StepCleanup
	want.NewID = "beef"
	if err := s.Step(ctx, id, want); err != nil {
		t.Fatal(err)
	}
	want.Outcome = deploy.RolledBack
	want.Error = "new container did not stay running: exit code 3"
	want.Ended = t0.Add(90*time.Second + 17)
	want.Phases = map[string]time.Duration{"pull": 12 * time.Second, "gate": 3*time.Second + 1}
	want.ReleaseOutput = "Operations to perform:\n  Apply all migrations: app\n"
	finish := want
	finish.NewID = "" // Finish keeps what Step stored when it does not know better
	if err := s.Finish(ctx, id, finish, false); err != nil {
		t.Fatal(err)
	}
	check("finished")
	if unfinished, err := s.Unfinished(ctx); err != nil || len(unfinished) != 0 {
		t.Errorf("Unfinished after Finish = %+v, %v", unfinished, err)
	}
	last, ok, err := s.Last(ctx, "dblood-staging")
	if err != nil || !ok || !reflect.DeepEqual(last, want) {
		t.Errorf("Last = %+v, %v, %v", last, ok, err)
	}
}

func TestStepAndFinishErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	id, err := s.Begin(ctx, record("web"))
	if err != nil {
		t.Fatal(err)
	}
	r := record("web")
	r.Step = deploy.StepPull

	if err := s.Step(ctx, id+1, r); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Step of an unknown deploy: %v", err)
	}
	if err := s.Finish(ctx, id+1, deploy.Record{Outcome: deploy.Failed}, false); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Finish of an unknown deploy: %v", err)
	}
	if err := s.Step(ctx, id, deploy.Record{}); err == nil {
		t.Error("Step without a step succeeded")
	}
	if err := s.Finish(ctx, id, deploy.Record{}, false); err == nil {
		t.Error("Finish without an outcome succeeded")
	}
	if err := s.Finish(ctx, id, deploy.Record{Outcome: deploy.Failed, Error: "first"}, false); err != nil {
		t.Fatal(err)
	}
	err = s.Finish(ctx, id, deploy.Record{Outcome: deploy.Succeeded}, false)
	if !errors.Is(err, ErrFinished) {
		t.Errorf("second Finish: %v", err)
	}
	if err := s.Step(ctx, id, r); !errors.Is(err, ErrFinished) {
		t.Errorf("Step after Finish: %v", err)
	}
	last, _, _ := s.Last(ctx, "web")
	if last.Outcome != deploy.Failed || last.Error != "first" || last.Step != deploy.StepResolve {
		t.Errorf("a refused write changed the deploy: %+v", last)
	}
}

func TestClockFillsMissingTimes(t *testing.T) {
	ctx := context.Background()
	now := t0
	s, _ := open(t, WithClock(func() time.Time { return now }))
	id, err := s.Begin(ctx, deploy.Record{Deployment: "web", Step: deploy.StepResolve})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if err := s.Finish(ctx, id, deploy.Record{Outcome: deploy.Unchanged}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, deploy.Delivery{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Last(ctx, "web")
	if err != nil || !r.Started.Equal(t0) || !r.Ended.Equal(t0.Add(time.Minute)) || r.Phases != nil {
		t.Errorf("Last = %+v, %v", r, err)
	}
	ds, _, err := s.Deliveries(ctx, 1, 0)
	if err != nil || len(ds) != 1 || !ds[0].Received.Equal(now) {
		t.Errorf("Deliveries = %+v, %v", ds, err)
	}
}

func TestListOrderAndFilter(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	var ids []int64
	for i, name := range []string{"web", "api", "web", "web", "api"} {
		r := record(name)
		r.Started = t0.Add(time.Duration(i) * time.Second)
		id, err := s.Begin(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	idsOf := func(rs []deploy.Record) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		deployment string
		limit      int
		want       []int64
	}{
		{"web", 0, []int64{ids[3], ids[2], ids[0]}},
		{"web", 2, []int64{ids[3], ids[2]}},
		{"api", 10, []int64{ids[4], ids[1]}},
		{"", 0, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"", 1, []int64{ids[4]}},
		{"nope", 5, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d", tt.deployment, tt.limit), func(t *testing.T) {
			rs, err := s.List(ctx, tt.deployment, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := idsOf(rs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	// Oldest first, and only the unfinished ones.
	if err := s.Finish(ctx, ids[1], deploy.Record{Outcome: deploy.Succeeded}, false); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Unfinished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(rs), []int64{ids[0], ids[2], ids[3], ids[4]}; !reflect.DeepEqual(got, want) {
		t.Errorf("Unfinished ids = %v, want %v", got, want)
	}
}

func TestClampLimit(t *testing.T) {
	for in, want := range map[int]int{-1: 50, 0: 50, 1: 1, 50: 50, 1000: 1000, 1001: 1000, 1 << 40: 1000} {
		if got := clampLimit(in); got != want {
			t.Errorf("clampLimit(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestDeliveries(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	recorded := []deploy.Delivery{
		{ID: "a", Source: "dockerhub", Image: "docker.io/pmpl/dblood", Tag: "staging", Pusher: "ci",
			Received: t0, Accepted: []string{"dblood-staging", "dblood-review"},
			Ignored: []deployments.Ignored{{Deployment: "dblood-prod", Reason: "tag staging does not match [latest]"}}},
		{ID: "b", Source: "distribution", Image: "registry.example/web", Tag: "v2", Received: t0.Add(time.Second)},
		{ID: "c", Source: "api", Image: "docker.io/pmpl/dblood", Tag: "v3", Actor: "lead", Received: t0.Add(-time.Hour),
			Accepted: []string{"dblood-prod"}},
	}
	// One alone, then two in one batch (as the daemon's recorder writes
	// those that wait together).
	if err := s.RecordDelivery(ctx, recorded[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx, recorded[1:]); err != nil {
		t.Fatal(err)
	}
	// A retried delivery is the same delivery: the first record stays.
	again := recorded[0]
	again.Accepted = nil
	if err := s.RecordDelivery(ctx, again); err != nil {
		t.Fatalf("recording a delivery twice: %v", err)
	}
	// Newest recorded first; nil lists read back empty.
	want := []deploy.Delivery{recorded[2], recorded[1], recorded[0]}
	want[0].Seq, want[1].Seq, want[2].Seq = 3, 2, 1
	want[0].Ignored, want[1].Accepted, want[1].Ignored = []deployments.Ignored{}, []string{}, []deployments.Ignored{}
	got, next, err := s.Deliveries(ctx, 0, 0)
	if err != nil || next != 0 {
		t.Fatalf("Deliveries: next %d, %v", next, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Deliveries:\n got %+v\nwant %+v", got, want)
	}
	// Pages of one.
	var ids []string
	for before := int64(0); ; {
		page, next, err := s.Deliveries(ctx, 1, before)
		if err != nil || len(page) != 1 {
			t.Fatalf("page before %d: %+v %v", before, page, err)
		}
		ids = append(ids, page[0].ID)
		if next == 0 {
			break
		}
		before = next
	}
	if !reflect.DeepEqual(ids, []string{"c", "b", "a"}) {
		t.Errorf("paged: %v", ids)
	}
}

// TestConcurrentDeploys runs deploys the way the engine does, one goroutine
// per deployment, with readers beside them: no write may fail with
// SQLITE_BUSY and none may be lost.
func TestConcurrentDeploys(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	const writers, readers = 20, 4
	steps := []string{deploy.StepResolve, deploy.StepPull, deploy.StepStop, deploy.StepCreate, deploy.StepGate}

	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			r := record(fmt.Sprintf("app-%d", w))
			id, err := s.Begin(ctx, r)
			if err != nil {
				errs <- err
				return
			}
			for _, step := range steps {
				r.Step = step
				r.Digest = "sha256:" + step
				if err := s.Step(ctx, id, r); err != nil {
					errs <- err
					return
				}
			}
			r.Outcome = deploy.Succeeded
			r.Phases = map[string]time.Duration{"total": time.Duration(w)}
			if err := s.Finish(ctx, id, r, false); err != nil {
				errs <- err
			}
		})
	}
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.List(ctx, "", 100); err != nil {
					errs <- err
					return
				}
				if _, err := s.Unfinished(ctx); err != nil {
					errs <- err
					return
				}
				// Readers as busy as a refreshing status page, not
				// spinning: two cores are shared with the writers.
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	rs, err := s.List(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != writers {
		t.Fatalf("%d deploys, want %d", len(rs), writers)
	}
	for _, r := range rs {
		if r.Outcome != deploy.Succeeded || r.Step != deploy.StepGate || r.Digest != "sha256:gate" {
			t.Errorf("deploy %d: %+v", r.ID, r)
		}
	}
	if u, err := s.Unfinished(ctx); err != nil || len(u) != 0 {
		t.Errorf("Unfinished = %d, %v", len(u), err)
	}
}

// TestKeptDeliveries: deliveries kept in memory are listed with those
// recorded, in the order of their Seq, page by page; the newest
// KeptDeliveries of them stay; and a reopened history, which has lost
// them, goes on from the last Seq recorded.
func TestKeptDeliveries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "liftoff.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var want []string // ids, oldest first
	for i := range 6 {
		d := deploy.Delivery{ID: fmt.Sprintf("d%d", i), Source: "dockerhub", Received: t0}
		if i%2 == 0 {
			d.Image = "docker.io/acme/nobody"
			s.KeepDelivery(d)
		} else {
			d.Image = "docker.io/pmpl/dblood"
			d.Accepted = []string{"dblood-staging"}
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, d.ID)
	}
	slices.Reverse(want)
	ids := func(ds []deploy.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	got, next, err := s.Deliveries(ctx, 0, 0)
	if err != nil || next != 0 || !slices.Equal(ids(got), want) {
		t.Fatalf("Deliveries: %v, next %d, %v; want %v", ids(got), next, err, want)
	}
	// Pages of four, then two: the cursor passes kept and recorded alike.
	page, next, err := s.Deliveries(ctx, 4, 0)
	if err != nil || !slices.Equal(ids(page), want[:4]) || next != page[3].Seq {
		t.Fatalf("first page: %v, next %d, %v", ids(page), next, err)
	}
	page, next, err = s.Deliveries(ctx, 4, next)
	if err != nil || !slices.Equal(ids(page), want[4:]) || next != 0 {
		t.Fatalf("second page: %v, next %d, %v", ids(page), next, err)
	}

	// A flood keeps only the newest KeptDeliveries.
	for i := range KeptDeliveries + 10 {
		s.KeepDelivery(deploy.Delivery{ID: fmt.Sprintf("flood%d", i), Source: "dockerhub"})
	}
	got, _, err = s.Deliveries(ctx, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != KeptDeliveries+3 || got[0].ID != fmt.Sprintf("flood%d", KeptDeliveries+9) || got[KeptDeliveries-1].ID != "flood10" {
		t.Errorf("after a flood of %d: %d listed, newest %s, oldest kept %s; want the newest %d and the 3 recorded",
			KeptDeliveries+10, len(got), got[0].ID, got[KeptDeliveries-1].ID, KeptDeliveries)
	}
	if !slices.Equal(ids(got[KeptDeliveries:]), []string{"d5", "d3", "d1"}) {
		t.Errorf("the recorded ones after the flood: %v", ids(got[KeptDeliveries:]))
	}

	// Reopened: only the recorded ones, and new ones come after them.
	last := got[KeptDeliveries].Seq
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RecordDelivery(ctx, deploy.Delivery{ID: "after", Source: "api"}); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.Deliveries(ctx, 0, 0)
	if err != nil || !slices.Equal(ids(got), []string{"after", "d5", "d3", "d1"}) {
		t.Fatalf("reopened: %v, %v", ids(got), err)
	}
	if got[0].Seq != last+1 {
		t.Errorf("reopened: the next delivery's place is %d, want %d (after the last recorded)", got[0].Seq, last+1)
	}
}

// While a batch is being written, nothing from its first place on is
// listed: a delivery kept meanwhile shows once the batch is committed, so
// that the batch never appears below what a client has listed already.
func TestDeliveriesWaitForTheBatchBeingWritten(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	s.KeepDelivery(deploy.Delivery{ID: "before"})
	first := s.seqs.hold(2) // as RecordDeliveries does before its transaction
	s.KeepDelivery(deploy.Delivery{ID: "meanwhile"})
	got, _, err := s.Deliveries(ctx, 0, 0)
	if err != nil || len(got) != 1 || got[0].ID != "before" {
		t.Fatalf("with a batch in flight: %+v, %v; want only the delivery before it", got, err)
	}
	s.seqs.release(first)
	got, _, err = s.Deliveries(ctx, 0, 0)
	if err != nil || len(got) != 2 || got[0].ID != "meanwhile" {
		t.Fatalf("once it is written: %+v, %v; want both kept ones", got, err)
	}
	if got[0].Seq != first+2 {
		t.Errorf("kept after the batch's places: %d, want %d", got[0].Seq, first+2)
	}
}

// Two liftoffs on one file (an upgrade that overlaps) hand out the same
// places: the second to write one takes the next free place instead of
// losing its delivery, and hands out places after it.
func TestDeliveriesOfTwoProcessesOnOneFile(t *testing.T) {
	ctx := context.Background()
	a, path := open(t)
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.RecordDelivery(ctx, deploy.Delivery{ID: "from-a"}); err != nil {
		t.Fatal(err)
	}
	if err := b.RecordDeliveries(ctx, []deploy.Delivery{{ID: "from-b"}, {ID: "from-b2"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.RecordDelivery(ctx, deploy.Delivery{ID: "from-b3"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := a.Deliveries(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"from-b3", "from-b2", "from-b", "from-a"}) {
		t.Errorf("listed %v, want all four, newest first", ids)
	}
}

// A client that polls the newest deliveries never sees one appear below a
// delivery it has seen already, while batches are written and deliveries
// kept at the same time.
func TestDeliveriesNeverAppearBelowWhatWasListed(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() }) // before s is closed
	// until runs step(0), step(1)... until stop is closed or step fails.
	until := func(step func(i int) bool) {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !step(i) {
					return
				}
			}
		})
	}
	until(func(i int) bool {
		batch := []deploy.Delivery{{ID: fmt.Sprintf("w%d-a", i)}, {ID: fmt.Sprintf("w%d-b", i)}}
		if err := s.RecordDeliveries(ctx, batch); err != nil {
			t.Error(err)
			return false
		}
		return true
	})
	until(func(i int) bool {
		s.KeepDelivery(deploy.Delivery{ID: fmt.Sprintf("k%d", i)})
		time.Sleep(50 * time.Microsecond)
		return true
	})
	seen := map[string]bool{}
	var highest int64
	deadline := time.Now().Add(time.Second)
	polls := 0
	for time.Now().Before(deadline) {
		got, _, err := s.Deliveries(ctx, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		top := highest
		for _, d := range got {
			if !seen[d.ID] && d.Seq < highest && d.Seq > got[len(got)-1].Seq {
				t.Fatalf("poll %d: %s (place %d) appeared below %d, the highest place listed before", polls, d.ID, d.Seq, highest)
			}
			seen[d.ID] = true
			top = max(top, d.Seq)
		}
		highest = top
		polls++
	}
	t.Logf("%d polls, %d deliveries seen", polls, len(seen))
}
