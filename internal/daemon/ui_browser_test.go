package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// tokLeadReader reads and approves in production: what an operator who
// approves from the status page has.
const tokLeadReader = "lead-read-token-4e6c8a0b2d1f3e5a7c9d"

// uiBrowserConfig is apiConfig with that token.
var uiBrowserConfig = strings.Replace(apiConfig, "api_tokens:\n",
	"api_tokens:\n  - {name: lead-reader, token: "+tokLeadReader+`, scopes: [read, "approve:production"]}`+"\n", 1)

// screenshotPath is where LIFTOFF_SCREENSHOT=1 saves the page, for the
// README.
const screenshotPath = "../../docs/status-page.png"

// findChromium finds the browser: $CHROME, or chromium or
// chromium-browser on PATH. Without one the test skips, or fails under
// LIFTOFF_REQUIRE_DOCKER=1 (CI), where .ci/run installs it.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no Chromium: neither $CHROME nor chromium or chromium-browser on PATH (.ci/run installs Debian's chromium; apt-get install chromium)"
	if os.Getenv("LIFTOFF_REQUIRE_DOCKER") == "1" {
		t.Fatal(why)
	}
	t.Skip("SKIPPED, " + why)
	return ""
}

// startBrowser starts headless Chromium with a profile of its own, and
// stops it and removes the profile when the test ends, passed or not.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium(t)
	profile := t.TempDir() // removed after the browser stops: cleanups run last in, first out
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.UserDataDir(profile), chromedp.DisableGPU, chromedp.WindowSize(1280, 1000))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses root, as in a container
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		done, stop := context.WithTimeout(ctx, 30*time.Second)
		defer stop()
		if err := chromedp.Cancel(done); err != nil {
			t.Logf("closing Chromium: %v", err)
		}
		cancel()
		cancelAlloc() // kills Chromium if it is still there, and waits for it
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	return ctx
}

// within runs steps with a deadline, failing the test on an error.
func within(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value evaluates a JavaScript expression in the page.
func value[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// card is the CSS selector of a deployment's card.
func card(name string) string { return fmt.Sprintf(`article[data-deployment=%q]`, name) }

// logIn fills the login form with token and returns the status of the page
// the browser ends on.
func logIn(t *testing.T, ctx context.Context, base, token string) int64 {
	t.Helper()
	within(t, ctx, 30*time.Second, "open the login form",
		chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#token`)))
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(c, chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`.login button[type=submit]`)))
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	return resp.Status
}

// logOut presses Log out, which must land on the login form.
func logOut(t *testing.T, ctx context.Context) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(c, chromedp.Click(chromedp.CSS(`form.logout button`))); err != nil {
		t.Fatalf("log out: %v", err)
	}
	if loc := value[string](t, ctx, `location.pathname`); loc != "/login" {
		t.Fatalf("after Log out the browser is at %s", loc)
	}
}

