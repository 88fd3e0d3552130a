package e2e

// Browser-test harness on chromedp v0.23.0. That version has the typed API:
// chromedp.Do(ctx, steps...) runs actions that return nothing, and
// chromedp.Run(ctx, action) runs one action and returns its value. The type of
// a selector chooses the lookup, so every helper here wraps its string in
// chromedp.CSS (DOM.querySelector); a plain string would be a DOM.performSearch
// that also matches text and XPath.
//
// Every context that the helpers get must come from newBrowser, newTab or
// newIsolatedTab. Those start their tab before they return, which matters:
// chromedp binds the life of a tab to the context of its first Run, and the
// helpers run each action under a short child timeout.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

const (
	chromiumPath = "/usr/bin/chromium"

	// testTimeout bounds everything that one test does in its browser.
	testTimeout = 60 * time.Second

	// actionTimeout bounds one helper call, so that a selector that never
	// matches fails in seconds and not at the end of testTimeout.
	actionTimeout = 15 * time.Second
)

// newBrowser starts a headless Chromium for this test and returns the context
// of its first tab. The browser, its profile and its tabs go away in
// t.Cleanup. It skips the test, loudly, when Chromium is not installed, and
// fails it instead when E2E_REQUIRE_BROWSER is set.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := "Chromium not installed at " + chromiumPath +
			"; browser tests did not run (apt-get install -y chromium)"
		if os.Getenv("E2E_REQUIRE_BROWSER") != "" {
			// CI sets this, so that a missing browser cannot pass as green.
			t.Fatal("FAILED: " + msg + "; E2E_REQUIRE_BROWSER is set")
		}
		msg = "SKIPPED: " + msg
		// t.Skip output is hidden without -v; a skipped suite must not look
		// like a passing one. Note that `go test ./e2e/` (package list mode)
		// still hides all output of a passing package, stderr included.
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}

	timeout := testTimeout
	if d, ok := t.Deadline(); ok && time.Until(d)-5*time.Second < timeout {
		// Fail with our own message before `go test -timeout` panics.
		timeout = time.Until(d) - 5*time.Second
	}
	profile := t.TempDir()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // Chromium refuses to run as root with a sandbox.
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		// The network here is closed: keep Chromium from phoning home, which
		// only adds noise and delays.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
	)
	// A test-scoped deadline on the root context, not on single calls: the
	// first Run ties the browser's life to its context.
	rootCtx, cancelRoot := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(rootCtx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
		cancelRoot()
		// Chromium helpers can still write to the profile for a moment after
		// the browser exits; t.TempDir's own RemoveAll would then fail the
		// test with "directory not empty".
		removeAllRetry(t, profile)
	})
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting Chromium %s: %v", chromiumPath, err)
	}
	return browserCtx
}

func removeAllRetry(t *testing.T, dir string) {
	t.Helper()
	var err error
	for range 50 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("removing the browser profile %s: %v", dir, err)
}

// newTab opens another tab in the same browser context as browserCtx, so it
// shares cookies, local storage and cache with it. The tab closes in
// t.Cleanup, before the browser does.
func newTab(t *testing.T, browserCtx context.Context) context.Context {
	t.Helper()
	return startTab(t, browserCtx)
}

// newIsolatedTab opens a tab in a new, empty browser context: the CDP
// equivalent of a fresh incognito window. It shares no cookies or storage
// with any other tab, and later newTab calls on the returned context open
// tabs in the same isolated context. Use it for a second user, or to prove
// that a journey works from a clean jar. The browser context is disposed of
// with the tab.
func newIsolatedTab(t *testing.T, browserCtx context.Context) context.Context {
	t.Helper()
	return startTab(t, browserCtx, chromedp.WithNewBrowserContext())
}

func startTab(t *testing.T, parent context.Context, opts ...chromedp.ContextOption) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	// Start the tab now, under the test context and not under a helper's
	// short action timeout, which would close the tab when it ends.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return ctx
}

// disableJS turns off page scripts in this tab, for this and every later
// document, like the "Disable JavaScript" switch of DevTools. Call it before
// navigate. The helpers still work, because DevTools evaluation is not page
// script.
func disableJS(t *testing.T, ctx context.Context) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	_, err := chromedp.Call(actx, emulation.SetScriptExecutionDisabled,
		emulation.SetScriptExecutionDisabledParams{Value: true})
	if err != nil {
		fail(t, ctx, "disabling JavaScript: %v", err)
	}
}

// navigate loads url and waits for its load event. It fails on a network
// error, but not on an HTTP error status: journeys assert on the page.
func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	do(t, ctx, "navigating to "+url, chromedp.Navigate(url))
}

// text returns the rendered text (innerText) of the first element that
// matches sel; it is "" when that element is hidden. It waits for sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return run(t, ctx, "reading the text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// click waits until the first match of sel is visible and clicks its centre
// with real mouse events. It does not wait for a navigation that the click
// starts: follow it with waitVisible on something of the next page.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	do(t, ctx, "clicking "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// setValue replaces the value of the first input, textarea or select that
// matches sel. It sets the property and fires no input or change event; use
// click and pressKey when a page script must see typing.
func setValue(t *testing.T, ctx context.Context, sel, v string) {
	t.Helper()
	if v == "" {
		// chromedp v0.23 leaves an empty argument out of the call, so the
		// element would get "undefined": clear it instead.
		do(t, ctx, "clearing the value of "+sel, chromedp.Clear(chromedp.CSS(sel)))
		return
	}
	do(t, ctx, "setting the value of "+sel, chromedp.SetValue(chromedp.CSS(sel), v))
}

