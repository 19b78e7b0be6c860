package apiv1

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ShortDigest is the first 12 hex digits of a digest, without its
// algorithm, as docker shows ids: sha256:0123456789abcdef... is
// 0123456789ab.
func ShortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok {
		d = hex
	}
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// Ago says how long before now t was, roughly: "just now", "42s ago",
// "5m ago", "3h05m ago", "2d ago"; or "in 3h05m" for a time to come. It is
// "" for the zero time.
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + roughly(-d)
	case d < time.Second:
		return "just now"
	}
	return roughly(d) + " ago"
}

func roughly(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// Seconds formats a duration given in seconds, as the phases of a deploy
// are: 0.42s, 8.3s, 2m05s, 1h02m; "-" for a negative one.
func Seconds(sec float64) string {
	switch {
	case sec < 0:
		return "-"
	case sec < 10:
		return strconv.FormatFloat(sec, 'f', 2, 64) + "s"
	case sec < 60:
		return strconv.FormatFloat(sec, 'f', 1, 64) + "s"
	}
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
}
