package deploy

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// isDeliveryID: 24 lowercase hex digits.
func isDeliveryID(s string) bool {
	return len(s) == 24 && strings.Trim(s, "0123456789abcdef") == ""
}

func TestDeliveryIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewDeliveryID()
		if !isDeliveryID(id) || seen[id] {
			t.Fatalf("delivery id %q: malformed or repeated", id)
		}
		seen[id] = true
	}
}

// Ids sort by the time they were made (to the millisecond), so that the
// history's index of them grows at its end.
func TestDeliveryIDsSortByTime(t *testing.T) {
	before := time.Now().UnixMilli()
	first := NewDeliveryID()
	time.Sleep(2 * time.Millisecond)
	second := NewDeliveryID()
	after := time.Now().UnixMilli()
	if first >= second {
		t.Errorf("id %s made 2ms before %s sorts after it", first, second)
	}
	ms, err := strconv.ParseInt(second[:12], 16, 64)
	if err != nil || ms < before || ms > after {
		t.Errorf("id %s: the first 12 digits are not the unix milliseconds between %d and %d", second, before, after)
	}
}
