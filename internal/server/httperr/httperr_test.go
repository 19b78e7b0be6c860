package httperr

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// TestStatus: every failure the webhooks, the API and the page know has
// its one status, wrapped or not; anything else is a 500.
func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{ErrNotFound, http.StatusNotFound},
		{control.ErrNoDeployment, http.StatusNotFound},
		{ErrInvalid, http.StatusBadRequest},
		{ErrBadRequest, http.StatusBadRequest},
		{ErrUnauthorized, http.StatusUnauthorized},
		{control.ErrForbidden, http.StatusForbidden},
		{control.ErrConflict, http.StatusConflict},
		{ErrTooLarge, http.StatusRequestEntityTooLarge},
		{ErrRateLimited, http.StatusTooManyRequests},
		{ErrUnavailable, http.StatusServiceUnavailable},
		{control.ErrDraining, http.StatusServiceUnavailable},
		{control.ErrNotRecorded, http.StatusServiceUnavailable},
		{deploy.ErrClosed, http.StatusServiceUnavailable},
		{errors.New("disk full"), http.StatusInternalServerError},
	} {
		if got := Status(fmt.Errorf("context: %w", tt.err)); got != tt.want {
			t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, http.StatusServiceUnavailable, "shutting down", "d1")
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || w.Body.String() != `{"error":"shutting down","delivery":"d1"}`+"\n" {
		t.Errorf("503: %d %q %q", w.Code, w.Header(), w.Body)
	}
	w = httptest.NewRecorder()
	Write(w, http.StatusUnauthorized, "no", "")
	if w.Header().Get("WWW-Authenticate") == "" || strings.Contains(w.Body.String(), "delivery") {
		t.Errorf("401: %q %q", w.Header(), w.Body)
	}
	if r := Reason(errors.New(strings.Repeat("x", 1000)), 400); len(r) != MaxReason+3 {
		t.Errorf("a long reason is %d bytes", len(r))
	}
	if r := Reason(errors.New("secret detail"), 500); r != "internal error" {
		t.Errorf("a 500's reason is %q", r)
	}
}
