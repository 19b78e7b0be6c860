package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// Errors of a delivery; classify maps each to its status and outcome.
var (
	errNotFound    = errors.New("not found") // unknown source or token
	errInvalid     = errors.New("invalid delivery")
	errTooLarge    = errors.New("body too large")
	errUnavailable = errors.New("unavailable")
	errRateLimited = errors.New("too many requests")
)

// notFoundBody is the whole answer to an unknown path, source or token, so
// that a caller cannot tell them apart.
const notFoundBody = `{"error":"not found"}` + "\n"

// maxReason bounds the reason echoed to the sender and logged: a reason may
// quote the payload.
const maxReason = 256

// classify maps a delivery error to its HTTP status and the outcome label
// of liftoff_webhooks_total. It is the one place where that is decided.
func classify(err error) (status int, outcome string) {
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, outcomeUnauthorized
	case errors.Is(err, errInvalid):
		return http.StatusBadRequest, outcomeInvalid
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, outcomeTooLarge
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable, outcomeUnavailable
	case errors.Is(err, errRateLimited):
		return http.StatusTooManyRequests, outcomeRateLimited
	default:
		return http.StatusInternalServerError, outcomeError
	}
}

// reason is the text of err fit to show: bounded, and generic for errors
// that were not classified.
func reason(err error, status int) string {
	if status == http.StatusInternalServerError {
		return "internal error"
	}
	msg := err.Error()
	if len(msg) > maxReason {
		msg = msg[:maxReason] + "..."
	}
	return msg
}

// writeError answers err with its status and {"error": reason, "delivery": id}.
func writeError(w http.ResponseWriter, err error, delivery string) {
	status, _ := classify(err)
	switch status {
	case http.StatusNotFound:
		notFound(w, nil)
		return
	case http.StatusServiceUnavailable:
		// Senders that retry should come back once the restart is over.
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
	}
	writeJSON(w, status, apiv1.Error{Error: reason(err, status), Delivery: delivery})
}

const retryAfterUnavailable = 10 // seconds

// notFound answers unknown paths, sources and tokens alike.
func notFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(notFoundBody))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are written: a bug
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
