package docker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/docker"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// engineErrors returns liftoff_docker_errors_total{engine,op}.
func engineErrors(t *testing.T, reg *prometheus.Registry, engine, op string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "liftoff_docker_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) == 2 && got["engine"] == engine && got["op"] == op {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no liftoff_docker_errors_total{engine=%q,op=%q}", engine, op)
	return 0
}

// fakeSSH puts an ssh first on PATH that runs the remote command here (the
// local docker CLI's "docker system dial-stdio", reaching the local engine)
// after noting its arguments and pid, one line each, in files of dir; with
// fail set it fails as ssh does when the host refuses the connection.
func fakeSSH(t *testing.T, fail bool) (dir string) {
	t.Helper()
	dir = t.TempDir()
	script := `#!/bin/sh
echo "$*" >> "$(dirname "$0")/args"
echo "$$" >> "$(dirname "$0")/pids"
`
	if fail {
		script += `echo "ssh: connect to host far.example port 2222: Connection refused" >&2
exit 255
`
	} else {
		script += `while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift 2 # "--" and the host
exec "$@"
`
	}
	if err := os.WriteFile(filepath.Join(dir, "ssh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestSSHEngine drives the local engine as if it were remote, through a
// fake ssh that runs "docker system dial-stdio" here, as the real one runs
// it on the remote host.
func TestSSHEngine(t *testing.T) {
	testenv.Slow(t)
	e := testenv.Engine(t)
	if _, err := exec.LookPath("docker"); err != nil {
		if os.Getenv("LIFTOFF_REQUIRE_DOCKER") == "1" {
			t.Fatal("no docker CLI on PATH, which ssh engines run on the remote host (LIFTOFF_REQUIRE_DOCKER=1)")
		}
		t.Skip("SKIPPED: no docker CLI on PATH; the fake ssh runs docker system dial-stdio")
	}
	dir := fakeSSH(t, false)
	reg := prometheus.NewRegistry()
	c, err := docker.Open(docker.Engine{Name: "far", Host: "ssh://deploy@far.example:2222"}, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine() != "far" {
		t.Errorf("Engine() = %q", c.Engine())
	}
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatalf("ping over ssh: %v", err)
	}
	want := "-o ConnectTimeout=30 -o BatchMode=yes -T -l deploy -p 2222 -- far.example docker system dial-stdio"
	if got := fileLines(t, filepath.Join(dir, "args")); got[0] != want {
		t.Errorf("ssh %s, want ssh %s", got[0], want)
	}

	// A real round of calls: an image pulled, a container made, run,
	// found by its labels and removed, all over the command's pipes.
	reg2 := e.Registry(t)
	ref := reg2.Host() + "/acme/ssh@" + reg2.Push(t, "acme/ssh", "v1", testenv.AppImage{Version: "v1"})
	if err := c.Pull(ctx(t), ref, deploy.Auth{}); err != nil {
		t.Fatalf("pull over ssh: %v", err)
	}
	name := e.UniqueName(t, "ssh")
	id, err := c.Create(ctx(t), deploy.Spec{Name: name, Image: ref, Labels: map[string]string{deploy.LabelDeployment: name}})
	if err != nil {
		t.Fatalf("create over ssh: %v", err)
	}
	if err := c.Start(ctx(t), id); err != nil {
		t.Fatalf("start over ssh: %v", err)
	}
	if got, _ := e.AppGet(t, name); got != "v1" {
		t.Errorf("the container serves %q, want v1", got)
	}
	list, err := c.List(ctx(t), map[string]string{deploy.LabelDeployment: name})
	if err != nil || len(list) != 1 || list[0].ID != id || !list[0].Running {
		t.Errorf("List over ssh: %+v %v", list, err)
	}
	if err := c.Remove(ctx(t), id); err != nil {
		t.Errorf("remove over ssh: %v", err)
	}
	if _, err := c.Inspect(ctx(t), id); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Inspect of the removed container: %v, want ErrNotFound", err)
	}

	// Closing the client ends every ssh it ran.
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range fileLines(t, filepath.Join(dir, "pids")) {
		pid, err := strconv.Atoi(p)
		if err != nil {
			t.Fatal(err)
		}
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("ssh (pid %d) still runs after Close", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n := engineErrors(t, reg, "far", "ping"); n != 0 {
		t.Errorf("errors_total{engine=far,op=ping} = %v", n)
	}
}

// TestSSHEngineUnreachable: ssh failing is the engine unavailable, and the
// error says what ssh said.
func TestSSHEngineUnreachable(t *testing.T) {
	fakeSSH(t, true)
	reg := prometheus.NewRegistry()
	c, err := docker.Open(docker.Engine{Name: "far", Host: "ssh://far.example:2222"}, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Ping(ctx(t))
	if !errors.Is(err, deploy.ErrUnavailable) || !strings.Contains(err.Error(), "Connection refused") || !strings.Contains(err.Error(), `"far"`) {
		t.Fatalf("ping through a failing ssh: %v, want ErrUnavailable saying why and naming the engine", err)
	}
	if n := engineErrors(t, reg, "far", "ping"); n != 1 {
		t.Errorf("errors_total{engine=far,op=ping} = %v, want 1", n)
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, e := range []docker.Engine{
		{Name: "far"}, // no host
		{Name: "far", Host: "ssh://far.example/var/run/docker.sock"},
		{Name: "far", Host: "ssh://u:secret@far.example"},
		{Name: "far", Host: "ssh://far.example", TLSCA: "ca.pem"},
		{Name: "far", Host: "tcp://far.example:2376", TLSCA: "/nonexistent/ca.pem"},
	} {
		if c, err := docker.Open(e, nil, zerolog.Nop()); err == nil {
			c.Close()
			t.Errorf("Open(%+v) did not fail", e)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%+v): the error shows the password: %v", e, err)
		}
	}
}

// TestOpenRefusesPlainTCP: a tcp:// engine on another host without TLS is
// refused, naming the engine and saying how to fix it, unless it is
// Insecure; DOCKER_HOST is held to the same rule for the local engine,
// where DOCKER_CERT_PATH gives it TLS as it does the docker CLI.
func TestOpenRefusesPlainTCP(t *testing.T) {
	_, err := docker.Open(docker.Engine{Name: "far", Host: "tcp://10.0.0.12:2375"}, nil, zerolog.Nop())
	if !errors.Is(err, docker.ErrPlainTCP) || !strings.Contains(err.Error(), `"far"`) || !strings.Contains(err.Error(), "insecure: true") {
		t.Fatalf("Open of a plain remote tcp:// engine: %v, want ErrPlainTCP naming the engine and the fix", err)
	}
	for _, e := range []docker.Engine{
		{Name: "far", Host: "tcp://10.0.0.12:2375", Insecure: true},
		{Name: "far", Host: "tcp://127.0.0.1:2375"},
	} {
		c, err := docker.Open(e, nil, zerolog.Nop())
		if err != nil {
			t.Fatalf("Open(%+v): %v", e, err)
		}
		c.Close()
	}
	t.Setenv("DOCKER_HOST", "tcp://10.0.0.12:2375")
	t.Setenv("DOCKER_CERT_PATH", "")
	_, err = docker.Open(docker.Engine{}, nil, zerolog.Nop())
	if !errors.Is(err, docker.ErrPlainTCP) || !strings.Contains(err.Error(), "DOCKER_CERT_PATH") {
		t.Fatalf("Open of the local engine with DOCKER_HOST plain remote tcp://: %v, want ErrPlainTCP saying DOCKER_CERT_PATH", err)
	}
}

// TestTLSEngine: a tcp:// engine that requires TLS with client
// certificates (dockerd --tlsverify), played by a server that answers
// pings.
func TestTLSEngine(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil, func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign
	})
	srv, srvKey := newCert(t, dir, "server", ca, caKey, func(c *x509.Certificate) {
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	newCert(t, dir, "client", ca, caKey, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	other, otherKey := newCert(t, dir, "other-ca", nil, nil, func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign
	})
	newCert(t, dir, "stranger", other, otherKey, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})

	engine := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/_ping") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Api-Version", "1.41")
		w.Write([]byte("OK"))
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	engine.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	engine.StartTLS()
	defer engine.Close()
	host := "tcp://" + engine.Listener.Addr().String()
	f := func(name string) string { return filepath.Join(dir, name) }

	for _, tc := range []struct {
		name    string
		e       docker.Engine
		wantErr bool
	}{
		{"client certificate", docker.Engine{TLSCA: f("ca.pem"), TLSCert: f("client.pem"), TLSKey: f("client-key.pem")}, false},
		{"no client certificate", docker.Engine{TLSCA: f("ca.pem")}, true},
		{"certificate of another CA", docker.Engine{TLSCA: f("ca.pem"), TLSCert: f("stranger.pem"), TLSKey: f("stranger-key.pem")}, true},
		{"engine signed by an unknown CA", docker.Engine{TLSCA: f("other-ca.pem"), TLSCert: f("client.pem"), TLSKey: f("client-key.pem")}, true},
		{"no TLS", docker.Engine{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.e.Name, tc.e.Host = "secure", host
			c, err := docker.Open(tc.e, nil, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Ping(ctx(t))
			if (err != nil) != tc.wantErr {
				t.Errorf("ping: %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

// newCert writes NAME.pem and NAME-key.pem to dir: a certificate signed by
// parent (self-signed without one), edited by edit.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, edit func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	edit(tmpl)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{
		name + ".pem":     {Type: "CERTIFICATE", Bytes: der},
		name + "-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}
