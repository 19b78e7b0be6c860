package deployments

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// One error each, naming its field, for engines, engine, proxy and service.
func TestEnginesProxyServiceErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "ca.pem", "not really a CA\n")
	ca := filepath.Join(dir, "ca.pem")
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"engine named local", "engines: {local: {host: tcp://h:2376}}\n", `engines.local: "local" is the engine of docker_host`},
		{"engine without host", "engines: {web2: {}}\n", "engines.web2.host: missing"},
		{"engine bad scheme", "engines: {web2: {host: ftp://h}}\n", "engines.web2.host: unknown scheme"},
		{"engine no address", "engines: {web2: {host: tcp://}}\n", "engines.web2.host: no address after tcp://"},
		{"engine cert without key", "engines: {web2: {host: tcp://h:2376, tls_cert: " + ca + "}}\n", "engines.web2.tls_cert: tls_cert and tls_key go together"},
		{"engine tls on ssh", "engines: {web2: {host: ssh://u@h, tls_ca: " + ca + "}}\n", "engines.web2.tls_ca: TLS applies to tcp:// engines only"},
		{"engine missing file", "engines: {web2: {host: tcp://h:2376, tls_ca: " + filepath.Join(dir, "nope.pem") + "}}\n", "engines.web2.tls_ca:"},
		{"plain tcp to another host", "engines: {web2: {host: \"tcp://10.0.0.12:2375\"}}\n",
			`engines.web2.host: "tcp://10.0.0.12:2375" is plain TCP to another host: Docker API calls (root on that host) and registry passwords would cross the network unencrypted: set tls_ca (and tls_cert, tls_key)`},
		{"plain tcp to a name", "engines: {web2: {host: \"tcp://docker.internal:2375\"}}\n", `or set insecure: true to accept the risk`},
		{"insecure with tls", "engines: {web2: {host: tcp://10.0.0.12:2376, insecure: true, tls_ca: " + ca + "}}\n", "engines.web2.insecure: applies only to a tcp:// engine on another host without TLS"},
		{"insecure on ssh", "engines: {web2: {host: ssh://u@h, insecure: true}}\n", "engines.web2.insecure: applies only"},
		{"unknown engine", "deployments:\n  - {name: web, image: acme/web, tags: [latest], engine: web3}\n", `deployments[0].engine: unknown engine "web3": want "local"`},
		{"same container on one engine", "deployments:\n  - {name: aa, image: acme/web, tags: [x], container: {name: web}}\n  - {name: bb, image: acme/web, tags: [y], container: {name: web}}\n",
			`deployments[1].container.name: "web" is also the container of deployments[0]`},
		{"same port on one engine", "deployments:\n  - {name: aa, image: acme/web, tags: [x], container: {ports: [\"80:8000\"]}}\n  - {name: bb, image: acme/web, tags: [y], container: {ports: [\"80:8000\"]}}\n",
			"deployments[1].container.ports[0]: host port 80/tcp is also published by deployments[0].container.ports[0]"},
		{"proxy without listen", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {port: 8000}}\n", "deployments[0].proxy.listen: missing"},
		{"proxy bad listen", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: nowhere, port: 8000}}\n", `deployments[0].proxy.listen: "nowhere": want [host]:port`},
		{"proxy without port", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \"127.0.0.1:8001\"}}\n", "deployments[0].proxy.port: want the container's port"},
		{"proxy on listen", "listen: \"127.0.0.1:8080\"\ndeployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \"127.0.0.1:8080\", port: 8000}}\n", "deployments[0].proxy.listen: 127.0.0.1:8080 is also listen"},
		{"two proxies", "deployments:\n  - {name: aa, image: acme/web, tags: [x], proxy: {listen: \":8001\", port: 8000}}\n  - {name: bb, image: acme/web, tags: [y], proxy: {listen: \":8001\", port: 8000}}\n",
			"deployments[1].proxy.listen: :8001 is also deployments[0].proxy.listen"},
		{"proxy with ports", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8001\", port: 8000}, container: {ports: [\"8002:8000\"]}}\n", "deployments[0].proxy: a proxied deployment runs two containers at once"},
		{"proxy with strategy", "deployments:\n  - {name: web, image: acme/web, tags: [x], strategy: stop-first, proxy: {listen: \":8001\", port: 8000}}\n", "deployments[0].strategy: a proxied deployment always starts"},
		{"proxy network without networks", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8001\", port: 8000, upstream: network}}\n", "deployments[0].proxy.upstream: network needs container.networks"},
		{"proxy unknown upstream", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8001\", port: 8000, upstream: dns}}\n", `deployments[0].proxy.upstream: unknown upstream "dns"`},
		{"proxy negative drain", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8001\", port: 8000, drain_timeout: -1s}}\n", "deployments[0].proxy.drain_timeout: must be positive"},
		{"proxy health url is the proxy", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8001\", port: 8000}, health: {url: \"http://localhost:8001/healthz\"}}\n", "deployments[0].health.url: is the proxy's own address"},
		{"upstream without proxy", "deployments:\n  - {name: web, image: acme/web, tags: [x], health: {url: \"http://{upstream}/healthz\"}}\n", "deployments[0].health.url: {upstream} is the address liftoff's proxy"},
		{"proxy null", "deployments:\n  - name: web\n    image: acme/web\n    tags: [x]\n    proxy:\n", "deployments[0].proxy: given with no value"},
		{"service null", "deployments:\n  - name: web\n    image: acme/web\n    tags: [x]\n    service:\n", "deployments[0].service: given with no value"},
		{"service order", "deployments:\n  - {name: web, image: acme/web, tags: [x], service: {update: {order: random}}}\n", `deployments[0].service.update.order: unknown order "random"`},
		{"service failure action", "deployments:\n  - {name: web, image: acme/web, tags: [x], service: {update: {failure_action: panic}}}\n", `deployments[0].service.update.failure_action: unknown action "panic"`},
		{"service strategy", "deployments:\n  - {name: web, image: acme/web, tags: [x], strategy: start-first, service: {}}\n", "deployments[0].strategy: a service is updated by Swarm"},
		{"service proxy", "deployments:\n  - {name: web, image: acme/web, tags: [x], service: {}, proxy: {listen: \":8001\", port: 8000}}\n", "deployments[0].proxy: a service is reached through Swarm's routing mesh"},
		{"service loopback port", "deployments:\n  - {name: web, image: acme/web, tags: [x], service: {}, container: {ports: [\"127.0.0.1:8001:8000\"]}}\n", "deployments[0].container.ports[0]: a service publishes on every address"},
		{"service health url", "deployments:\n  - {name: web, image: acme/web, tags: [x], service: {}, health: {url: \"http://x/\"}}\n", "deployments[0].health.url: a service's tasks are checked by Swarm"},
		{"service and container of one name", "deployments:\n  - {name: web, image: acme/web, tags: [x], service: {}}\n  - {name: bb, image: acme/web, tags: [y], container: {name: web}}\n",
			`deployments[1].container.name: "web" is also the service of deployments[0]`},
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

