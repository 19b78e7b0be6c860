package accesslog

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestAccessWriter: the access line tells the status and size answered;
// an informational status is passed on but is not the status, and a second
// WriteHeader is dropped.
func TestAccessWriter(t *testing.T) {
	under := &codesWriter{h: http.Header{}}
	aw := &accessWriter{ResponseWriter: under}
	aw.WriteHeader(http.StatusEarlyHints)
	if aw.Status() != 0 {
		t.Errorf("status %d after 103", aw.Status())
	}
	aw.Write([]byte("hello"))
	aw.WriteHeader(http.StatusTeapot)
	aw.Write([]byte(" world"))
	if aw.Status() != http.StatusOK || aw.bytes != 11 || !reflect.DeepEqual(under.codes, []int{103, 200}) {
		t.Errorf("status %d, %d bytes; WriteHeader underneath: %v", aw.Status(), aw.bytes, under.codes)
	}

	rec := httptest.NewRecorder()
	aw = &accessWriter{ResponseWriter: rec}
	if err := http.NewResponseController(aw).Flush(); err != nil || !rec.Flushed || aw.Status() != http.StatusOK {
		t.Errorf("Flush: %v, flushed %v, status %d", err, rec.Flushed, aw.Status())
	}
	if !MarkLogged(struct{ http.ResponseWriter }{rec}).IsZero() {
		t.Error("MarkLogged found a start without Requests")
	}
	if MarkLogged(aw); !aw.logged {
		t.Error("MarkLogged did not mark")
	}
}

// codesWriter is a ResponseWriter that notes the codes it is given.
type codesWriter struct {
	h     http.Header
	codes []int
}

func (w *codesWriter) Header() http.Header         { return w.h }
func (w *codesWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *codesWriter) WriteHeader(code int)        { w.codes = append(w.codes, code) }
