package daemon_test

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestShippedImageDeploys tests the image liftoff ships, as the Dockerfile
// makes it: a static binary built as its build stage builds it, assembled
// by liftoffImage into the same image (no docker build: it needs the
// golang base image, which cannot be pulled here), pushed to a test
// registry, run on the real engine with the Docker socket and a config
// mounted, and sent a Docker Hub push, which it must deploy.
//
// The liftoff container uses the host's network: liftoff resolves tags by
// asking the test registry, which listens on the host's 127.0.0.1, and the
// engine pulls from that same address. liftoff listens on a free port of
// 127.0.0.1 there.
func TestShippedImageDeploys(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	eng := testenv.Engine(t)
	sock := dockerSocket(t)
	reg := eng.Registry(t)
	prefix := eng.UniqueName(t, "image") // its containers, the deployment's too
	cli := eng.Client()

	bin := buildStatic(t)
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		skipOrFail(t, "no CA bundle on the host to copy into the image, as the Dockerfile copies its build stage's: %v", err)
	}
	img, size := liftoffImage(t, bin, certs)
	t.Logf("liftoff image: %.1f MB compressed (its layers as pushed), %.1f MB uncompressed (binary %.1f MB, CA bundle %.2f MB)",
		mb(size.compressed), mb(size.uncompressed), mb(int64(len(bin))), mb(int64(len(certs))))
	ref := reg.Ref("liftoff/"+prefix, "test")
	pushImage(t, ref, img)
	pull(t, cli, ref)

	// The config: one staging deployment of the test app, Docker Hub
	// mirrored by the test registry. No history key: the default,
	// liftoff.db, is relative to the image's WORKDIR, /data.
	port := freePort(t)
	repo := "acme/" + prefix
	config := fmt.Sprintf(`listen: 127.0.0.1:%d
hooks:
  - source: dockerhub
    token: %s
registries:
  docker.io:
    mirror: %s
environments:
  staging:
    env: {STAGE: staging}
deployments:
  - name: %s-web
    image: %s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 500ms}
`, port, hookToken, reg.Host(), prefix, repo)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "liftoff.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := prefix + "-liftoff"
	// The image runs as an unprivileged user: it reaches the socket
	// through the socket's group, as README's docker run adds it. On the
	// host's network, the image's LIFTOFF_LISTEN (0.0.0.0:8080) would be
	// the host's port 8080: the test gives it a free port of loopback.
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{Image: ref, // the image's ENTRYPOINT, CMD and USER
			Env: []string{fmt.Sprintf("LIFTOFF_LISTEN=127.0.0.1:%d", port)}},
		HostConfig: &container.HostConfig{
			GroupAdd:    []string{socketGroup(t, sock)},
			NetworkMode: "host",
			Binds: []string{
				sock + ":/var/run/docker.sock",
				dir + ":/etc/liftoff:ro",
			},
		},
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("liftoff's log in the container:\n%s", containerLogs(cli, res.ID))
		}
		// Before the engine's sweep removes the containers of the prefix,
		// so that liftoff creates none while they are being removed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if in, err := cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{}); err != nil {
		t.Fatal(err)
	} else if u := in.Container.Config.User; u == "" || u == "0" || u == "root" || strings.HasPrefix(u, "0:") {
		t.Errorf("liftoff's image runs as %q, want an unprivileged user", u)
	}

	// Ready: the config loaded, the history opened under /data, the
	// engine answering through the mounted socket.
	waitFor(t, cli, res.ID, "GET /readyz 200", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	reg.Push(t, repo, "staging", testenv.AppImage{Version: "shipped-v1"})
	resp, err := http.Post(base+"/hooks/dockerhub/"+hookToken, "application/json",
		strings.NewReader(testenv.DockerHubPayload(repo, "staging")))
	if err != nil {
		t.Fatalf("hook: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"accepted":1,`) {
		t.Fatalf("hook: %d %s", resp.StatusCode, body)
	}

	// The deploy's outcome, from the metrics liftoff serves: the series
	// of each outcome exists from the start, at 0; the one counted is it.
	series := fmt.Sprintf(`liftoff_deploys_total{deployment="%s-web",environment="staging",outcome=`, prefix)
	var outcome string
	waitFor(t, cli, res.ID, "a deploy outcome in /metrics", func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		for line := range strings.SplitSeq(string(text), "\n") {
			if rest, ok := strings.CutPrefix(line, series); ok {
				o, value, _ := strings.Cut(rest, "} ")
				if value != "0" {
					outcome = o
					return true
				}
			}
		}
		return false
	})
	if outcome != `"succeeded"` {
		t.Fatalf("deploy outcome %s, want succeeded", outcome)
	}
	if got, env := eng.AppGet(t, prefix+"-web"); got != "shipped-v1" || env["STAGE"] != "staging" {
		t.Errorf("%s-web serves %q with STAGE=%q, want shipped-v1, staging", prefix, got, env["STAGE"])
	}
	// The journal is where docker-compose.yml keeps a volume: /data.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if st, err := cli.ContainerStatPath(sctx, res.ID, client.ContainerStatPathOptions{Path: "/data/liftoff.db"}); err != nil || st.Stat.Size == 0 {
		t.Errorf("no history at /data/liftoff.db in the container: %+v %v", st.Stat, err)
	} else if st.Stat.Mode.Perm() != 0o600 {
		t.Errorf("/data/liftoff.db has mode %v, want 0600", st.Stat.Mode.Perm())
	}
}