func TestEnginesProxyServiceDefaults(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "ca.pem", "ca\n")
	write(t, dir, "cert.pem", "cert\n")
	write(t, dir, "key.pem", "key\n")
	cfg := mustParse(t, head+`engines:
  web2: {host: "tcp://10.0.0.12:2376", tls_ca: `+filepath.Join(dir, "ca.pem")+`, tls_cert: `+filepath.Join(dir, "cert.pem")+`, tls_key: `+filepath.Join(dir, "key.pem")+`}
deployments:
  - {name: aa, image: acme/web, tags: [x], container: {name: web, ports: ["80:8000"]}}
  - {name: bb, image: acme/web, tags: [x], engine: web2, container: {name: web, ports: ["80:8000"]}}
  - {name: cc, image: acme/web, tags: [x], proxy: {listen: "127.0.0.1:8001", port: 8000}}
  - {name: dd, image: acme/web, tags: [x], engine: web2, service: {}}
`)
	if got := cfg.EngineNames(); strings.Join(got, ",") != "local,web2" {
		t.Errorf("EngineNames = %v", got)
	}
	if e, ok := cfg.EngineHost("web2"); !ok || e.Host != "tcp://10.0.0.12:2376" || e.TLSCA != filepath.Join(dir, "ca.pem") {
		t.Errorf("EngineHost(web2) = %+v, %v", e, ok)
	}
	if _, ok := cfg.EngineHost("web3"); ok {
		t.Error("EngineHost(web3) found")
	}
	a, b, c, d := cfg.Deployments[0], cfg.Deployments[1], cfg.Deployments[2], cfg.Deployments[3]
	if a.Engine != LocalEngine || b.Engine != "web2" {
		t.Errorf("engines %q %q", a.Engine, b.Engine)
	}
	x := c.Proxy
	if x.DrainTimeout != 30*time.Second || x.WaitTimeout != 30*time.Second || x.MaxBodyBytes != 100<<20 || x.Upstream != UpstreamLoopback || x.TrustForwarded {
		t.Errorf("proxy defaults %+v", *x)
	}
	if r := cfg.ProxyRoutes(); len(r) != 1 || r[0].Name != "cc" {
		t.Errorf("ProxyRoutes = %v", r)
	}
	s := d.Service
	if s == nil || s.Replicas != 1 || s.Update.Parallelism != 1 || s.Update.Order != StartFirst || s.Update.Monitor != 10*time.Second || s.Update.FailureAction != "rollback" || s.Update.Delay != 0 {
		t.Errorf("service defaults %+v", s)
	}
	if a.Service != nil || a.Proxy != nil {
		t.Error("a container deployment got a service or a proxy")
	}
}

// TestPlainTCPEngineRefused: a tcp:// engine on another host without TLS
// is refused unless it says insecure: true; loopback, ssh:// and unix://
// engines need neither.
func TestPlainTCPEngineRefused(t *testing.T) {
	for _, host := range []string{"tcp://127.0.0.1:2375", "tcp://localhost:2375", "tcp://[::1]:2375", "ssh://deploy@10.0.0.12", "unix:///run/other.sock"} {
		if _, err := parseString(t, head+"engines: {web2: {host: \""+host+"\"}}\n"); err != nil {
			t.Errorf("%s refused: %v", host, err)
		}
	}
	cfg, err := parseString(t, head+"engines: {web2: {host: \"tcp://10.0.0.12:2375\", insecure: true}}\n")
	if err != nil {
		t.Fatalf("insecure: true refused: %v", err)
	}
	if e, _ := cfg.EngineHost("web2"); !e.Insecure {
		t.Errorf("EngineHost(web2) = %+v, want Insecure", e)
	}
	for host, want := range map[string]bool{
		"tcp://10.0.0.12:2375": true, "tcp://docker.example:2375": true, "http://10.0.0.12:2375": true, "tcp://[2001:db8::1]:2375": true,
		"tcp://127.0.0.1:2375": false, "tcp://127.0.0.2:2375": false, "tcp://LOCALHOST:2375": false, "tcp://[::1]:2375": false,
		"https://10.0.0.12:2376": false, "ssh://10.0.0.12": false, "unix:///var/run/docker.sock": false, "": false,
	} {
		if got := PlainRemoteTCP(host); got != want {
			t.Errorf("PlainRemoteTCP(%q) = %v, want %v", host, got, want)
		}
	}
}