// TestStatusPageInABrowser drives the status page of a real liftoff, on
// the real engine, in headless Chromium: a wrong token is refused, a
// read-only token sees the deployments and what runs but no button, and
// an approver approves a pending push and watches the page show that it
// succeeded.
func TestStatusPageInABrowser(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	ctx := startBrowser(t)
	d := startDaemon(t, uiBrowserConfig)
	staging, prod := d.prefix+"-staging", d.prefix+"-prod"

	// Staging runs v1; v2 fails its gate and is rolled back; production
	// has latest awaiting approval.
	d.push("v1", "v1")
	d.deployOK("v1")
	d.push("v2", "v2", "TESTAPP_EXIT=3")
	if r := d.deploy("v2"); r.Outcome != deploy.RolledBack {
		t.Fatalf("v2 to staging: %s %v, want rolled_back", r.Outcome, r.Err)
	}
	d.push("latest", "v3")
	if status, ans := d.hook("latest"); status != 202 || ans.Pending != 1 {
		t.Fatalf("push of latest: %d %+v", status, ans)
	}

	t.Run("wrong token", func(t *testing.T) {
		if status := logIn(t, ctx, d.base, tokUnknown); status != 401 {
			t.Errorf("login with an unknown token: %d, want 401", status)
		}
		msg := value[string](t, ctx, `document.querySelector(".login .message").textContent`)
		if !strings.Contains(msg, "not an API token") {
			t.Errorf("message: %q", msg)
		}
		within(t, ctx, 30*time.Second, "open / after a refused login", chromedp.Navigate(d.base+"/"), chromedp.WaitVisible(chromedp.CSS(`#token`)))
		if loc := value[string](t, ctx, `location.pathname`); loc != "/login" {
			t.Errorf("after a refused login / leads to %s, want /login", loc)
		}
	})

	t.Run("read-only token", func(t *testing.T) {
		if status := logIn(t, ctx, d.base, tokRead); status != 200 {
			t.Fatalf("login with read: %d", status)
		}
		within(t, ctx, 30*time.Second, "the overview", chromedp.WaitVisible(chromedp.CSS(card(prod))))
		if got := value[string](t, ctx, `document.querySelector('`+card(staging)+` .running .tag').textContent`); got != "v1" {
			t.Errorf("staging runs %q on the page, want v1", got)
		}
		if got := value[string](t, ctx, `document.querySelector('`+card(prod)+` .pending').textContent`); !strings.Contains(got, "latest") {
			t.Errorf("production's pending push on the page: %q", got)
		}
		failures := value[string](t, ctx, `document.querySelector('.failures').textContent`)
		if !strings.Contains(failures, staging) || !strings.Contains(failures, "rolled_back") {
			t.Errorf("recent failures: %q", failures)
		}
		if n := value[int](t, ctx, `document.querySelectorAll('form.action, .actions button').length`); n != 0 {
			t.Errorf("a read-only token sees %d buttons", n)
		}
		logOut(t, ctx)
	})

	t.Run("approve", func(t *testing.T) {
		if status := logIn(t, ctx, d.base, tokLeadReader); status != 200 {
			t.Fatalf("login with read and approve:production: %d", status)
		}
		within(t, ctx, 30*time.Second, "the Approve button", chromedp.WaitVisible(chromedp.CSS(card(prod)+` .action-approve button`)))
		if n := value[int](t, ctx, `document.querySelectorAll('`+card(staging)+` .actions button').length`); n != 0 {
			t.Errorf("approve:production sees %d buttons on staging", n)
		}
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// The focus keeps ui.js from swapping the card under the click.
		approve := chromedp.CSS(card(prod) + ` .action-approve button`)
		if _, err := chromedp.RunResponse(c, chromedp.Focus(approve), chromedp.Click(approve)); err != nil {
			t.Fatalf("press Approve: %v", err)
		}
		if flash := value[string](t, ctx, `(document.querySelector('.flash') || {}).textContent || ""`); !strings.Contains(flash, "Approved latest") {
			t.Errorf("after Approve the page says %q", flash)
		}
		// The page refreshes itself: wait, without reloading, for the
		// deploy to show as succeeded with latest running.
		c2, cancel2 := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel2()
		if _, err := chromedp.Run(c2, chromedp.Poll[bool](`(function () {
				const card = document.querySelector('`+card(prod)+`');
				return card !== null && card.querySelector('.last .outcome-succeeded') !== null &&
					card.querySelector('.running .tag') !== null && card.querySelector('.running .tag').textContent === 'latest' &&
					card.querySelector('.pending') === null;
			})()`, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(0))); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(card(prod))))
			t.Fatalf("the page did not show the approved deploy as succeeded: %v\n%s", err, html)
		}
		d.next()
		d.serving(prod, "v3")
		if os.Getenv("LIFTOFF_SCREENSHOT") == "1" {
			screenshot(t, ctx, d)
		}
		logOut(t, ctx)
	})
}

// screenshot saves the overview, with a push awaiting approval again, for
// the README.
func screenshot(t *testing.T, ctx context.Context, d *daemon) {
	t.Helper()
	d.push("release-4", "v4")
	d.hook("release-4")
	within(t, ctx, 30*time.Second, "reload the overview", chromedp.Navigate(d.base+"/"),
		chromedp.WaitVisible(chromedp.CSS(card(d.prefix+"-prod")+` .pending`)))
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(screenshotPath, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(screenshotPath)
	t.Logf("saved %s (%d bytes)", abs, len(png))
}

// TestStatusPageFollowsAPIListen: with api_listen the page is served
// there, like the API, and not on listen; without api_tokens, nowhere.
func TestStatusPageFollowsAPIListen(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, strings.Replace(apiConfig, "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:0\napi_listen: 127.0.0.1:0\n", 1))
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := noRedirect.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	if status, _ := get(d.base + "/"); status != http.StatusNotFound {
		t.Errorf("/ on listen with api_listen set: %d, want 404", status)
	}
	if status, loc := get("http://" + d.app.APIAddr() + "/"); status != http.StatusSeeOther || loc != "/login" {
		t.Errorf("/ on api_listen: %d %q, want 303 to /login", status, loc)
	}

	off := startDaemon(t, e2eConfig)
	for _, path := range []string{"/", "/login"} {
		if status, _ := get(off.base + path); status != http.StatusNotFound {
			t.Errorf("%s without api_tokens: %d, want 404", path, status)
		}
	}
}
