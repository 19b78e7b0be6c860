package bench

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// event is one answer (or failure) seen by a pollclient.
type event struct {
	at      time.Time
	ok      bool
	version string // ok
	reason  string // !ok
	took    time.Duration
}

// start is when the request was sent.
func (e event) start() time.Time { return e.at.Add(-e.took) }

// recorder collects a pollclient's events as they come.
type recorder struct {
	mu     sync.Mutex
	events []event
	exited chan struct{}
	stderr testenv.SyncBuffer
}

// startPoller runs cmd, a pollclient on the host or "docker run" of one,
// and records what it prints. It is stopped with SIGTERM when the
// benchmark ends.
func startPoller(tb testing.TB, cmd *exec.Cmd) *recorder {
	tb.Helper()
	r := &recorder{exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = &r.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", cmd, err)
	}
	go func() {
		defer close(r.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ev, ok := parseEvent(sc.Text()); ok {
				r.mu.Lock()
				r.events = append(r.events, ev)
				r.mu.Unlock()
			}
		}
		cmd.Wait()
	}()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-r.exited
		}
	})
	return r
}

func parseEvent(line string) (event, bool) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return event{}, false
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return event{}, false
	}
	us, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return event{}, false
	}
	ev := event{at: time.Unix(0, ns), took: time.Duration(us) * time.Microsecond}
	switch f[1] {
	case "ok":
		ev.ok, ev.version = true, f[2]
	case "err":
		ev.reason = f[2]
	default:
		return event{}, false
	}
	return ev, true
}

// waitServing waits for the first answer with version that came after
// since, and returns when it came.
func (r *recorder) waitServing(tb testing.TB, since time.Time, version string, timeout time.Duration) time.Time {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		r.mu.Lock()
		evs := r.events[seen:]
		for _, ev := range evs {
			if ev.ok && ev.version == version && ev.at.After(since) {
				r.mu.Unlock()
				return ev.at
			}
		}
		seen = len(r.events)
		r.mu.Unlock()
		select {
		case <-r.exited:
			tb.Fatalf("the poll client exited: %s", r.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("version %s not served within %s; last answers: %v", version, timeout, r.last(5))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *recorder) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, ev := range r.events[max(0, len(r.events)-n):] {
		if ev.ok {
			s = append(s, ev.at.Format("15:04:05.000")+" ok "+ev.version)
		} else {
			s = append(s, ev.at.Format("15:04:05.000")+" err "+ev.reason)
		}
	}
	return s
}

// trace writes the requests that ended in (from, to] to
// $BENCH_TRACES/<name>.txt, if set, with times relative to from: to see
// what a swap looked like.
func (r *recorder) trace(tb testing.TB, name string, from, to time.Time, marks map[string]time.Time) {
	dir := os.Getenv("BENCH_TRACES")
	if dir == "" {
		return
	}
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for k, t := range marks {
		lines = append(lines, line{t, "--- " + k})
	}
	r.mu.Lock()
	for _, ev := range r.events {
		if ev.at.After(from) && !ev.at.After(to) {
			s := "ok " + ev.version
			if !ev.ok {
				s = "err " + ev.reason
			}
			lines = append(lines, line{ev.at, fmt.Sprintf("%s (sent at %.1fms, took %v)", s, ms(ev.start().Sub(from)), ev.took.Round(100*time.Microsecond))})
		}
	}
	r.mu.Unlock()
	slices.SortStableFunc(lines, func(a, b line) int { return a.at.Compare(b.at) })
	var buf bytes.Buffer
	for _, l := range lines {
		fmt.Fprintf(&buf, "%8.1fms %s\n", ms(l.at.Sub(from)), l.text)
	}
	os.WriteFile(filepath.Join(dir, strings.NewReplacer("/", "_", "=", "_").Replace(name)+".txt"), buf.Bytes(), 0o644)
}

// hostPoller polls the app on a published port from the host; args go to
// the pollclient (-rate, -keepalive).
func hostPoller(tb testing.TB, port int, args ...string) *recorder {
	tb.Helper()
	return startPoller(tb, exec.Command(pollclientBinary(tb, false),
		append([]string{"-url", fmt.Sprintf("http://127.0.0.1:%d/", port)}, args...)...))
}

// containerPoller polls url from a container on network: through a network
// alias, as the other services of a compose project reach the app. args go
// to the pollclient.
func containerPoller(tb testing.TB, eng *testenv.Eng, reg *testenv.Reg, network, url string, args ...string) *recorder {
	tb.Helper()
	needDockerCLI(tb)
	ref := pushPollclient(tb, reg)
	docker(tb, "pull", "-q", ref)
	name := eng.UniqueName(tb, "poll")
	// Attached, not -d: its output streams to us. The sweep of testenv
	// removes the container; the SIGTERM of startPoller's cleanup is
	// passed on to it by the CLI.
	return startPoller(tb, exec.Command("docker", append([]string{"run", "--name", name, "--network", network, ref, "-url", url}, args...)...))
}

// pushPollclient pushes an image holding only the pollclient to reg.
func pushPollclient(tb testing.TB, reg *testenv.Reg) string {
	tb.Helper()
	bin, err := os.ReadFile(pollclientBinary(tb, true))
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: "pollclient", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		tb.Fatal(err)
	}
	tw.Write(bin)
	tw.Close()
	zw.Close()
	gz := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil })
	if err != nil {
		tb.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		tb.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	cf = cf.DeepCopy()
	// Without os and architecture the engine refuses to run the image.
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{"/pollclient"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		tb.Fatal(err)
	}
	ref := reg.Ref("bench/pollclient", "latest")
	tag, err := name.NewTag(ref)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		tb.Fatalf("push %s: %v", ref, err)
	}
	return ref
}
