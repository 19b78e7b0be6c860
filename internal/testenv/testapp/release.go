package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// release is "testapp release": a release (or backup) command, which the
// image, having no shell, has no other way to run.
func release() int {
	version, _ := os.ReadFile("/version")
	v := strings.TrimSpace(string(version))
	if path := os.Getenv("TESTAPP_MARKER_FILE"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			_, err = fmt.Fprintf(f, "release %s %d\n", v, time.Now().UnixNano())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "testapp release: TESTAPP_MARKER_FILE: %v\n", err)
			return 2
		}
	}
	lines, code := 1, 0
	for k, n := range map[string]*int{"TESTAPP_RELEASE_LINES": &lines, "TESTAPP_RELEASE_EXIT": &code} {
		if s := os.Getenv(k); s != "" {
			var err error
			if *n, err = strconv.Atoi(s); err != nil {
				fmt.Fprintf(os.Stderr, "testapp release: %s=%q: %v\n", k, s, err)
				return 2
			}
		}
	}
	var sleep time.Duration
	if s := os.Getenv("TESTAPP_RELEASE_SLEEP"); s != "" {
		var err error
		if sleep, err = time.ParseDuration(s); err != nil {
			fmt.Fprintf(os.Stderr, "testapp release: TESTAPP_RELEASE_SLEEP=%q: %v\n", s, err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	for i := range lines {
		if i%2 == 0 {
			fmt.Fprintf(os.Stdout, "release %s line %d stdout\n", v, i)
		} else {
			fmt.Fprintf(os.Stderr, "release %s line %d stderr\n", v, i)
		}
	}
	if names := os.Getenv("TESTAPP_PRINT_VAR"); names != "" {
		for _, name := range strings.Split(names, ",") {
			if v, ok := os.LookupEnv(name); ok {
				fmt.Printf("%s=%s\n", name, v)
			} else {
				fmt.Printf("%s unset\n", name)
			}
		}
	}
	if sleep > 0 {
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "testapp release: signalled, exiting")
			return 143 // as a shell reports a SIGTERM
		}
	}
	return code
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
