package bench

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestStats checks how a client's requests are summed up into downtime,
// the subtle part of the swap benchmarks; it needs no Docker engine.
func TestStats(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	// req is a request sent at ms after t0 that took tookMs; reason ""
	// means answered.
	req := func(ms, tookMs int, reason string) event {
		took := time.Duration(tookMs) * time.Millisecond
		ev := event{at: t0.Add(time.Duration(ms)*time.Millisecond + took), took: took, ok: reason == "", reason: reason}
		if ev.ok {
			ev.version = "v"
		}
		return ev
	}
	tests := []struct {
		name   string
		events []event
		to     int // ms after t0
		want   swapStats
	}{{
		name:   "no failures",
		events: []event{req(-5, 1, ""), req(5, 1, ""), req(15, 300, ""), req(25, 1, "")},
		to:     30,
		want:   swapStats{stalled: 1, slowest: 300 * time.Millisecond},
	}, {
		name: "stop-first: one outage",
		events: []event{req(-5, 1, ""), req(5, 1, ""), req(15, 1, "refused"), req(25, 1, "refused"),
			req(35, 1, ""), req(45, 1, "")},
		to:   50,
		want: swapStats{failed: 2, downtime: 30 * time.Millisecond, outage: 30 * time.Millisecond, slowest: time.Millisecond},
	}, {
		name: "start-first: failures between answers",
		events: []event{req(5, 1, ""), req(15, 2000, "timeout"), req(25, 1, ""), req(35, 1, ""),
			req(45, 2000, "timeout"), req(55, 2000, "timeout"), req(65, 1, "")},
		to:   70,
		want: swapStats{failed: 3, downtime: 60 * time.Millisecond, outage: 30 * time.Millisecond, slowest: time.Millisecond},
	}, {
		name:   "a request that hangs ends after later ones",
		events: []event{req(0, 1, ""), req(20, 1, ""), req(10, 2000, "timeout")},
		to:     30,
		want:   swapStats{failed: 1, downtime: 20 * time.Millisecond, outage: 20 * time.Millisecond, slowest: time.Millisecond},
	}, {
		name: "an outage that ends after the window",
		events: []event{req(-5, 1, ""), req(5, 1, "dns"), req(15, 1, "dns"), req(25, 1, "dns"),
			req(35, 1, "")},
		to:   20,
		want: swapStats{failed: 2, downtime: 40 * time.Millisecond, outage: 40 * time.Millisecond},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// As the poll client prints them: as they end.
			evs := slices.Clone(tc.events)
			slices.SortStableFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
			r := &recorder{events: evs}
			got := r.stats(t, t0, t0.Add(time.Duration(tc.to)*time.Millisecond))
			got.reasons = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	ev, ok := parseEvent("1700000000123456789 ok abc.v2 1500")
	if !ok || !ev.ok || ev.version != "abc.v2" || ev.took != 1500*time.Microsecond ||
		!ev.at.Equal(time.Unix(0, 1700000000123456789)) || !ev.start().Equal(ev.at.Add(-1500*time.Microsecond)) {
		t.Errorf("ok line: %+v %v", ev, ok)
	}
	ev, ok = parseEvent("1700000000123456789 err refused 300")
	if !ok || ev.ok || ev.reason != "refused" {
		t.Errorf("err line: %+v %v", ev, ok)
	}
	for _, bad := range []string{"", "Unable to find image", "1 ok v", "x ok v 1", "1 maybe v 1", "1 ok v x"} {
		if _, ok := parseEvent(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	for _, tc := range []struct {
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 99, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(3, 1, 2), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
	} {
		if got := percentile(tc.ds, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.ds, tc.p, got, tc.want)
		}
	}
}
