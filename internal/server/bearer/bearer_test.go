package bearer

import (
	"net/http/httptest"
	"testing"
)

// TestToken: one rule for the API and the page: the scheme in any case,
// the token trimmed; anything else is no token.
func TestToken(t *testing.T) {
	for _, tt := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"Bearer   abc  ", "abc", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearerabc", "", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		token, ok := Token(r)
		if token != tt.token || ok != tt.ok {
			t.Errorf("%q: %q %v, want %q %v", tt.header, token, ok, tt.token, tt.ok)
		}
	}
}
