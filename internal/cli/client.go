package cli

// The client side of the management API: requests, the answers it
// decodes (apiv1's types, which internal/server writes), and what each
// error means to a user.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// maxAnswer bounds what the client reads of an answer.
const maxAnswer = 16 << 20

// apiClient calls the API of one daemon with one token.
type apiClient struct {
	base      *url.URL
	token     string
	tokenFrom string // where the token came from, for messages
	http      *http.Client
	version   string // liftoff's, in the User-Agent
	// strict refuses an answer with a field apiv1's type lacks: tests
	// use it to prove the CLI decodes all the server writes.
	strict bool
}

// apiStatusError is an answer other than 2xx, with the server's reason
// (the "error" of its JSON body).
type apiStatusError struct {
	status int
	reason string
}

func (e *apiStatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.reason)
}

// unreachableError: no answer (connection refused, DNS, TLS, timeout).
type unreachableError struct {
	server string
	err    error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the liftoff daemon at %s: %v", e.server, e.err)
}

// answer is an answer of the API: its status and body.
type answer struct {
	status int
	body   []byte
}

// call sends one request to path (under /api/v1) and returns the 2xx
// answer, an *apiStatusError or an *unreachableError.
func (c *apiClient) call(ctx context.Context, method, path string, query url.Values, body any) (answer, error) {
	u := *c.base
	u.Path = c.base.Path + "/api/v1" + path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "liftoff-cli/"+c.version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, &unreachableError{server: c.server(), err: cause(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return answer{}, &unreachableError{server: c.server(), err: fmt.Errorf("reading the answer: %w", cause(err))}
	}
	a := answer{status: resp.StatusCode, body: b}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return a, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return a, &apiStatusError{status: resp.StatusCode,
			reason: fmt.Sprintf("redirected to %s: give that URL as --server", trimText(resp.Header.Get("Location"), 200))}
	}
	var e apiv1.Error
	if c.unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = trimText(strings.TrimSpace(string(b)), 200)
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
	}
	return a, &apiStatusError{status: resp.StatusCode, reason: e.Error}
}

// get calls GET path and decodes the answer into v (if not nil).
func (c *apiClient) get(ctx context.Context, path string, query url.Values, v any) (answer, error) {
	a, err := c.call(ctx, http.MethodGet, path, query, nil)
	if err == nil && v != nil {
		err = c.decode(a, v)
	}
	return a, err
}

// post calls POST path with body and decodes the answer into v.
func (c *apiClient) post(ctx context.Context, path string, body, v any) (answer, error) {
	a, err := c.call(ctx, http.MethodPost, path, nil, body)
	if err == nil && v != nil {
		err = c.decode(a, v)
	}
	return a, err
}

// unmarshal decodes JSON into v, an apiv1 type.
func (c *apiClient) unmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if c.strict {
		dec.DisallowUnknownFields()
	}
	return dec.Decode(v)
}

// decode decodes an answer into v, an apiv1 type.
func (c *apiClient) decode(a answer, v any) error {
	if err := c.unmarshal(a.body, v); err != nil {
		return failf("the server's answer is not the JSON liftoff's API answers (is --server a liftoff daemon?): %v", err)
	}
	return nil
}

// server is the daemon's URL as the user gave it, for messages.
func (c *apiClient) server() string {
	return c.base.String()
}

// cause strips net/http's "Get URL:" wrapping: the method and URL say
// nothing the message does not say already.
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("%w (is liftoff serve running there? set --server or $%s)", oe, envServer)
	}
	return err
}

// explain turns an API error into what the user reads and the exit code.
// A 404 on a route naming a deployment is that deployment's absence; on
// any other, the API's.
func (s *session) explain(err error) error {
	var (
		se *apiStatusError
		ue *unreachableError
	)
	switch {
	case errors.As(err, &ue):
		return failf("%v", ue)
	case !errors.As(err, &se):
		return err
	}
	switch se.status {
	case http.StatusUnauthorized:
		return failf("the daemon does not know this token (401): %s is none of its api_tokens", s.api.tokenFrom)
	case http.StatusForbidden:
		return failf("refused (403): %s", se.reason)
	case http.StatusNotFound:
		if se.reason == "not found" { // the body of every unknown path
			return failf("%s has no management API (404): the daemon's config needs api_tokens, and with api_listen the API is served only there", s.api.server())
		}
		return failf("%s (404)", se.reason)
	case http.StatusConflict:
		return failf("%s (409)", se.reason)
	case http.StatusServiceUnavailable:
		return failf("the daemon cannot do it now (503): %s; try again later", se.reason)
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return failf("the daemon refused the request (%d): %s", se.status, se.reason)
	}
	return failf("the daemon answered %d %s: %s", se.status, http.StatusText(se.status), se.reason)
}

// explainFor is explain for a route naming deployment: its 404 is that
// the deployment does not exist (the daemon does not echo the name).
func (s *session) explainFor(err error, deployment string) error {
	var se *apiStatusError
	if errors.As(err, &se) && se.status == http.StatusNotFound && se.reason != "not found" {
		return failf("no such deployment %q (404): liftoff status lists them", deployment)
	}
	return s.explain(err)
}

// transient tells whether waiting may go on after err: the daemon did not
// answer (restarting) or answered 5xx.
func transient(err error) bool {
	var (
		se *apiStatusError
		ue *unreachableError
	)
	return errors.As(err, &ue) || errors.As(err, &se) && se.status >= 500
}

// forbidden tells whether err is the API's 403: the token lacks a scope.
func forbidden(err error) bool {
	var se *apiStatusError
	return errors.As(err, &se) && se.status == http.StatusForbidden
}

// trimText keeps a text short and on one line.
func trimText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func deploymentPath(name, action string) string {
	p := "/deployments/" + url.PathEscape(name)
	if action != "" {
		p += "/" + action
	}
	return p
}
