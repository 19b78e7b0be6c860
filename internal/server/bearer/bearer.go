// Package bearer reads an API token from a request's Authorization
// header: the one rule the management API and the status page share.
package bearer

import (
	"net/http"
	"strings"
)

// Token returns the token of an "Authorization: Bearer <token>" header.
// The scheme's case does not matter (RFC 9110 §11.1: "bearer" and
// "BEARER" are Bearer); spaces around the token are dropped. ok is false
// without the header, with another scheme (Basic, from a proxy that
// guards the page), or with the scheme and no token.
func Token(r *http.Request) (token string, ok bool) {
	scheme, rest, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(rest)
	return token, token != ""
}
