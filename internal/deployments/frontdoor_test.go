package deployments

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for names and its key to dir.
func selfSigned(t *testing.T, dir string, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "door.pem"), filepath.Join(dir, "door.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// One error each, naming its field, for front_door and the proxies'
// hosts and path_prefix.
func TestFrontDoorErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir, "a.example.com")
	files := "{cert_file: " + certFile + ", key_file: " + keyFile + "}"
	door := "front_door: {listen: \":8443\", tls: " + files + "}\n"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no listen", "front_door: {http_listen: \":80\", tls: " + files + "}\n", "front_door.listen: missing"},
		{"bad listen", "front_door: {listen: \"443\"}\n", `front_door.listen: "443": want [host]:port`},
		{"listen is listen", "listen: \"127.0.0.1:8080\"\nfront_door: {listen: \"127.0.0.1:8080\"}\n", "front_door.listen: 127.0.0.1:8080 is also listen"},
		{"http_listen is listen", "front_door: {listen: \":8443\", http_listen: \":8443\", tls: " + files + "}\n", "front_door.http_listen: :8443 is also front_door.listen"},
		{"proxy on the front door's address", door + "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8443\", port: 8000}}\n", "deployments[0].proxy.listen: :8443 is also front_door.listen"},
		{"redirect without tls", "front_door: {listen: \":8443\", http_listen: \":8080\"}\n", "front_door.http_listen: redirects to https"},
		{"redirect_port without http_listen", "front_door: {listen: \":8443\", redirect_port: 443, tls: " + files + "}\n", "front_door.redirect_port: is where http_listen redirects to"},
		{"redirect_port out of range", "front_door: {listen: \":8443\", http_listen: \":8080\", redirect_port: 70000, tls: " + files + "}\n", "front_door.redirect_port: 70000: want a port from 1 to 65535"},
		{"hsts without tls", "front_door: {listen: \":8443\", hsts: 8760h}\n", "front_door.hsts: HSTS is sent over TLS only"},
		{"negative hsts", "front_door: {listen: \":8443\", hsts: -1s, tls: " + files + "}\n", "front_door.hsts: want a max-age"},
		{"tls with nothing", "front_door: {listen: \":8443\", tls: {}}\n", "front_door.tls: give cert_file and key_file, or acme"},
		{"cert without key", "front_door: {listen: \":8443\", tls: {cert_file: " + certFile + "}}\n", "front_door.tls.cert_file: cert_file and key_file go together"},
		{"cert that does not load", "front_door: {listen: \":8443\", tls: {cert_file: " + keyFile + ", key_file: " + certFile + "}}\n", "front_door.tls.cert_file: cannot load the certificate and key"},
		{"acme email", "front_door: {listen: \":8443\", tls: {acme: {email: ops}}}\n", `front_door.tls.acme.email: "ops": want an address`},
		{"acme directory over http", "front_door: {listen: \":8443\", tls: {acme: {directory_url: \"http://ca.example.com/dir\"}}}\n", "front_door.tls.acme.directory_url: \"http://ca.example.com/dir\": want the CA's https:// directory URL"},
		{"unknown key", "front_door: {listen: \":8443\", tls: {acme: {emial: x}}}\n", `unknown key "emial"`},
		{"null", "front_door:\n", "front_door: given with no value"},
		{"default unknown", "front_door: {listen: \":8443\", default: nope}\n", `front_door.default: no deployment is named "nope"`},
		{"default without proxy", "front_door: {listen: \":8443\", default: web}\ndeployments:\n  - {name: web, image: acme/web, tags: [x]}\n", "front_door.default: web has no proxy"},
		{"hosts without a door", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {hosts: [a.example.com], port: 8000}}\n", "deployments[0].proxy.hosts: hosts are served by the front door"},
		{"hosts and listen", door + "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8001\", hosts: [a.example.com], port: 8000}}\n", "deployments[0].proxy.listen: give listen (an address of its own) or hosts"},
		{"neither", door + "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {port: 8000}}\n", "deployments[0].proxy.listen: missing: want [host]:port, e.g. \"127.0.0.1:8001\" or \":80\", or hosts on the front door"},
		{"host with port", door + "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {hosts: [\"a.example.com:443\"], port: 8000}}\n", `deployments[0].proxy.hosts[0]: "a.example.com:443": want a host name`},
		{"host with scheme", door + "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {hosts: [\"https://a.example.com\"], port: 8000}}\n", `deployments[0].proxy.hosts[0]: "https://a.example.com": want a host name`},
		{"upper-case host", door + "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {hosts: [A.example.com], port: 8000}}\n", `deployments[0].proxy.hosts[0]: "A.example.com": want lower case`},
		{"inner wildcard", door + "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {hosts: [\"a.*.com\"], port: 8000}}\n", `deployments[0].proxy.hosts[0]: "a.*.com": a wildcard is only allowed`},
		{"prefix without hosts", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8001\", path_prefix: /api, port: 8000}}\n", "deployments[0].proxy.path_prefix: a path prefix narrows hosts"},
		{"bad prefix", door + "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {hosts: [a.example.com], path_prefix: api, port: 8000}}\n", `deployments[0].proxy.path_prefix: "api": want a plain path`},
		{"same host twice", door + "deployments:\n  - {name: aa, image: acme/web, tags: [x], proxy: {hosts: [a.example.com], port: 8000}}\n  - {name: bb, image: acme/web, tags: [y], proxy: {hosts: [b.example.com, a.example.com], port: 8000}}\n",
			"deployments[1].proxy.hosts[1]: a.example.com is also deployments[0].proxy.hosts[0]"},
		{"same host and prefix", door + "deployments:\n  - {name: aa, image: acme/web, tags: [x], proxy: {hosts: [a.example.com], path_prefix: /api/, port: 8000}}\n  - {name: bb, image: acme/web, tags: [y], proxy: {hosts: [a.example.com], path_prefix: /api, port: 8000}}\n",
			"deployments[1].proxy.hosts[0]: a.example.com with path_prefix /api is also deployments[0].proxy.hosts[0]"},
		{"acme wildcard", "front_door: {listen: \":8443\", tls: {acme: {}}}\ndeployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {hosts: [\"*.example.com\"], port: 8000}}\n", "deployments[0].proxy.hosts[0]: ACME cannot get a certificate for a wildcard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, head+tt.yaml)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFrontDoorDefaults(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir, "*.example.com")
	cfg := mustParse(t, head+`history: /var/lib/liftoff/liftoff.db
front_door:
  listen: ":443"
  http_listen: ":80"
  hsts: 8760h
  default: www
  tls: {cert_file: `+certFile+`, key_file: `+keyFile+`, acme: {email: ops@example.com}}
deployments:
  - {name: www, image: acme/web, tags: [x], proxy: {hosts: [example.com, "*.example.com"], port: 8000}}
  - {name: api, image: acme/api, tags: [x], proxy: {hosts: [example.com], path_prefix: /api, port: 8000}}
  - {name: old, image: acme/old, tags: [x], proxy: {listen: "127.0.0.1:8001", port: 8000}}
`)
	f := cfg.FrontDoor
	if f == nil || f.TLS == nil || f.TLS.ACME == nil {
		t.Fatalf("front_door %+v", f)
	}
	if a := f.TLS.ACME; a.DirectoryURL != DefaultACMEDirectory || a.CacheDir != "/var/lib/liftoff/acme" || a.Email != "ops@example.com" {
		t.Errorf("acme defaults %+v", *a)
	}
	if f.HSTS != 8760*time.Hour || f.Default != "www" {
		t.Errorf("front_door %+v", *f)
	}
	if r := cfg.ProxyRoutes(); len(r) != 3 {
		t.Errorf("ProxyRoutes = %d", len(r))
	}
}
