package daemon

import (
	"io"
	"runtime"
	"sync"
)

// LogWriter writes the log's lines to w, in order, from a goroutine of its
// own: a line logged while it writes goes in its next write, with every
// other line logged meanwhile. A line alone is written at once; under a
// flood of webhooks, each a line, one write carries several lines instead
// of each costing its goroutine a system call (measured: 9-10µs of CPU a
// delivery for the line, most of it the write).
//
// Write does not wait for w, unless maxPending bytes wait already: then it
// waits, as it would for a slow w. Close writes what is pending and stops
// the goroutine; a line logged after that is written at once, by Write. A
// crash that skips Close loses the lines pending at that moment, those
// logged while the goroutine wrote the previous ones.
type LogWriter struct {
	w io.Writer

	mu      sync.Mutex
	cond    sync.Cond // signalled when there are lines to write, and after each write
	pending []byte    // lines not written yet
	closed  bool      // Close was called: the goroutine writes what is pending, then stops
	done    bool      // the goroutine has stopped: Write writes to w itself
	direct  sync.Mutex
	stopped chan struct{}
}

// maxPending bounds the lines waiting for w: past it, Write waits.
const maxPending = 1 << 20

func NewLogWriter(w io.Writer) *LogWriter {
	l := &LogWriter{w: w, stopped: make(chan struct{})}
	l.cond.L = &l.mu
	go l.run()
	return l
}

// Write queues p, one log line, to be written to w.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	for len(l.pending) >= maxPending && !l.done {
		l.cond.Wait()
	}
	if l.done {
		// After Close, everything before this line is written.
		l.mu.Unlock()
		l.direct.Lock()
		defer l.direct.Unlock()
		return l.w.Write(p)
	}
	l.pending = append(l.pending, p...)
	l.mu.Unlock()
	l.cond.Broadcast()
	return len(p), nil
}

func (l *LogWriter) run() {
	defer close(l.stopped)
	var spare []byte // the buffer written last, to reuse
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for len(l.pending) == 0 && !l.closed {
			l.cond.Wait()
		}
		if len(l.pending) == 0 {
			// Closed, and everything written: a Write waiting for room
			// writes its line itself.
			l.done = true
			l.cond.Broadcast()
			return
		}
		// Let the goroutines ready to run go first: under load, they are
		// handlers about to log, and their lines join this write. Idle,
		// there are none, and the line is written at once.
		l.mu.Unlock()
		runtime.Gosched()
		l.mu.Lock()
		buf := l.pending
		l.pending = spare[:0]
		l.mu.Unlock()
		l.w.Write(buf) // as zerolog does, a line that cannot be written is dropped
		l.mu.Lock()
		spare = buf
		if cap(spare) > maxPending { // a huge burst once must not stay allocated
			spare = nil
		}
		l.cond.Broadcast()
	}
}

// Close writes the lines pending and stops the writing goroutine.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
	<-l.stopped
	return nil
}
