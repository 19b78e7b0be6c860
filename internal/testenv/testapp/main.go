// Command testapp is the tiny web app that testenv bakes into test images.
// It uses only the standard library so that it builds into a static binary
// that runs in an image with nothing else in it.
//
// It is driven by its environment:
//
//	PORT                 listen on :PORT (default 8000)
//	TESTAPP_HEALTH=fail  GET /healthz answers 500 instead of 200
//	TESTAPP_EXIT=N       exit at once with code N
//	TESTAPP_EXIT_AFTER=D exit after duration D with code TESTAPP_EXIT_CODE (default 1)
//	TESTAPP_START_DELAY=D wait D before listening (a slow start)
//
// GET / answers {"version": <contents of /version>, "env": {...}, "hostname": ...}.
// SIGTERM and SIGINT make it exit 0 promptly, so that stopping a container
// does not wait for the whole grace period.
//
// "testapp healthcheck" exits 0 iff GET http://127.0.0.1:$PORT/healthz
// answers 200; images use it as a Docker HEALTHCHECK without a shell.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
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
	if v, ok := os.LookupEnv("TESTAPP_EXIT"); ok {
		code, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testapp: TESTAPP_EXIT=%q: %v\n", v, err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "testapp: exiting with %d as told\n", code)
		return code
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		env := make(map[string]string)
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"version":  strings.TrimSpace(string(version)),
			"env":      env,
			"hostname": hostname,
		})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("TESTAPP_HEALTH") == "fail" {
			http.Error(w, "unhealthy, as told", http.StatusInternalServerError)
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

func healthcheck(port string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}
