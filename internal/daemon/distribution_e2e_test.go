package daemon_test

import (
	"context"
	"encoding/json"
	"expvar"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/notifications"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // storage: inmemory
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// The distribution hook's token and the Authorization header its registry
// must send; wrongAuth is what the other registry sends.
const (
	distToken = "dist-token-4e1b7c9a2d5f8e0b3c6a9d1f"
	distAuth  = "Bearer dist-secret-8c2e4a6f0b1d3e5c7a9b"
	wrongAuth = "Bearer not-the-secret-0f9e8d7c6b5a4f3e"
)

// distConfig: NAME-web deploys GOOD/acme/NAME:staging and NAME-refused
// BAD/acme/NAME:staging, both announced by a distribution registry's
// notifications. GOOD and BAD are replaced by the registries' hosts.
const distConfig = `
listen: 127.0.0.1:0
hooks:
  - source: distribution
    token: ` + distToken + `
    auth_header: "` + distAuth + `"
api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
deployments:
  - name: %[1]s-web
    image: GOOD/acme/%[1]s
    tags: [staging]
    stop_timeout: 1s
    health: {min_uptime: 200ms}
  - name: %[1]s-refused
    image: BAD/acme/%[1]s
    tags: [staging]
    stop_timeout: 1s
    health: {min_uptime: 200ms}
`

// TestDistributionRegistryNotificationsDeploy runs a CNCF distribution
// registry (the registry:2 and 3 code) whose notifications endpoint is
// liftoff's hook, pushes to it, and checks that the registry's own
// notifications deploy each tagged push and nothing else: not its blob
// pushes, not an untagged manifest, not the engine's pulls. A second
// registry, sending the wrong Authorization header, is refused with 401
// and deploys nothing.
func TestDistributionRegistryNotificationsDeploy(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	good, bad := newDistRegistry(t, eng), newDistRegistry(t, eng)
	d := startDaemon(t, strings.NewReplacer("GOOD", good.Host(), "BAD", bad.Host()).Replace(distConfig))
	web, refused, repo := d.prefix+"-web", d.prefix+"-refused", "acme/"+d.prefix
	hookURL := d.base + "/hooks/distribution/" + distToken

	good.start(t, distEndpoint{name: d.prefix + "-liftoff", url: hookURL, auth: distAuth, backoff: 100 * time.Millisecond})
	// The registry retries a refused notification, forever, and nothing
	// outside it can stop it: an hour's backoff makes the first refusal the
	// only request within the test binary's life, which would otherwise
	// go on calling a port another test's liftoff may get. Its blob events
	// are left out, so that the refused event is the push of the tag.
	bad.start(t, distEndpoint{name: d.prefix + "-wrong", url: hookURL, auth: wrongAuth, backoff: time.Hour,
		ignore: []string{"application/octet-stream"}})
	// Every notification of the good registry must be answered before
	// liftoff stops: one answered 503 while it shuts down would be retried
	// against a closed port.
	t.Cleanup(func() {
		good.Close()
		good.drained(t)
	})

	// The wrongly authorized push first, so that a deploy it caused would
	// show by the end.
	bad.Push(t, repo, "staging", testenv.AppImage{Version: "refused"})

	// A tagged push: the registry's notification of its manifest deploys
	// it, to the digest pushed.
	start := time.Now()
	v1 := good.Push(t, repo, "staging", testenv.AppImage{Version: "v1"})
	r1 := d.next()
	t.Logf("push of v1 to deployed: %s", time.Since(start).Round(time.Millisecond))
	d.checkDistDeploy(r1, web, v1, "")
	d.serving(web, "v1")
	good.drained(t)
	d.waitMetric(`liftoff_webhooks_total{outcome="accepted",source="distribution"} 1`)
	first := d.distDeliveries(r1.Request.Delivery)
	d.hasDelivery(first, r1.Request.Delivery, good.Host()+"/"+repo, web)
	d.logEntry("webhook", map[string]string{"source": "distribution", "outcome": "accepted",
		"repo": good.Host() + "/" + repo, "tag": "staging", "reported_digest": v1})

	// A manifest pushed by digest alone is announced untagged: it deploys
	// nothing.
	untagged := good.pushByDigest(t, repo, testenv.AppImage{Version: "untagged"})
	deadline := time.Now().Add(30 * time.Second)
	for !hasReason(d.distDeliveries(""), "untagged") {
		if time.Now().After(deadline) {
			t.Fatalf("the registry's notification of the untagged push %s did not reach liftoff within 30s", untagged)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A new digest under the same tag deploys again.
	start = time.Now()
	v2 := good.Push(t, repo, "staging", testenv.AppImage{Version: "v2"})
	r2 := d.next()
	t.Logf("push of v2 to deployed: %s", time.Since(start).Round(time.Millisecond))
	d.checkDistDeploy(r2, web, v2, v1)
	d.serving(web, "v2")
	good.drained(t)

	// Two deploys, from the two tagged pushes, and nothing else: every
	// notification was answered (drained), so each one that was accepted
	// was queued by then.
	d.waitMetric(`liftoff_webhooks_total{outcome="accepted",source="distribution"} 2`)
	all := d.distDeliveries(r2.Request.Delivery)
	var accepted []string
	reasons := map[string]int{}
	for _, dl := range all {
		if len(dl.Accepted) > 0 {
			accepted = append(accepted, dl.ID)
			continue
		}
		for _, ig := range dl.Ignored {
			reasons[ig.Reason]++
		}
	}
	slices.Sort(accepted)
	if want := []string{r1.Request.Delivery, r2.Request.Delivery}; !slices.Equal(accepted, slices.Sorted(slices.Values(want))) {
		t.Errorf("deliveries that deployed: %v, want only the two tagged pushes' %v", accepted, want)
	}
	t.Logf("the registry's %d notifications: 2 deployed; the others were ignored: %v", len(all), reasons)
	for _, want := range []string{"not a manifest", "untagged", `action "pull"`} {
		if !hasReason(all, want) {
			t.Errorf("no delivery ignored as %q: %v", want, reasons)
		}
	}
	select {
	case r := <-d.results:
		t.Errorf("a third deploy: %s %s %s %v", r.Request.Deployment, r.Request.Tag, r.Outcome, r.Err)
	default:
	}

	// The registry with the wrong Authorization header was answered 401,
	// and its push deployed nothing.
	deadline = time.Now().Add(30 * time.Second)
	for bad.metrics(t).Statuses["401 Unauthorized"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the registry with the wrong Authorization header was not answered 401 within 30s: %+v", bad.metrics(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m := bad.metrics(t); m.Successes != 0 || m.Statuses["401 Unauthorized"] != 1 {
		t.Errorf("the registry with the wrong header: %d delivered, statuses %v; want none delivered and one 401", m.Successes, m.Statuses)
	}
	d.waitMetric(`liftoff_webhooks_total{outcome="unauthorized",source="distribution"} 1`)
	d.logEntry("webhook", map[string]string{"source": "distribution", "outcome": "unauthorized"})
	if got := d.eng.Containers(t, refused); len(got) != 0 {
		t.Errorf("the refused push made containers: %v", got)
	}
	d.only(web)
}

// checkDistDeploy checks that r is a successful deploy of digest to
// deployment, asked by a distribution notification, and that the
// container left running is of digest.
func (d *daemon) checkDistDeploy(r deploy.Result, deployment, digest, previous string) {
	d.t.Helper()
	if r.Outcome != deploy.Succeeded || r.Request.Deployment != deployment || r.Request.Trigger != "distribution" ||
		r.Request.Tag != "staging" || r.Digest != digest || r.Previous != previous {
		d.t.Fatalf("deploy: %s of %s:%s (%s) by %s, previous %q, %v; want succeeded of %s:staging (%s) by distribution, previous %q",
			r.Outcome, r.Request.Deployment, r.Request.Tag, r.Digest, r.Request.Trigger, r.Previous, r.Err, deployment, digest, previous)
	}
	if got := d.eng.Inspect(d.t, deployment).Config.Labels[deploy.LabelDigest]; got != digest {
		d.t.Errorf("%s runs %s, want %s", deployment, got, digest)
	}
	out := d.apiOK(http.StatusOK, tokRead, "GET", "/api/v1/deploys?delivery="+r.Request.Delivery, "")
	ds, _ := out["deploys"].([]any)
	if len(ds) != 1 {
		d.t.Fatalf("deploys of delivery %s: %v, want one", r.Request.Delivery, out)
	}
	if rec := ds[0].(map[string]any); rec["trigger"] != "distribution" || rec["digest"] != digest || rec["outcome"] != "succeeded" {
		d.t.Errorf("history of delivery %s: %v, want a succeeded deploy of %s triggered by distribution", r.Request.Delivery, rec, digest)
	}
}

// distDeliveries returns the deliveries of source distribution, once
// want ("" for any) is among them: the history writes those that
// concern a deployment a few milliseconds after answering them.
func (d *daemon) distDeliveries(want string) []apiv1.Delivery {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, raw := d.apiRaw(tokRead, "GET", "/api/v1/deliveries?limit=200", "")
		var page apiv1.Deliveries
		if status != http.StatusOK || json.Unmarshal(raw, &page) != nil {
			d.t.Fatalf("GET /api/v1/deliveries: %d %s", status, raw)
		}
		var out []apiv1.Delivery
		found := want == ""
		for _, dl := range page.Deliveries {
			if dl.Source == "distribution" {
				out = append(out, dl)
				found = found || dl.ID == want
			}
		}
		if found {
			return out
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("delivery %s is not listed within 10s: %+v", want, out)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// hasDelivery checks that ds lists id as a push of image:staging that
// deployed deployment.
func (d *daemon) hasDelivery(ds []apiv1.Delivery, id, image, deployment string) {
	d.t.Helper()
	for _, dl := range ds {
		if dl.ID == id {
			if dl.Image != image || dl.Tag != "staging" || !slices.Equal(dl.Accepted, []string{deployment}) {
				d.t.Errorf("delivery %s: %+v, want %s:staging accepted by %s", id, dl, image, deployment)
			}
			return
		}
	}
	d.t.Errorf("delivery %s is not listed: %+v", id, ds)
}

// hasReason tells whether one of ds was ignored for a reason containing
// want.
func hasReason(ds []apiv1.Delivery, want string) bool {
	return slices.ContainsFunc(ds, func(dl apiv1.Delivery) bool {
		return len(dl.Accepted) == 0 && slices.ContainsFunc(dl.Ignored, func(ig apiv1.Ignored) bool {
			return strings.Contains(ig.Reason, want)
		})
	})
}

// waitMetric waits, up to 10s, for /metrics to have the line: a delivery
// is counted just after it is answered.
func (d *daemon) waitMetric(line string) {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(strings.Split(d.get("/metrics"), "\n"), line) {
		if time.Now().After(deadline) {
			d.hasMetric(line)
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// distRegistry is a CNCF distribution registry, in-memory, served by
// testenv on 127.0.0.1 (so the engine pulls from it over plain HTTP, and
// removes what it pulled when the test ends). It listens at once, so that
// liftoff's config can name it, and serves once start has built it with
// liftoff's hook URL.
type distRegistry struct {
	*testenv.Reg
	app      atomic.Pointer[handlers.App]
	endpoint string // its notification endpoint's name, unique per test
}

func newDistRegistry(t *testing.T, eng *testenv.Eng) *distRegistry {
	t.Helper()
	// The registry logs each request, and its endpoints' headers (the
	// hook's secret), to logrus's standard logger, which only its own
	// command configures; what the test needs of it, it asks its
	// endpoint metrics.
	logrus.SetOutput(io.Discard)
	r := &distRegistry{}
	r.Reg = eng.Registry(t, testenv.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if app := r.app.Load(); app != nil {
			app.ServeHTTP(w, req)
			return
		}
		http.Error(w, "not started", http.StatusServiceUnavailable)
	})))
	return r
}

// distEndpoint is the registry's one notification endpoint.
type distEndpoint struct {
	name, url, auth string
	backoff         time.Duration // after each failure
	ignore          []string      // target media types not sent
}

// start builds the registry from the configuration a registry's
// config.yml would hold, notifying e.
func (r *distRegistry) start(t *testing.T, e distEndpoint) {
	t.Helper()
	ignore, _ := json.Marshal(e.ignore) // YAML flow sequences are JSON arrays
	config := fmt.Sprintf(`
version: 0.1
storage:
  inmemory: {}
  maintenance:
    uploadpurging: {enabled: false}
http:
  secret: %[1]s-upload-secret
notifications:
  endpoints:
    - name: %[1]s
      url: %[2]q
      headers:
        Authorization: [%[3]q]
      timeout: 2s
      threshold: 1
      backoff: %[4]s
      ignore: {mediatypes: %[5]s}
`, e.name, e.url, e.auth, e.backoff, ignore)
	cfg, err := configuration.Parse(strings.NewReader(config))
	if err != nil {
		t.Fatalf("distribution config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	t.Cleanup(func() {
		if err := app.Shutdown(); err != nil {
			t.Errorf("distribution registry: shutdown: %v", err)
		}
		cancel()
	})
	r.endpoint = e.name
	r.app.Store(app)
}

// metrics returns what the registry says of its notification endpoint, as
// a registry shows it on /debug/vars (expvar registry.notifications).
func (r *distRegistry) metrics(t *testing.T) notifications.EndpointMetrics {
	t.Helper()
	v := expvar.Get("registry").(*expvar.Map).Get("notifications").(*expvar.Map).Get("endpoints")
	var eps []struct {
		Name    string `json:"name"`
		Metrics notifications.EndpointMetrics
	}
	if err := json.Unmarshal([]byte(v.String()), &eps); err != nil {
		t.Fatalf("distribution registry: endpoint metrics: %v", err)
	}
	for _, ep := range eps {
		if ep.Name == r.endpoint {
			return ep.Metrics
		}
	}
	t.Fatalf("distribution registry: no endpoint %s", r.endpoint)
	return notifications.EndpointMetrics{}
}

// drained waits, up to 30s, until every notification the registry queued
// was answered 2xx or 3xx. The registry queues an event as it serves the
// request, and then sends it in the background.
func (r *distRegistry) drained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := r.metrics(t)
		if m.Pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("distribution registry: %d notifications still pending after 30s: %+v", m.Pending, m)
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// pushByDigest pushes the test image for opts as repo@digest, with no
// tag, and returns its digest.
func (r *distRegistry) pushByDigest(t *testing.T, repo string, opts testenv.AppImage) string {
	t.Helper()
	img := testenv.Image(t, opts)
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest(r.Host() + "/" + repo + "@" + dg.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return dg.String()
}
