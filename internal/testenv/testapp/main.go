// Command testapp is the tiny web app that testenv bakes into test images.
// It uses only the standard library so that it builds into a static binary
// that runs in an image with nothing else in it.
//
// It is driven by its environment:
//
//	PORT                 listen on :PORT (default 8000)
//	TESTAPP_HEALTH=fail  GET /healthz answers 500 instead of 200
//	TESTAPP_HEALTH=hang  GET /healthz does not answer (a health check that times out)
//	TESTAPP_EXIT=N       exit at once with code N
//	TESTAPP_EXIT_ARG=A   exit at once with code 1 when the first argument is A (a
//	                     process of an app, run as ["worker"], that fails in one image)
//	TESTAPP_EXIT_AFTER=D exit after duration D with code TESTAPP_EXIT_CODE (default 1)
//	TESTAPP_START_DELAY=D wait D before listening (a slow start)
//	TESTAPP_IGNORE_TERM=1 ignore SIGTERM (a stop waits its whole grace period, then kills)
//	TESTAPP_MARKER_FILE=F read file F before listening (see GET /); "testapp release" appends to it
//	TESTAPP_FAIL_PERCENT=N GET / answers 500 to N percent of its requests, evenly spread
//	                     (with 5: the 20th, 40th, ...), for canaries to be judged on
//
// GET / answers {"version": <contents of /version>, "env": {...}, "hostname": ...},
// and, with TESTAPP_MARKER_FILE, "marker_at_start": what F held when the app
// started ("" if there was no F).
// GET /stream?n=N&every=D answers N lines, one every D, each sent at once:
// a request that stays in flight for a while.
// SIGTERM and SIGINT make it exit 0 promptly, so that stopping a container
// does not wait for the whole grace period.
//
// "testapp healthcheck" exits 0 iff GET http://127.0.0.1:$PORT/healthz
// answers 200; images use it as a Docker HEALTHCHECK without a shell.
//
// "testapp release" is a release command (migrations, say), and stands in
// for a backup command too, as the image has no shell. Images have /app as
// their ENTRYPOINT, so a container's Cmd ["release"] runs it (see
// testenv.ReleaseCmd). In that order it:
//
//	appends "release <version> <unix nanoseconds>\n" to TESTAPP_MARKER_FILE, if set
//	prints TESTAPP_RELEASE_LINES lines (default 1), "release <version> line <i> stdout"
//	  or "... stderr", to stdout and stderr in turn, starting with stdout
//	prints "NAME=<its value>", or "NAME unset", to stdout for each NAME of
//	  TESTAPP_PRINT_VAR=NAME[,NAME...] (a secret to redact, say)
//	sleeps TESTAPP_RELEASE_SLEEP, if set (a hang: SIGTERM ends it, exit code 143)
//	exits with TESTAPP_RELEASE_EXIT (default 0)
//
// "testapp client" is a load client for zero-downtime tests instead: it
// GETs TESTAPP_CLIENT_URL every TESTAPP_CLIENT_INTERVAL (default 10ms), each
// time on a new connection to a freshly resolved address, with a timeout of
// TESTAPP_CLIENT_TIMEOUT (default 2s), for TESTAPP_CLIENT_DURATION (default:
// until told to stop). On :PORT it serves what it recorded, one result per
// request in the order they were sent: GET /results while it runs, POST
// /stop to stop sending, wait for the requests in flight and get them all.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8000"
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(port)
	}
	if len(args) > 0 && args[0] == "client" {
		return clientMain(port)
	}
	if len(args) > 0 && args[0] == "release" {
		return release()
	}
	if a := os.Getenv("TESTAPP_EXIT_ARG"); a != "" && len(args) > 0 && args[0] == a {
		fmt.Fprintf(os.Stderr, "testapp: exiting with 1 as %s, as told\n", a)
		return 1
	}
	if v, ok := os.LookupEnv("TESTAPP_EXIT"); ok {
		code, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testapp: TESTAPP_EXIT=%q: %v\n", v, err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "testapp: exiting with %d as told\n", code)
		return code
	}

	stopSignals := []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	if os.Getenv("TESTAPP_IGNORE_TERM") == "1" {
		// As PID 1 an unhandled SIGTERM would be dropped by the kernel
		// anyway, but Go's runtime handles it unless told to ignore it.
		signal.Ignore(syscall.SIGTERM)
		stopSignals = stopSignals[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()

	exitCode := 0
	if v := os.Getenv("TESTAPP_EXIT_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testapp: TESTAPP_EXIT_AFTER=%q: %v\n", v, err)
			return 2
		}
		exitCode = 1
		if c := os.Getenv("TESTAPP_EXIT_CODE"); c != "" {
			if exitCode, err = strconv.Atoi(c); err != nil {
				fmt.Fprintf(os.Stderr, "testapp: TESTAPP_EXIT_CODE=%q: %v\n", c, err)
				return 2
			}
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if v := os.Getenv("TESTAPP_START_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testapp: TESTAPP_START_DELAY=%q: %v\n", v, err)
			return 2
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return finish(ctx, exitCode)
		}
	}

	version, _ := os.ReadFile("/version")
	hostname, _ := os.Hostname()
	// The marker file is read before listening, so that the answer says
	// what a release command wrote before this container started.
	markerFile := os.Getenv("TESTAPP_MARKER_FILE")
	var markerAtStart []byte
	if markerFile != "" {
		var err error
		if markerAtStart, err = os.ReadFile(markerFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "testapp: TESTAPP_MARKER_FILE: %v\n", err)
			return 2
		}
	}
	failPercent, _ := strconv.ParseInt(os.Getenv("TESTAPP_FAIL_PERCENT"), 10, 64)
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if n := served.Add(1); n*failPercent/100 != (n-1)*failPercent/100 {
			http.Error(w, "failing, as told", http.StatusInternalServerError)
			return
		}
		env := make(map[string]string)
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		answer := map[string]any{
			"version":  strings.TrimSpace(string(version)),
			"env":      env,
			"hostname": hostname,
		}
		if markerFile != "" {
			answer["marker_at_start"] = string(markerAtStart)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		every, _ := time.ParseDuration(r.URL.Query().Get("every"))
		f, _ := w.(http.Flusher)
		for i := range n {
			if i > 0 {
				time.Sleep(every)
			}
			fmt.Fprintln(w, i)
			if f != nil {
				f.Flush()
			}
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		switch os.Getenv("TESTAPP_HEALTH") {
		case "fail":
			http.Error(w, "unhealthy, as told", http.StatusInternalServerError)
			return
		case "hang":
			<-r.Context().Done() // until the prober gives up
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return finish(ctx, exitCode)
}

// finish picks the exit code once ctx is done: 0 for a signal, exitCode for
// TESTAPP_EXIT_AFTER.
func finish(ctx context.Context, exitCode int) int {
	if ctx.Err() == context.DeadlineExceeded {
		fmt.Fprintf(os.Stderr, "testapp: exiting with %d after TESTAPP_EXIT_AFTER\n", exitCode)
		return exitCode
	}
	fmt.Fprintln(os.Stderr, "testapp: signalled, exiting")
	return 0
}