// buildStatic builds liftoff as the Dockerfile's build stage does: no cgo
// (the history's SQLite is modernc.org/sqlite, pure Go), trimmed paths,
// stripped, the version stamped.
func buildStatic(t *testing.T) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	out := filepath.Join(t.TempDir(), "liftoff")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w -X main.version=test", "-o", out, "../../cmd/liftoff")
	// -buildvcs=false: the build must not depend on the state of a git
	// checkout (the Dockerfile's build stage has none to rely on).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-buildvcs=false")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, msg)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// imageSize is an image's size as pushed (gzip layers) and unpacked.
type imageSize struct{ compressed, uncompressed int64 }

func mb(n int64) float64 { return float64(n) / 1e6 }

// liftoffImage assembles liftoff's image from its binary and a CA bundle
// the way the Dockerfile's final stage does, and is the one place that
// does: keep the two in step (the Dockerfile points here).
//
//	FROM scratch
//	COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
//	COPY --from=build /out/liftoff /liftoff
//	COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /data
//	WORKDIR /data
//	USER 65532:65532
//	ENV LIFTOFF_LISTEN=0.0.0.0:8080
//	EXPOSE 8080
//	ENTRYPOINT ["/liftoff"]
//	CMD ["serve", "--config", "/etc/liftoff/liftoff.yaml"]
//
// One layer per COPY, as docker build makes them; WORKDIR, USER, ENV,
// EXPOSE, ENTRYPOINT and CMD are the image config's.
func liftoffImage(t *testing.T, bin, certs []byte) (v1.Image, imageSize) {
	t.Helper()
	var size imageSize
	var layers []v1.Layer
	for _, files := range [][]tarEntry{
		{{name: "etc/", dir: true}, {name: "etc/ssl/", dir: true}, {name: "etc/ssl/certs/", dir: true},
			{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs}},
		{{name: "liftoff", mode: 0o755, data: bin}},
		{{name: "data/", dir: true, mode: 0o700, owner: 65532}},
	} {
		raw, err := tarOf(files)
		if err != nil {
			t.Fatalf("image layer: %v", err)
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(raw)), nil
		}, tarball.WithCompressionLevel(gzip.DefaultCompression))
		if err != nil {
			t.Fatalf("image layer: %v", err)
		}
		n, err := l.Size()
		if err != nil {
			t.Fatalf("image layer: %v", err)
		}
		size.compressed += n
		size.uncompressed += int64(len(raw))
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	cf = cf.DeepCopy()
	// Without os and architecture the engine refuses to run the image.
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.WorkingDir = "/data"
	cf.Config.User = "65532:65532"
	cf.Config.Env = append(cf.Config.Env, "LIFTOFF_LISTEN=0.0.0.0:8080")
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	cf.Config.Entrypoint = []string{"/liftoff"}
	cf.Config.Cmd = []string{"serve", "--config", "/etc/liftoff/liftoff.yaml"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("image: %v", err)
	}
	return img, size
}

