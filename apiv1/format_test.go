package apiv1

import (
	"slices"
	"testing"
	"time"
)

func TestShortDigest(t *testing.T) {
	for in, want := range map[string]string{
		"": "",
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "0123456789ab",
		"0123456789abcdef": "0123456789ab",
		"sha256:abc":       "abc",
	} {
		if got := ShortDigest(in); got != want {
			t.Errorf("ShortDigest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, ""},
		{now, "just now"},
		{now.Add(-42 * time.Second), "42s ago"},
		{now.Add(-5 * time.Minute), "5m ago"},
		{now.Add(-3*time.Hour - 5*time.Minute), "3h05m ago"},
		{now.Add(-72 * time.Hour), "3d ago"},
		{now.Add(3 * time.Hour), "in 3h00m"},
	} {
		if got := Ago(now, c.t); got != c.want {
			t.Errorf("Ago(%v) = %q, want %q", now.Sub(c.t), got, c.want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[float64]string{
		-1: "-", 0.35: "0.35s", 12.44: "12.4s", 185: "3m05s", 3720: "1h02m",
	} {
		if got := Seconds(in); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestCompareSteps(t *testing.T) {
	names := []string{"zeta", "gate", "rollback", "pull", "alpha", "backup"}
	slices.SortFunc(names, CompareSteps)
	if want := []string{"pull", "backup", "gate", "rollback", "alpha", "zeta"}; !slices.Equal(names, want) {
		t.Errorf("sorted %v, want %v", names, want)
	}
	s := Steps()
	s[0] = "changed"
	if Steps()[0] != "resolve" {
		t.Error("Steps returns the package's own slice")
	}
}
