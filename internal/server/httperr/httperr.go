// Package httperr is the one place where liftoff's HTTP side maps an error
// to a status: the webhooks, the management API and the status page all
// answer through Status, so that the same failure is the same status
// wherever it happens. It also writes the JSON bodies they share.
package httperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/payload"
)

// Failures of a request itself, before the application is asked anything.
// What the application refuses comes from control and deploy, mapped here
// too.
var (
	ErrNotFound     = errors.New("not found") // unknown source or token
	ErrInvalid      = errors.New("invalid delivery")
	ErrBadRequest   = errors.New("bad request")
	ErrTooLarge     = errors.New("body too large")
	ErrUnavailable  = errors.New("unavailable")
	ErrRateLimited  = errors.New("too many requests")
	ErrUnauthorized = errors.New("unauthorized: send Authorization: Bearer <an API token of the config>")
	// ErrSenderAuth is a webhook whose token is right but whose signature
	// or Authorization header is not the hook's.
	ErrSenderAuth = errors.New("unauthorized")
)

// RetryAfter is the Retry-After of a 503, in seconds: senders that retry
// should come back once a restart is over.
const RetryAfter = 10

// MaxReason bounds the reason echoed to a webhook's sender and logged: a
// reason may quote the payload.
const MaxReason = 256

// Status is the HTTP status of err; 500 for an error none of these is.
func Status(err error) int {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, control.ErrNoDeployment):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrBadRequest), errors.Is(err, payload.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrSenderAuth):
		return http.StatusUnauthorized
	case errors.Is(err, control.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, control.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrUnavailable), errors.Is(err, control.ErrUnavailable), errors.Is(err, deploy.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Reason is the text of err fit to show a webhook's sender: bounded, and
// generic for an internal error; a 400's is Excerpt'ed.
func Reason(err error, status int) string {
	if status == http.StatusInternalServerError {
		return "internal error"
	}
	msg := err.Error()
	if status == http.StatusBadRequest {
		msg = Excerpt(msg)
	}
	if len(msg) > MaxReason {
		msg = msg[:MaxReason] + "..."
	}
	return msg
}

// quoted matches a Go-quoted string in a message: where a 400 quotes what
// the client sent.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// tokenLike matches a word of 16 or more letters and digits: a token or a
// key, or a part of one.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9]{16,}`)

// maxQuoted is how much of a value a client sent a 400 may quote.
const maxQuoted = 20

// Excerpt keeps what a client sent short and safe in the text of a 4xx
// answer (and its log line), in case it is a secret pasted into the wrong
// field: a quoted value longer than 20 bytes keeps its first 6 and says
// how long it was, and any word of 16 or more letters and digits that
// mixes both (a token, a key) becomes "xxxxx".
func Excerpt(msg string) string {
	msg = quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if len(q)-2 <= maxQuoted {
			return q
		}
		inner := q[1 : len(q)-1]
		cut := 6
		for cut > 0 && !utf8.RuneStart(inner[cut]) {
			cut--
		}
		return fmt.Sprintf(`"%s…" (%d bytes)`, inner[:cut], len(inner))
	})
	return tokenLike.ReplaceAllStringFunc(msg, func(w string) string {
		if strings.ContainsAny(w, "0123456789") && strings.IndexFunc(w, unicode.IsLetter) >= 0 {
			return "xxxxx"
		}
		return w
	})
}

// Write answers status with {"error": msg, "delivery": delivery}, and the
// headers the status calls for: WWW-Authenticate on a 401, Retry-After on a
// 503.
func Write(w http.ResponseWriter, status int, msg, delivery string) {
	if status == http.StatusBadRequest {
		msg = Excerpt(msg)
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="liftoff"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	}
	JSON(w, status, apiv1.Error{Error: msg, Delivery: delivery})
}

// NotFoundBody is the whole answer to an unknown path, source or token, so
// that a caller cannot tell them apart.
const NotFoundBody = `{"error":"not found"}` + "\n"

// NotFound answers unknown paths, hook sources and tokens alike.
func NotFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(NotFoundBody))
}

// JSON answers status with v in JSON.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are written: a bug
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Text answers status with msg in plain text.
func Text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