type tarEntry struct {
	name  string
	dir   bool
	mode  int64 // a directory's: 0755 if 0
	owner int   // uid and gid (COPY --chown); 0, root
	data  []byte
}

// tarOf writes a layer's tar, owned by root as docker build's COPY makes
// it.
func tarOf(entries []tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), Typeflag: tar.TypeReg, ModTime: mtime}
		if e.dir {
			hdr = &tar.Header{Name: e.name, Mode: cmp.Or(e.mode, 0o755), Typeflag: tar.TypeDir, ModTime: mtime}
		}
		hdr.Uid, hdr.Gid = e.owner, e.owner
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func pushImage(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// pull has the engine pull ref, reading its progress to the end (a pull
// stream left unread is cut short).
func pull(t *testing.T, cli *client.Client, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	defer stream.Close()
	dec := json.NewDecoder(stream)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if msg.Error != "" {
			t.Fatalf("pull %s: %s", ref, msg.Error)
		}
	}
}

// dockerSocket returns the host path of the engine's socket, which the
// liftoff container mounts as /var/run/docker.sock.
func dockerSocket(t *testing.T) string {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		return "/var/run/docker.sock"
	}
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		skipOrFail(t, "DOCKER_HOST=%s is not a unix socket: a container cannot mount it", host)
	}
	return path
}

// socketGroup is the group id that owns the Docker socket at path: the
// group the unprivileged user of liftoff's image needs.
func socketGroup(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		skipOrFail(t, "Docker socket %s: %v", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		skipOrFail(t, "Docker socket %s: no owner known on this system", path)
	}
	return strconv.Itoa(int(st.Gid))
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds, for up to two minutes; it gives up at
// once if the container stops running.
func waitFor(t *testing.T, cli *client.Client, id, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		in, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		cancel()
		if err != nil {
			t.Fatalf("waiting for %s: inspect the liftoff container: %v", what, err)
		}
		if st := in.Container.State; st == nil || !st.Running {
			t.Fatalf("waiting for %s: the liftoff container stopped (%+v)", what, st)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 2 minutes", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// containerLogs returns what the container wrote, for a failing test.
func containerLogs(cli *client.Client, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Sprintf("(logs: %v)", err)
	}
	defer rc.Close()
	raw, _ := io.ReadAll(rc)
	// The stream is multiplexed: 8-byte frame headers; liftoff logs JSON
	// lines, readable enough with the headers left in.
	return string(raw)
}

// skipOrFail skips the test, or fails it under LIFTOFF_REQUIRE_DOCKER=1
// (CI), where nothing may skip.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("LIFTOFF_REQUIRE_DOCKER") == "1" {
		t.Fatalf(format+" (LIFTOFF_REQUIRE_DOCKER=1)", args...)
	}
	t.Skipf("SKIPPED: "+format, args...)
}

// TestImageMirrorsDockerfile keeps liftoffImage and the Dockerfile's final
// stage together: each line of the stage that liftoffImage reproduces must
// be in the Dockerfile as it is here, and the stage must have no other.
func TestImageMirrorsDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	_, final, ok := strings.Cut(string(raw), "\nFROM scratch\n")
	if !ok {
		t.Fatal("the Dockerfile has no final stage FROM scratch")
	}
	var got []string
	for _, l := range strings.Split(final, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			got = append(got, l)
		}
	}
	want := []string{
		"COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/",
		"COPY --from=build /out/liftoff /liftoff",
		"COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /data",
		"WORKDIR /data",
		"USER 65532:65532",
		"ENV LIFTOFF_LISTEN=0.0.0.0:8080",
		"EXPOSE 8080",
		`ENTRYPOINT ["/liftoff"]`,
		`CMD ["serve", "--config", "/etc/liftoff/liftoff.yaml"]`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("the Dockerfile's final stage:\n%s\nliftoffImage reproduces:\n%s\nchange both together", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
