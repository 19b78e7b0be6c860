package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// TestDecode: a body is at most maxBody bytes (413), one JSON value with
// no unknown field (400); an empty one is {}.
func TestDecode(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       error // nil: decoded
	}{
		{"empty", "", nil},
		{"blank", " \n", nil},
		{"tag", `{"tag": "v1"}`, nil},
		{"unknown field", `{"tag": "v1", "force": true}`, httperr.ErrBadRequest},
		{"two values", `{} {}`, httperr.ErrBadRequest},
		{"not JSON", `tag=v1`, httperr.ErrBadRequest},
		{"too large", `{"tag": "` + strings.Repeat("x", maxBody) + `"}`, httperr.ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			var body apiv1.DeployRequest
			err := decode(httptest.NewRecorder(), r, &body)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("decode: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPage: limit and before are positive integers when given; limit is
// at most 1000.
func TestPage(t *testing.T) {
	for _, tt := range []struct {
		query  string
		limit  int
		before int64
		bad    bool
	}{
		{"", 0, 0, false},
		{"limit=5&before=42", 5, 42, false},
		{"limit=100000", 1000, 0, false},
		{"limit=0", 0, 0, true},
		{"before=-1", 0, 0, true},
		{"limit=ten", 0, 0, true},
	} {
		q, _ := url.ParseQuery(tt.query)
		limit, before, err := page(q)
		if tt.bad {
			if !errors.Is(err, httperr.ErrBadRequest) {
				t.Errorf("%q: %v, want a bad request", tt.query, err)
			}
			continue
		}
		if err != nil || limit != tt.limit || before != tt.before {
			t.Errorf("%q: %d %d %v, want %d %d", tt.query, limit, before, err, tt.limit, tt.before)
		}
	}
	if cursor(0) != nil || *cursor(7) != "7" {
		t.Error("cursor: want null for none, the id as a string else")
	}
}
