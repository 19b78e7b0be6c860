package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ClientResult is one request of "testapp client". testenv.ClientResult
// mirrors it.
type ClientResult struct {
	Seq      int       `json:"seq"`
	Start    time.Time `json:"start"`
	Took     string    `json:"took"`
	Addr     string    `json:"addr,omitempty"` // the address that answered
	Version  string    `json:"version,omitempty"`
	Error    string    `json:"error,omitempty"`
	Finished bool      `json:"finished"`
	// Trace is what happened, each line ending in its time since Start:
	// "dns [ADDRS] ERR", "connect IP:PORT", "connected IP:PORT ERR",
	// "conn LOCAL REMOTE" (the connection used), "wrote ERR" (the request
	// was written), "answer" (the first byte of the answer came).
	Trace []string `json:"trace,omitempty"`
}

func clientMain(port string) int {
	target := os.Getenv("TESTAPP_CLIENT_URL")
	if target == "" {
		fmt.Fprintln(os.Stderr, "testapp client: TESTAPP_CLIENT_URL is not set")
		return 2
	}
	durations := map[string]time.Duration{
		"TESTAPP_CLIENT_INTERVAL": 10 * time.Millisecond,
		"TESTAPP_CLIENT_TIMEOUT":  2 * time.Second,
		"TESTAPP_CLIENT_DURATION": 0,
	}
	for k := range durations {
		if v := os.Getenv(k); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				fmt.Fprintf(os.Stderr, "testapp client: %s=%q: %v\n", k, v, err)
				return 2
			}
			durations[k] = d
		}
	}
	interval, timeout := durations["TESTAPP_CLIENT_INTERVAL"], durations["TESTAPP_CLIENT_TIMEOUT"]

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sending, stopSending := context.WithCancel(ctx)
	defer stopSending()
	if d := durations["TESTAPP_CLIENT_DURATION"]; d > 0 {
		var cancel context.CancelFunc
		sending, cancel = context.WithTimeout(sending, d)
		defer cancel()
	}

	// No keep-alive: every request dials anew, and so resolves the name
	// anew (Go's resolver does not cache).
	hc := &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	var (
		mu      sync.Mutex
		results []ClientResult
		flight  sync.WaitGroup
	)
	one := func(seq int) {
		defer flight.Done()
		r := ClientResult{Seq: seq, Start: time.Now()}
		var (
			addr   string
			tmu    sync.Mutex
			events []string
		)
		event := func(format string, args ...any) {
			tmu.Lock()
			defer tmu.Unlock()
			events = append(events, fmt.Sprintf("%s +%s", fmt.Sprintf(format, args...), time.Since(r.Start).Round(time.Microsecond)))
		}
		trace := &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) {
				addr = i.Conn.RemoteAddr().String()
				event("conn %s %s", i.Conn.LocalAddr(), addr)
			},
			DNSDone:              func(i httptrace.DNSDoneInfo) { event("dns %v %v", i.Addrs, i.Err) },
			ConnectStart:         func(_, a string) { event("connect %s", a) },
			ConnectDone:          func(_, a string, err error) { event("connected %s %v", a, err) },
			WroteRequest:         func(i httptrace.WroteRequestInfo) { event("wrote %v", i.Err) },
			GotFirstResponseByte: func() { event("answer") },
		}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, target, nil)
		if err == nil {
			var resp *http.Response
			if resp, err = hc.Do(req); err == nil {
				var body struct {
					Version string `json:"version"`
				}
				raw, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case rerr != nil:
					err = rerr
				case resp.StatusCode != http.StatusOK:
					err = fmt.Errorf("status %s", resp.Status)
				default:
					if jerr := json.Unmarshal(raw, &body); jerr != nil {
						err = jerr
					}
				}
				r.Version = body.Version
			}
		}
		r.Took = time.Since(r.Start).String()
		r.Addr = addr
		tmu.Lock()
		r.Trace = events
		tmu.Unlock()
		if err != nil {
			r.Error = err.Error()
			r.Version = ""
		}
		r.Finished = true
		mu.Lock()
		results[seq] = r
		mu.Unlock()
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			mu.Lock()
			results = append(results, ClientResult{Seq: seq, Start: time.Now()})
			mu.Unlock()
			flight.Add(1)
			go one(seq)
			select {
			case <-sending.Done():
				return
			case <-tick.C:
			}
		}
	}()
	snapshot := func() []ClientResult {
		mu.Lock()
		defer mu.Unlock()
		return append([]ClientResult(nil), results...)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /results", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(snapshot())
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		stopSending()
		<-sent
		flight.Wait()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(snapshot())
	})
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp client: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(os.Stderr, "testapp client: %v\n", err)
	}
	return 0
}
