package webhooks

import (
	"sync"
	"time"
)

// redeliveryWindow is how long a sender's delivery id is remembered, and
// maxRemembered how many are at most: GitHub redelivers by hand or within
// minutes, Harbor's three tries within seconds.
const (
	redeliveryWindow = time.Hour
	maxRemembered    = 4096
)

// redeliveries remembers the delivery ids senders gave (X-GitHub-Delivery,
// a CloudEvents id, a single registry event's id), so that a delivery sent
// again is answered without deploying twice. An id is kept only if its
// delivery was answered 202: one that failed may be tried again.
type redeliveries struct {
	mu    sync.Mutex
	seen  map[string]time.Time // source + "\x00" + id → when answered
	order []string             // the keys of seen, oldest first
}

func newRedeliveries() *redeliveries {
	return &redeliveries{seen: map[string]time.Time{}}
}

// claim tells whether source's delivery id is new, and if so marks it
// taken at now, so that a copy of the delivery arriving while this one is
// answered is a redelivery too (a sender that retries on its own timeout
// while the journal writes). An id answered within the window, or being
// answered, is not new. Whoever claimed an id that was not answered 202
// releases it, so that it may be tried again.
func (r *redeliveries) claim(source, id string, now time.Time) bool {
	key := source + "\x00" + id
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.seen[key]; ok && now.Sub(at) < redeliveryWindow {
		return false
	}
	if _, ok := r.seen[key]; !ok {
		r.order = append(r.order, key)
	}
	r.seen[key] = now
	for len(r.order) > 0 && (len(r.order) > maxRemembered || now.Sub(r.seen[r.order[0]]) >= redeliveryWindow) {
		delete(r.seen, r.order[0])
		r.order = r.order[1:]
	}
	return true
}

// release forgets a claim whose delivery was not answered 202.
func (r *redeliveries) release(source, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, source+"\x00"+id) // its place in order goes when it comes first
}
