package webhooks

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// bodies holds the buffers of bodies read and parsed, for the next
// deliveries: a flood of webhooks is a flood of ~1 KB bodies, and the
// garbage collector's share of its cost follows the bytes allocated.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody bounds the buffers kept in bodies: a rare large body must
// not stay allocated.
const maxPooledBody = 64 << 10

// putBody gives a body readBody returned back for another delivery; b must
// not be used after.
func putBody(b []byte) {
	if cap(b) <= maxPooledBody {
		b = b[:0]
		bodies.Put(&b)
	}
}

// readBody reads at most limit bytes of the body, into a buffer from
// bodies that putBody may give back.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: over %d bytes", httperr.ErrTooLarge, limit)
	}
	size := r.ContentLength
	if size < 0 {
		size = 0
	}
	// Room for the whole body and the read that sees EOF.
	pooled := bodies.Get().(*[]byte)
	b := *pooled
	if int64(cap(b)) < size+bytes.MinRead {
		b = make([]byte, 0, size+bytes.MinRead)
	}
	buf := bytes.NewBuffer(b[:0])
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		// Declared here: errors.As makes it escape, which costs an
		// allocation.
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: over %d bytes", httperr.ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: reading body: %v", httperr.ErrInvalid, err)
	}
	return buf.Bytes(), nil
}
