package daemon

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingWriter keeps what is written to it, and the number of writes;
// while gate is not nil, each write says so on entered and waits for gate
// to be closed.
type recordingWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	gate    chan struct{}
	entered chan struct{}
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	gate := w.gate
	w.mu.Unlock()
	if gate != nil {
		w.entered <- struct{}{}
		<-gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

// letThrough makes the writes after the one waiting at the gate pass at
// once.
func (w *recordingWriter) letThrough() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gate = nil
}

// newHeldLogWriter returns a LogWriter whose goroutine has taken "first\n"
// and waits, in its write to out, until gate is closed.
func newHeldLogWriter() (l *LogWriter, out *recordingWriter, gate chan struct{}) {
	gate = make(chan struct{})
	out = &recordingWriter{gate: gate, entered: make(chan struct{}, 1)}
	l = NewLogWriter(out)
	fmt.Fprintln(l, "first")
	<-out.entered
	return l, out, gate
}

func (w *recordingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// Every line logged, from many goroutines at once, is written whole, once,
// and each goroutine's in the order it logged them; Close returns once
// all are written.
func TestLogWriterWritesEveryLineInOrder(t *testing.T) {
	out := &recordingWriter{}
	l := NewLogWriter(out)
	const goroutines, lines = 16, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(l, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	l.Close()

	next := make([]int, goroutines)
	all := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for _, line := range all {
		var g, i int
		if _, err := fmt.Sscanf(line, "g%d line %d", &g, &i); err != nil || g < 0 || g >= goroutines {
			t.Fatalf("line %q: not a line logged", line)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d written after line %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if len(all) != goroutines*lines {
		t.Errorf("%d lines written, want %d", len(all), goroutines*lines)
	}
	t.Logf("%d lines in %d writes", len(all), out.writes)
}

// A line logged while the writer is busy does not wait for it, and goes in
// its next write with the others logged meanwhile; past maxPending bytes
// waiting, Write waits.
func TestLogWriterBatchesWhileBusy(t *testing.T) {
	l, out, gate := newHeldLogWriter()
	defer l.Close()

	// These return at once, although nothing is written.
	returned := make(chan struct{})
	go func() {
		for i := range 10 {
			fmt.Fprintf(l, "line %d\n", i)
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("Write waited for a busy writer with little pending")
	}

	// Fill pending past maxPending: the next Write waits.
	big := bytes.Repeat([]byte("x"), maxPending)
	l.Write(big)
	blocked := make(chan struct{})
	go func() {
		fmt.Fprintln(l, "last")
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Error("Write did not wait with maxPending bytes pending")
	case <-time.After(100 * time.Millisecond):
	}

	out.letThrough()
	close(gate)
	<-blocked
	l.Close()
	if out.writes > 4 {
		t.Errorf("%d writes for 13 lines logged while busy, want a few", out.writes)
	}
	want := "first\n"
	for i := range 10 {
		want += fmt.Sprintf("line %d\n", i)
	}
	want += string(big) + "last\n"
	if got := out.String(); got != want {
		t.Errorf("written: %d bytes, want %d (%.80q...)", len(got), len(want), got)
	}
}

// After Close, lines are written at once.
func TestLogWriterAfterClose(t *testing.T) {
	out := &recordingWriter{}
	l := NewLogWriter(out)
	fmt.Fprintln(l, "before")
	l.Close()
	l.Close() // twice is harmless
	fmt.Fprintln(l, "after")
	if got := out.String(); got != "before\nafter\n" {
		t.Errorf("written %q", got)
	}
}

// A Write waiting for room (maxPending bytes pending) while Close runs is
// written, after everything before it.
func TestLogWriterCloseWritesAWaitingLine(t *testing.T) {
	l, out, gate := newHeldLogWriter()
	big := bytes.Repeat([]byte("x"), maxPending)
	l.Write(big)
	waited := make(chan struct{})
	go func() { fmt.Fprintln(l, "last"); close(waited) }()
	time.Sleep(50 * time.Millisecond) // "last" waits for room
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	time.Sleep(50 * time.Millisecond) // Close waits for the writer

	out.letThrough()
	close(gate)
	<-closed
	<-waited
	if got, want := out.String(), "first\n"+string(big)+"last\n"; got != want {
		t.Errorf("written: %d bytes ending %q, want %d ending \"last\\n\"", len(got), got[max(0, len(got)-8):], len(want))
	}
}

// A line logged while Close writes what is pending comes after the lines
// logged before it.
func TestLogWriterOrderDuringClose(t *testing.T) {
	l, out, gate := newHeldLogWriter()
	fmt.Fprintln(l, "A")
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	time.Sleep(50 * time.Millisecond) // Close waits for the writer
	out.letThrough()
	logged := make(chan struct{})
	go func() { fmt.Fprintln(l, "B"); close(logged) }()
	time.Sleep(50 * time.Millisecond)
	close(gate)
	<-closed
	<-logged
	if got := out.String(); got != "first\nA\nB\n" {
		t.Errorf("written %q, want first, A, B", got)
	}
}
