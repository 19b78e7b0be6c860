package testenv

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Event is one container or network event of the engine, as the engine
// timed it.
type Event struct {
	Time   time.Time
	Type   string // "container" or "network"
	Action string // "kill", "die", "connect", "disconnect", "rename", ...
	ID     string // the container's id; for a network event, the network's
	// Name is the container's name (for a rename, the new one) or the
	// network's.
	Name string
	// Container is, for a network event, the container that was connected
	// or disconnected.
	Container string
	// Signal is, for a kill, the signal sent.
	Signal string
}

func (ev Event) String() string {
	s := fmt.Sprintf("%s %s %s", ev.Type, ev.Action, ev.Name)
	if ev.Container != "" {
		s += " container " + short(ev.Container)
	} else {
		s += " " + short(ev.ID)
	}
	if ev.Signal != "" {
		s += " signal " + ev.Signal
	}
	return s
}

func short(id string) string { return id[:min(12, len(id))] }

// Events records the engine's container and network events from the
// moment WatchEvents returns until Stop or the end of the test.
type Events struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	list []Event
	err  error
}

// WatchEvents starts recording the engine's container and network events.
// Every event from its call on is recorded, even one the stream had not
// yet delivered when WatchEvents returned: the stream starts a second
// earlier and drops what came before.
func (e *Eng) WatchEvents(t testing.TB) *Events {
	t.Helper()
	from := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	f := client.Filters{}
	f.Add("type", string(events.ContainerEventType))
	f.Add("type", string(events.NetworkEventType))
	res := e.cli.Events(ctx, client.EventsListOptions{
		Since:   strconv.FormatInt(from.Add(-time.Second).Unix(), 10),
		Filters: f,
	})
	w := &Events{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case m := <-res.Messages:
				ev := Event{
					Time: time.Unix(0, m.TimeNano), Type: string(m.Type), Action: string(m.Action),
					ID: m.Actor.ID, Name: m.Actor.Attributes["name"],
					Container: m.Actor.Attributes["container"], Signal: m.Actor.Attributes["signal"],
				}
				if ev.Time.Before(from) {
					continue
				}
				w.mu.Lock()
				w.list = append(w.list, ev)
				w.mu.Unlock()
			case err := <-res.Err:
				if ctx.Err() == nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
				}
				return
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *Events) stop() {
	w.cancel()
	<-w.done
}

// Stop waits until the engine has had a moment to deliver the events up to
// now, stops recording and returns them in the engine's order. An event
// stream that broke is a test error.
func (w *Events) Stop(t testing.TB) []Event {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Errorf("testenv: events: %v", w.err)
	}
	return append([]Event(nil), w.list...)
}