// submit submits the form that contains the first match of sel (or that is
// it), and waits until the next page has loaded. Like form.submit(), it skips
// submit handlers and HTML validation; click the submit button to test those.
func submit(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	// The load event must be subscribed to before the submit, or a fast
	// server can load the next page before we listen.
	_, err := chromedp.Run(actx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Submit(chromedp.CSS(sel))))
	if err != nil {
		fail(t, ctx, "submitting the form of %s: %v", sel, explain(err))
	}
}

// waitVisible waits until the first match of sel is in the DOM and visible.
func waitVisible(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	do(t, ctx, "waiting for "+sel+" to be visible", chromedp.WaitVisible(chromedp.CSS(sel)))
}

// location returns the URL of the current document.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	return run(t, ctx, "reading the location", chromedp.Location())
}

// count returns how many elements match sel. Unlike the other helpers it
// does not wait for a match, so 0 is an answer and not a timeout.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	ids := run(t, ctx, "counting "+sel, chromedp.QueryNodeIDs(chromedp.CSSAll(sel), chromedp.AtLeast(0)))
	return len(ids)
}

// screenshot writes a PNG of the whole page, beyond the viewport, to path.
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png := run(t, ctx, "taking a screenshot", chromedp.FullScreenshot(100)) // 100 means PNG
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("writing the screenshot: %v", err)
	}
}

// cookies returns every cookie of the tab's browser context, for every site
// and including HttpOnly ones, not only those of the current URL.
func cookies(t *testing.T, ctx context.Context) []*network.Cookie {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	// Network.getCookies would filter by the current URL, and
	// Storage.getCookies on the tab's own session reads the default jar even
	// in an isolated tab; so ask the browser, naming the tab's context.
	res, err := chromedp.CallBrowser(actx, storage.GetCookies,
		storage.GetCookiesParams{BrowserContextID: browserContextID(ctx)})
	if err != nil {
		fail(t, ctx, "reading the cookies: %v", explain(err))
	}
	return res.Cookies
}

// setCookies puts cookies, as cookies returned them, into the jar of the
// tab's browser context. Use it to carry a session into a newIsolatedTab.
func setCookies(t *testing.T, ctx context.Context, cs []*network.Cookie) {
	t.Helper()
	params := make([]*network.CookieParam, len(cs))
	for i, c := range cs {
		params[i] = &network.CookieParam{
			Name: c.Name, Value: c.Value, Domain: c.Domain, Path: c.Path,
			Secure: c.Secure, HTTPOnly: c.HTTPOnly, SameSite: c.SameSite,
			Priority: c.Priority, SourceScheme: c.SourceScheme,
			SourcePort: c.SourcePort, PartitionKey: c.PartitionKey,
		}
		if !c.Session {
			// Left out, the cookie would become a session cookie.
			params[i].Expires = cdp.TimeSinceEpoch(c.Expires)
		}
	}
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	_, err := chromedp.CallBrowser(actx, storage.SetCookies,
		storage.SetCookiesParams{Cookies: params, BrowserContextID: browserContextID(ctx)})
	if err != nil {
		fail(t, ctx, "setting %d cookies: %v", len(cs), explain(err))
	}
}

// browserContextID is "" for the default browser context, which the browser
// endpoint takes as the default jar.
func browserContextID(ctx context.Context) cdp.BrowserContextID {
	return chromedp.FromContext(ctx).BrowserContextID
}

// pressKey sends key presses to the focused element, as a user's keyboard
// would: each rune of key is one key, so pass kb.Tab, kb.Enter, kb.Escape or
// plain text ("abc" types three keys). It does not wait for a navigation
// that the key starts.
func pressKey(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	do(t, ctx, fmt.Sprintf("pressing %q", key), chromedp.KeyEvent(key))
}

// do runs steps under the action timeout and fails the test on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(actx, steps...); err != nil {
		fail(t, ctx, "%s: %v", what, explain(err))
	}
}

// run runs one action under the action timeout and returns its value.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(actx, a)
	if err != nil {
		fail(t, ctx, "%s: %v", what, explain(err))
	}
	return v
}

// explain turns the bare timeout of a query that never matched into a hint.
func explain(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (no match, or the page never loaded, within %s)", err, actionTimeout)
	}
	return err
}

// fail ends the test with msg and the URL that the tab shows.
func fail(t *testing.T, ctx context.Context, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s [at %s]", fmt.Sprintf(format, args...), currentURL(ctx))
}

// currentURL is the URL of the tab, or why it is unknown. It must not fail:
// it runs while a test is failing, possibly after ctx expired (hence
// WithoutCancel), with page scripts off, or on a Chrome error page that no
// longer answers page commands (hence the browser's target list).
func currentURL(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	c := chromedp.FromContext(ctx)
	if c == nil || c.Target == nil {
		return "unknown URL: no tab"
	}
	res, err := chromedp.CallBrowser(ctx, target.GetTargetInfo,
		target.GetTargetInfoParams{TargetID: c.Target.TargetID})
	if err != nil {
		return "unknown URL: " + err.Error()
	}
	if res.TargetInfo.URL == "" {
		return "no URL: the tab shows no page, e.g. after a failed navigation"
	}
	return res.TargetInfo.URL
}
