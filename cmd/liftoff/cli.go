package main

// The client commands: status, history, deploy, rollback, approve, reject,
// pause and resume. Each is one or a few calls to a running daemon's
// management API (/api/v1, server/api.go). They are parsed with kong;
// serve, validate and version keep their flag-based parsing in main.go,
// which dispatches here (see clientCommands).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Defaults of the client commands.
const (
	defaultServer  = "http://127.0.0.1:8080"
	envServer      = "LIFTOFF_SERVER"
	envToken       = "LIFTOFF_TOKEN"
	defaultPoll    = 250 * time.Millisecond
	requestTimeout = 30 * time.Second
)

// clientCommands are the commands main.go hands to clientCmd.
var clientCommands = map[string]bool{
	"status": true, "history": true, "deploy": true, "rollback": true,
	"approve": true, "reject": true, "pause": true, "resume": true,
}

// clientCLI is the kong grammar of the client commands. The flags above
// the commands are accepted by every one of them.
type clientCLI struct {
	Server    string `placeholder:"URL" help:"URL of the liftoff daemon's API (default: $$${envServer}, else ${defaultServer}). https:// is verified against the system's roots."`
	TokenFile string `name:"token-file" placeholder:"FILE" help:"Read the API token from FILE (a trailing newline is dropped). Without it the token is $$${envToken}; the file wins if both are set."`
	JSON      bool   `name:"json" help:"Print the API's JSON answer instead of a table, for scripts."`

	Status   statusCmd   `cmd:"" help:"What every deployment runs: tag, digest, since when, state, last deploy, and whether it is paused, awaits an approval or is down."`
	History  historyCmd  `cmd:"" help:"The newest deploys, of one deployment or of all: when, what, who, how they ended, how long they took."`
	Deploy   deployCmd   `cmd:"" help:"Deploy a tag or a digest to a deployment now (--wait follows it)."`
	Rollback rollbackCmd `cmd:"" help:"Go back to the last version that deployed successfully, or to the one of deploy --to ID (--wait follows it)."`
	Approve  approveCmd  `cmd:"" help:"Approve the push waiting for approval, which then deploys (--wait follows it)."`
	Reject   rejectCmd   `cmd:"" help:"Reject the push waiting for approval: it is dropped."`
	Pause    pauseCmd    `cmd:"" help:"Pause a deployment: pushes are recorded and held, not deployed, until resume."`
	Resume   resumeCmd   `cmd:"" help:"Resume a paused deployment: the newest push held meanwhile deploys now."`
}

// cliSession is what a client command runs with: the parsed global flags
// resolved into an API client, and where to write.
type cliSession struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	api    *apiClient
	json   bool
	poll   time.Duration
	now    func() time.Time
}

// cliOptions are the knobs tests turn; the zero value is the real thing.
type cliOptions struct {
	Poll       time.Duration // --wait's polling interval (default 250ms)
	HTTPClient *http.Client  // default: a client with system roots, no redirects
}

// cliError ends a client command with an exit code and, unless msg is
// empty (the command said it already), a message on stderr.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

// failf: the operation failed (exit 1).
func failf(format string, args ...any) error {
	return &cliError{code: exitFailed, msg: fmt.Sprintf(format, args...)}
}

// usagef: bad flags, arguments or configuration (exit 2).
func usagef(format string, args ...any) error {
	return &cliError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

// kongExit carries kong's exit (after --help) out of Parse as a panic.
type kongExit struct{ code int }

// newClientParser builds the kong parser of the client commands.
func newClientParser(cli *clientCLI, stdout, stderr io.Writer) (*kong.Kong, error) {
	return kong.New(cli,
		kong.Name("liftoff"),
		kong.Description("Client commands of liftoff: they ask a running liftoff daemon through its management API.\n\n"+clientExitCodes),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(kongExit{code}) }),
		kong.Vars{"envServer": envServer, "envToken": envToken, "defaultServer": defaultServer},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 100}),
	)
}

const clientExitCodes = "Exit codes: 0 ok; 1 the operation failed (the daemon refused it or could not be reached, or a deploy followed with --wait did not succeed); 2 usage or config error (bad flags or arguments, no token)."

// clientCmd runs a client command (args without the program name, e.g.
// ["deploy", "web", "v1.2", "--wait"]) and returns its exit code. The
// token and the server come from the flags and lookup (the environment),
// never from the process's own environment.
func clientCmd(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	return runClient(ctx, args, stdout, stderr, lookup, cliOptions{})
}

func runClient(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool), opts cliOptions) (code int) {
	var cli clientCLI
	parser, err := newClientParser(&cli, stdout, stderr)
	if err != nil { // a bug in the grammar
		fmt.Fprintf(stderr, "liftoff: %v\n", err)
		return exitFailed
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = e.code
			if code != exitOK {
				code = exitUsage
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		command := "liftoff"
		var perr *kong.ParseError
		if errors.As(err, &perr) && perr.Context != nil {
			if sel := perr.Context.Selected(); sel != nil {
				command = "liftoff " + sel.Name
			}
		}
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", command, err, command)
		return exitUsage
	}
	command := "liftoff " + kctx.Selected().Name
	// Arguments first: a bad one is said before a missing token.
	if c, ok := kctx.Selected().Target.Addr().Interface().(interface{ check() error }); ok {
		if err := c.check(); err != nil {
			return exitCode(err, stderr, command)
		}
	}
	s, err := cli.session(ctx, stdout, stderr, lookup, opts)
	if err == nil {
		err = kctx.Run(s)
	}
	return exitCode(err, stderr, command)
}

// exitCode reports err on stderr and returns its exit code.
func exitCode(err error, stderr io.Writer, command string) int {
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if !errors.As(err, &ce) {
		fmt.Fprintf(stderr, "%s: %v\n", command, err)
		return exitFailed
	}
	if ce.msg != "" {
		fmt.Fprintf(stderr, "%s: %s\n", command, ce.msg)
	}
	return ce.code
}

// session resolves the global flags: the server's URL and the token.
func (cli *clientCLI) session(ctx context.Context, stdout, stderr io.Writer, lookup func(string) (string, bool), opts cliOptions) (*cliSession, error) {
	server := cli.Server
	if server == "" {
		if v, ok := lookup(envServer); ok && strings.TrimSpace(v) != "" {
			server = strings.TrimSpace(v)
		} else {
			server = defaultServer
		}
	}
	base, err := parseServer(server)
	if err != nil {
		return nil, err
	}
	token, from, err := loadToken(cli.TokenFile, lookup)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirected POST would turn into a GET, and a redirect
			// may carry the token elsewhere: follow none.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = defaultPoll
	}
	return &cliSession{ctx: ctx, stdout: stdout, stderr: stderr, json: cli.JSON, poll: poll, now: time.Now,
		api: &apiClient{base: base, token: token, tokenFrom: from, http: hc}}, nil
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
