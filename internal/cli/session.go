package cli

// What a client command runs with: --server or $LIFTOFF_SERVER, the token
// from $LIFTOFF_TOKEN or --token-file, an HTTP client that follows no
// redirect.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of the client commands.
const (
	defaultServer  = "http://127.0.0.1:8080"
	envServer      = "LIFTOFF_SERVER"
	envToken       = "LIFTOFF_TOKEN"
	defaultPoll    = 250 * time.Millisecond
	requestTimeout = 30 * time.Second
)

// ClientFlags are the flags every client command accepts, before or after
// its name.
type ClientFlags struct {
	Server    string `placeholder:"URL" help:"URL of the liftoff daemon's API (default: $$${envServer}, else ${defaultServer}). https:// is verified against the system's roots."`
	TokenFile string `name:"token-file" placeholder:"FILE" help:"Read the API token from FILE (a trailing newline is dropped). Without it the token is $$${envToken}; the file wins if both are set."`
	JSON      bool   `name:"json" help:"Print the API's JSON answer instead of a table, for scripts."`
}

// clientFlagNames are the names of ClientFlags' flags, which serve,
// validate and version refuse and do not show in their help.
var clientFlagNames = map[string]bool{"server": true, "token-file": true, "json": true}

// session is what a client command runs with: the parsed global flags
// resolved into an API client, and where to write.
type session struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	api    *apiClient
	json   bool
	poll   time.Duration
	now    func() time.Time
}

// newSession resolves the client flags: the server's URL and the token.
func newSession(ctx context.Context, f ClientFlags, env Env) (*session, error) {
	server := f.Server
	if server == "" {
		if v, ok := env.Lookup(envServer); ok && strings.TrimSpace(v) != "" {
			server = strings.TrimSpace(v)
		} else {
			server = defaultServer
		}
	}
	base, err := parseServer(server)
	if err != nil {
		return nil, err
	}
	token, from, err := loadToken(f.TokenFile, env.Lookup)
	if err != nil {
		return nil, err
	}
	hc := env.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirected POST would turn into a GET, and a redirect
			// may carry the token elsewhere: follow none.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	poll := env.Poll
	if poll <= 0 {
		poll = defaultPoll
	}
	return &session{ctx: ctx, stdout: env.Stdout, stderr: env.Stderr, json: f.JSON, poll: poll, now: time.Now,
		api: &apiClient{base: base, token: token, tokenFrom: from, http: hc, version: env.Version, strict: env.Strict}}, nil
}

// parseServer checks --server: an http or https URL with a host, and
// maybe a path prefix (a proxy in front).
func parseServer(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, usagef("--server %q is not a URL: %v", s, errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, usagef("--server %q: want an http:// or https:// URL, e.g. %s", s, defaultServer)
	case u.Host == "":
		return nil, usagef("--server %q has no host", s)
	case u.User != nil:
		return nil, usagef("--server: put no user or password in the URL; the API takes a token (%s or --token-file)", envToken)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, usagef("--server %q: want no query or fragment", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// loadToken returns the API token, from --token-file if given, else from
// $LIFTOFF_TOKEN, and says where it came from (for messages: never the
// token itself).
func loadToken(file string, lookup func(string) (string, bool)) (token, from string, err error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is said once, below
			}
			return "", "", usagef("--token-file %s: %v", file, err)
		}
		token, from = strings.TrimRight(string(b), "\r\n"), "the token in "+file
		if token == "" {
			return "", "", usagef("--token-file %s is empty", file)
		}
	} else {
		v, _ := lookup(envToken)
		token, from = strings.TrimRight(v, "\r\n"), "the token in $"+envToken
		if token == "" {
			return "", "", usagef("no API token: set %s or give --token-file FILE (a token of the daemon's api_tokens)", envToken)
		}
	}
	for _, r := range token {
		if r < 0x20 || r == 0x7f {
			return "", "", usagef("%s has a control character (a token is printable text)", from)
		}
	}
	return token, from, nil
}
