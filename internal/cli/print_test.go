package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestValidatePrint(t *testing.T) {
	file, err := filepath.Abs("../deployments/testdata/compose/shop/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `
hooks: [{source: dockerhub, token: "${LIFTOFF_HOOK_TOKEN}"}]
deployments:
  - name: shop-web
    tags: [latest]
    compose: {file: `+file+`, service: web}
    env: {EXTRA: "1"}
  - name: plain
    image: acme/web
    tags: [x]
    container: {memory: 1g, ports: ["80:8000"]}
`)
	code, out, errOut := runCLI(t, "validate", "--config", cfg, "--print")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"deployment: shop-web\nimage: ghcr.io/acme/shop@<the pushed digest>\ncompose: " + file + " service web (project shop)\ncontainer: shop-web\n",
		"    - DATABASE_URL=(secret)\n", // from the env_file
		"    - DJANGO_SETTINGS_MODULE=shop.settings\n",
		"    - EXTRA=1\n",
		"    - shop_media:/srv/media\n",
		"    com.docker.compose.service: web\n",
		"memory: 256MiB\ncpus: \"0.5\"\npids_limit: 200\nlogging: json-file max-file=2 max-size=5m\n",
		`healthcheck: '["CMD" "/app" "healthcheck"] every 5s, timeout 2s, start period 10s, 4 retries'`,
		"stop_timeout: 30s\n",
		"deployment: plain\nimage: docker.io/acme/web@<the pushed digest>\ncontainer: plain\nports:\n    - 80:8000\nstop_timeout: 10s\nmemory: 1GiB\nlogging: json-file max-file=3 max-size=10m\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate --print lacks\n%s\nin\n%s", want, out)
		}
	}
	if strings.Contains(out, "FILESECRET") {
		t.Errorf("validate --print shows an env_file's value:\n%s", out)
	}
}

// An app whose processes name compose services prints one document per
// replica, each its own service's container.
func TestValidatePrintProcessServices(t *testing.T) {
	file, err := filepath.Abs("../deployments/testdata/compose/shop/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `
hooks: [{source: dockerhub, token: "${LIFTOFF_HOOK_TOKEN}"}]
deployments:
  - name: shop
    tags: [latest]
    compose: {file: `+file+`}
    processes: {web: {service: web}, worker: {service: worker, scale: 2}}
`)
	code, out, errOut := runCLI(t, "validate", "--config", cfg, "--print")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"deployment: shop/worker.1\nimage: ghcr.io/acme/shop@<the pushed digest>\ncompose: " + file + " service worker (project shop)\ncontainer: shop-worker-1\n",
		"deployment: shop/worker.2\nimage: ghcr.io/acme/shop@<the pushed digest>\ncompose: " + file + " service worker (project shop)\ncontainer: shop-worker-2\n",
		"deployment: shop/web.1\nimage: ghcr.io/acme/shop@<the pushed digest>\ncompose: " + file + " service web (project shop)\ncontainer: shop-web-1\n",
		"    com.docker.compose.container-number: \"2\"\n",
		"    - DATABASE_URL=(secret)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate --print lacks\n%s\nin\n%s", want, out)
		}
	}
	if strings.Count(out, "---\n") != 3 || strings.Contains(out, "deployment: shop\n") {
		t.Errorf("validate --print: want one document per replica, none for the app itself:\n%s", out)
	}
}
