// Command ackbare is the yardstick of bench's hook acknowledgement
// benchmark (ack_test.go): a bare net/http server that does the least a
// webhook receiver must, for any POST: read the body (at most 1 MiB),
// parse the DockerHub payload with encoding/json, and answer 202 with a
// small JSON body. No router, no logging, no metrics, no matching.
//
//	ackbare [-listen 127.0.0.1:0]
//
// It prints "listening ADDR" on stdout once it accepts connections, and
// stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// payload is the part of a DockerHub delivery that liftoff reads.
type payload struct {
	PushData struct {
		Tag      string  `json:"tag"`
		Pusher   string  `json:"pusher"`
		PushedAt float64 `json:"pushed_at"`
	} `json:"push_data"`
	Repository struct {
		RepoName  string `json:"repo_name"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"repository"`
}

func hook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil || p.PushData.Tag == "" || p.Repository.RepoName == "" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	// About the size of liftoff's answer to a push that matches nothing.
	fmt.Fprintf(w, `{"delivery":"0000000000000000","accepted":[],"ignored":[{"tag":%q,"reason":"no deployment for %s"}]}`+"\n",
		p.PushData.Tag, p.Repository.RepoName)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.HandlerFunc(hook), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
