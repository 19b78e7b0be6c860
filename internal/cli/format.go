package cli

// The tables and texts the client commands print.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
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

// ago says when t was, as apiv1.Ago does ("5m ago", "in 3h05m"); "-"
// for the zero time.
func ago(now, t time.Time) string {
	return orDash(apiv1.Ago(now, t))
}

// phasesLine lists phases in the order of the steps:
// "resolve 0.05s, pull 2.31s".
func phasesLine(phases map[string]float64) string {
	var parts []string
	for _, k := range slices.SortedFunc(maps.Keys(phases), apiv1.CompareSteps) {
		parts = append(parts, k+" "+apiv1.Seconds(phases[k]))
	}
	return strings.Join(parts, ", ")
}
