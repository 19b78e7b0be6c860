package ui

import (
	"testing"
	"time"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// TestUISessionsAreBounded: past maxSessions the oldest session goes, and
// expired ones go first.
func TestUISessionsAreBounded(t *testing.T) {
	ss := newSessions()
	first := ss.create([32]byte{1}, testNow)
	for i := range maxSessions {
		ss.create([32]byte{2, byte(i), byte(i >> 8)}, testNow.Add(time.Duration(i+1)*time.Second))
	}
	if len(ss.byID) != maxSessions {
		t.Errorf("%d sessions, want %d", len(ss.byID), maxSessions)
	}
	if _, ok := ss.get(first, testNow); ok {
		t.Error("the oldest session is still there")
	}

	// One token logging in again and again pushes out its own sessions
	// only.
	ss = newSessions()
	other := ss.create([32]byte{1}, testNow)
	var mine []string
	for i := range 5 * maxTokenSessions {
		mine = append(mine, ss.create([32]byte{2}, testNow.Add(time.Duration(i+1)*time.Second)))
	}
	if _, ok := ss.get(other, testNow); !ok {
		t.Error("another token's session was pushed out")
	}
	if len(ss.byID) != maxTokenSessions+1 {
		t.Errorf("%d sessions, want %d of the token and 1 other", len(ss.byID), maxTokenSessions)
	}
	if _, ok := ss.get(mine[len(mine)-1], testNow); !ok {
		t.Error("the token's newest session is gone")
	}
	ss.create([32]byte{3}, testNow.Add(sessionLifetime+time.Hour))
	if len(ss.byID) != 1 {
		t.Errorf("%d sessions after all the others expired, want 1", len(ss.byID))
	}
}
