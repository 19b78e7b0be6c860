package webhooks

import (
	"testing"
	"time"
)

// An id is claimed once within the window, whether its delivery is still
// being answered or was answered; released, it may be tried again.
func TestRedeliveriesClaim(t *testing.T) {
	r := newRedeliveries()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	if !r.claim("ghcr", "a", now) {
		t.Fatal("a new id is not new")
	}
	if r.claim("ghcr", "a", now.Add(time.Second)) {
		t.Error("a copy arriving while the first is answered is new")
	}
	if !r.claim("harbor", "a", now) {
		t.Error("another source's id of the same value is not new")
	}
	r.release("ghcr", "a")
	if !r.claim("ghcr", "a", now.Add(2*time.Second)) {
		t.Error("an id released after a failed answer is not new again")
	}
	if !r.claim("ghcr", "a", now.Add(2*time.Second+redeliveryWindow)) {
		t.Error("an id past the window is not new")
	}
	for i := range maxRemembered + 10 {
		r.claim("quay", string(rune('a'+i%26))+time.Duration(i).String(), now)
	}
	if len(r.seen) > maxRemembered || len(r.order) > maxRemembered {
		t.Errorf("%d ids remembered, %d in order: at most %d", len(r.seen), len(r.order), maxRemembered)
	}
}

// A delivery of several tags is listed with its first push's image: the
// tags of another repository name it.
func TestTagsOf(t *testing.T) {
	a1, a2, b1 := push{Repo: "r.io/a", Tag: "v1"}, push{Repo: "r.io/a", Tag: "v2"}, push{Repo: "r.io/b", Tag: "v1"}
	for _, tt := range []struct {
		ps   []push
		want string
	}{
		{nil, ""}, {[]push{a1}, "v1"}, {[]push{a1, a2, a1}, "v1,v2"}, {[]push{a1, b1, a2}, "v1,r.io/b:v1,v2"},
	} {
		if got := tagsOf(tt.ps); got != tt.want {
			t.Errorf("tagsOf(%v) = %q, want %q", tt.ps, got, tt.want)
		}
	}
}
