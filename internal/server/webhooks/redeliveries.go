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
// a CloudEvents id), so that a delivery sent again is answered without
// deploying twice. An id is remembered only once its delivery was answered
// 202: one that failed may be tried again.
type redeliveries struct {
	mu    sync.Mutex
	seen  map[string]time.Time // source + "\x00" + id → when answered
	order []string             // the keys of seen, oldest first
}

func newRedeliveries() *redeliveries {
	return &redeliveries{seen: map[string]time.Time{}}
}

// seenSince tells whether source's delivery id was answered within the
// window before now.
func (r *redeliveries) seenSince(source, id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.seen[source+"\x00"+id]
	return ok && now.Sub(at) < redeliveryWindow
}

// remember notes that source's delivery id was answered at now, forgetting
// the oldest past maxRemembered or the window.
func (r *redeliveries) remember(source, id string, now time.Time) {
	key := source + "\x00" + id
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[key]; !ok {
		r.order = append(r.order, key)
	}
	r.seen[key] = now
	for len(r.order) > 0 && (len(r.order) > maxRemembered || now.Sub(r.seen[r.order[0]]) >= redeliveryWindow) {
		delete(r.seen, r.order[0])
		r.order = r.order[1:]
	}
}
