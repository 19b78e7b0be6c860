package cli

// The tables and texts the client commands print.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// table is a tabwriter whose lines lose their trailing blanks (a last
// column empty on some rows).
type table struct {
	*tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func newTable(out io.Writer) *table {
	t := &table{out: out}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 4, 2, ' ', 0)
	return t
}

func (t *table) Flush() {
	t.Writer.Flush()
	for line := range strings.Lines(t.buf.String()) {
		fmt.Fprintln(t.out, strings.TrimRight(line, " \n"))
	}
	t.buf.Reset()
}

// printJSON prints an answer as the API gave it, indented.
func (s *session) printJSON(body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return failf("the server's answer is not JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := s.stdout.Write(buf.Bytes())
	return err
}

// list prints an answer of n items: its JSON with --json, else none
// when there are none, else what table prints.
func (s *session) list(a answer, n int, none string, table func()) error {
	switch {
	case s.json:
		return s.printJSON(a.body)
	case n == 0:
		fmt.Fprintln(s.stdout, none)
		return nil
	}
	table()
	return nil
}

// progress is where --wait writes its lines: stdout, or stderr when stdout
// carries JSON.
func (s *session) progress() io.Writer {
	if s.json {
		return s.stderr
	}
	return s.stdout
}

// shortDigest: the first 12 hex digits, as docker shows image ids.
func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok {
		d = hex
	}
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// refOf names what a deploy deploys: its tag, else its digest.
func refOf(tag, digest string) string {
	switch {
	case tag != "":
		return tag
	case digest != "":
		return "@" + digest
	}
	return ""
}

func outcomeOf(o *string) string {
	if o == nil {
		return "running"
	}
	return *o
}

// goodOutcome: what --wait exits 0 for.
func goodOutcome(o string) bool {
	return o == "succeeded" || o == "unchanged"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ago says when t was, relative to now: "just now", "42s ago", "5m ago",
// "3h ago", "2d ago"; or "in 3h" for a time to come.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// seconds formats a duration given in seconds: 0.42s, 8.3s, 2m05s.
func seconds(sec float64) string {
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

// stepOrder is the order of a deploy's steps (deploy/journal.go), for
// printing its phases.
var stepOrder = []string{"resolve", "pull", "prepare", "stop", "rename", "create", "start", "gate", "publish", "cleanup", "rollback"}

// phasesLine lists phases in step order: "resolve 0.05s, pull 2.31s".
func phasesLine(phases map[string]float64) string {
	keys := make([]string, 0, len(phases))
	for k := range phases {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index(stepOrder, k); i >= 0 {
			return i
		}
		return len(stepOrder)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + seconds(phases[k])
	}
	return strings.Join(parts, ", ")
}
