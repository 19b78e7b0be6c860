package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The test app is compiled from this copy of its source in a throw-away
// module, so that building it depends neither on the working directory of
// the test binary nor on where the source tree lives.
//
//go:embed testapp/*.go
var appSource embed.FS

// AppPort is the port the test app listens on unless PORT says otherwise.
const AppPort = 8000

// ReleaseCmd is the Cmd of a container that runs the test app as a release
// (or backup) command rather than a server: the images' ENTRYPOINT is the
// app. Its environment drives it (TESTAPP_RELEASE_*, TESTAPP_MARKER_FILE,
// TESTAPP_PRINT_VAR; see testapp/).
func ReleaseCmd() []string { return []string{"release"} }

// app caches what is expensive to make once per test binary: the compiled
// test app and one image layer per version. It is the only package-level
// state, and it is never reset.
var app struct {
	once sync.Once
	bin  []byte
	err  error

	mu     sync.Mutex
	layers map[string]v1.Layer // by version
}

// AppBinary returns the test app compiled as a static linux/amd64 binary.
// It is built at most once per test binary.
func AppBinary(t testing.TB) []byte {
	t.Helper()
	app.once.Do(func() { app.bin, app.err = buildApp() })
	if app.err != nil {
		t.Fatalf("testenv: build test app: %v", app.err)
	}
	return app.bin
}

func buildApp() ([]byte, error) {
	// go test puts its own GOROOT/bin first on the PATH of the tests.
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("no go command on PATH: %w", err)
	}
	// One directory per process: test binaries of several packages build
	// the app in parallel.
	dir, err := os.MkdirTemp("", "liftoff-testapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module testapp\n\ngo 1.22\n"), 0o644); err != nil {
		return nil, err
	}
	files, err := fs.Glob(appSource, "testapp/*.go")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		src, err := appSource.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, path.Base(f)), src, 0o644); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, "app")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64",
		"GOWORK=off", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local", "GOPROXY=off",
	)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", cmd, err, msg)
	}
	return os.ReadFile(out)
}

// appLayer returns the image layer holding /app and /version, cached per
// version so that pushing many tags and versions stays cheap.
func appLayer(t testing.TB, version string) v1.Layer {
	t.Helper()
	bin := AppBinary(t)
	app.mu.Lock()
	defer app.mu.Unlock()
	if l, ok := app.layers[version]; ok {
		return l
	}
	gz, err := layerTarGz(bin, version)
	if err != nil {
		t.Fatalf("testenv: layer: %v", err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	})
	if err != nil {
		t.Fatalf("testenv: layer: %v", err)
	}
	if app.layers == nil {
		app.layers = make(map[string]v1.Layer)
	}
	app.layers[version] = l
	return l
}

func layerTarGz(bin []byte, version string) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	// A fixed time keeps layers, and so digests, reproducible.
	mtime := time.Unix(0, 0)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"app", 0o755, bin},
		{"version", 0o644, []byte(version)},
	} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
