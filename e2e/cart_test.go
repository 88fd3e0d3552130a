package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The seeded products of the cart journeys, with their seeded prices.
const (
	kettleSlug = "enamel-tea-kettle"
	kettleName = "Enamel Tea Kettle" // €59.00
	mugSlug    = "stoneware-mug"
	mugName    = "Stoneware Mug" // €18.50
)

// TestGuestCartJourney: with JavaScript, a visitor fills a cart through htmx
// on the product pages, changes and removes lines in place on /cart, and
// finds the cart again in a new browser context that has only the cookie jar.
// A visitor without the jar never sees it.
func TestGuestCartJourney(t *testing.T) {
	browser := newBrowser(t)
	s := startShop(t)
	tab := newIsolatedTab(t, browser)

	// First add: two kettles, swapped into #add-status and the header badge
	// without leaving the product page.
	navigate(t, tab, s.URL+"/products/"+kettleSlug)
	if got := text(t, tab, "h1"); got != kettleName {
		t.Fatalf("product heading = %q, want %q", got, kettleName)
	}
	expectBadge(t, "a new visitor", snapshot(t, tab), "")
	setValue(t, tab, "#quantity", "2")
	markStale(t, tab, "#add-status")
	click(t, tab, `form.add-to-cart button[type="submit"]`)
	v := waitFor(t, tab, "the htmx add of 2 kettles", func(v pageState) bool {
		return v.AddStatus != ""
	})
	assertSamePage(t, v, s.URL+"/products/"+kettleSlug)
	expectEq(t, "status after the first add", v.AddStatus, "Added "+kettleName+" to your cart. View cart")
	expectBadge(t, "after the first add", v, "2 items")
	if n := count(t, tab, `#add-status a[href="/cart"]`); n != 1 {
		t.Fatalf("status after the add has %d \"View cart\" links, want 1", n)
	}

	// Second add: one mug, on a freshly loaded page whose badge the server
	// renders.
	navigate(t, tab, s.URL+"/products/"+mugSlug)
	expectBadge(t, "on the next product page", snapshot(t, tab), "2 items")
	markStale(t, tab, "#add-status")
	click(t, tab, `form.add-to-cart button[type="submit"]`)
	v = waitFor(t, tab, "the htmx add of a mug", func(v pageState) bool {
		return v.AddStatus != ""
	})
	assertSamePage(t, v, s.URL+"/products/"+mugSlug)
	expectEq(t, "status after the second add", v.AddStatus, "Added "+mugName+" to your cart. View cart")
	expectBadge(t, "after the second add", v, "3 items")

	// The cart, reached through the status line's link.
	click(t, tab, `#add-status a[href="/cart"]`)
	waitVisible(t, tab, "#cart-lines table.cart")
	v = snapshot(t, tab)
	expectEq(t, "cart location", v.URL, s.URL+"/cart")
	expectCart(t, "the cart after two adds", v, []wantLine{
		{kettleName, 2, "€59.00", "€118.00"},
		{mugName, 1, "€18.50", "€18.50"},
	}, "Total (3 items)", "€136.50", "3 items")
	if v.Banner == "" {
		t.Error("a guest's cart shows no \"Save your cart\" banner")
	}
	saveScreenshot(t, tab, "cart-js.png")

	// Three mugs: the table is swapped in place, badge out of band.
	mugID := v.Lines[1].ID
	setValue(t, tab, "#qty-"+mugID, "3")
	markStale(t, tab, "#cart-lines")
	click(t, tab, `form.qty-form[action="/cart/items/`+mugID+`"] button[type="submit"]`)
	v = waitFor(t, tab, "the htmx quantity update", func(v pageState) bool {
		return v.HasCartLines
	})
	assertSamePage(t, v, s.URL+"/cart")
	expectCart(t, "the cart after the update", v, []wantLine{
		{kettleName, 2, "€59.00", "€118.00"},
		{mugName, 3, "€18.50", "€55.50"},
	}, "Total (5 items)", "€173.50", "5 items")

	// Remove the kettles.
	markStale(t, tab, "#cart-lines")
	click(t, tab, `#cart-lines button.remove[aria-label="Remove `+kettleName+`"]`)
	v = waitFor(t, tab, "the htmx removal", func(v pageState) bool {
		return v.HasCartLines
	})
	assertSamePage(t, v, s.URL+"/cart")
	afterRemove := []wantLine{{mugName, 3, "€18.50", "€55.50"}}
	expectCart(t, "the cart after the removal", v, afterRemove, "Total (3 items)", "€55.50", "3 items")

	// The same cart comes back from the cookie jar alone, in a new context,
	// after the first one is gone.
	jar := cookies(t, tab)
	expectSessionCookie(t, jar)
	closeTab(t, tab)
	reopenCart(t, browser, s.URL, jar, false, afterRemove, "Total (3 items)", "€55.50", "3 items")

	// A visitor without the jar has an empty cart.
	strangerSeesEmptyCart(t, browser, s.URL, false)
}

// TestGuestCartJourneyWithoutJS: the same journey with page scripts off, so
// every action is a plain form post answered with a 303 to /cart and a flash.
func TestGuestCartJourneyWithoutJS(t *testing.T) {
	browser := newBrowser(t)
	s := startShop(t)
	tab := newIsolatedTab(t, browser)
	disableJS(t, tab)

	// First add: two kettles; the post lands on /cart.
	navigate(t, tab, s.URL+"/products/"+kettleSlug)
	if got := text(t, tab, "h1"); got != kettleName {
		t.Fatalf("product heading = %q, want %q", got, kettleName)
	}
	setValue(t, tab, "#quantity", "2")
	markStale(t, tab, "html")
	click(t, tab, `form.add-to-cart button[type="submit"]`)
	v := waitFor(t, tab, "the redirect to /cart after the first add", func(v pageState) bool {
		return v.URL == s.URL+"/cart"
	})
	if v.Kept {
		t.Fatal("the add did not load a new page: did htmx run with JavaScript off?")
	}
	expectEq(t, "flash after the first add", v.Flash, "Added "+kettleName+" to your cart.")
	expectCart(t, "the cart after the first add", v, []wantLine{
		{kettleName, 2, "€59.00", "€118.00"},
	}, "Total (2 items)", "€118.00", "2 items")

	// Second add: one mug.
	navigate(t, tab, s.URL+"/products/"+mugSlug)
	expectBadge(t, "on the next product page", snapshot(t, tab), "2 items")
	markStale(t, tab, "html")
	click(t, tab, `form.add-to-cart button[type="submit"]`)
	v = waitFor(t, tab, "the redirect to /cart after the second add", func(v pageState) bool {
		return v.URL == s.URL+"/cart"
	})
	expectEq(t, "flash after the second add", v.Flash, "Added "+mugName+" to your cart.")
	expectCart(t, "the cart after two adds", v, []wantLine{
		{kettleName, 2, "€59.00", "€118.00"},
		{mugName, 1, "€18.50", "€18.50"},
	}, "Total (3 items)", "€136.50", "3 items")
	saveScreenshot(t, tab, "cart-nojs.png")

	// The flash is shown once.
	navigate(t, tab, s.URL+"/cart")
	if v := snapshot(t, tab); v.Flash != "" {
		t.Fatalf("flash on reloading /cart = %q, want none", v.Flash)
	}

	// Three mugs.
	mugID := v.Lines[1].ID
	setValue(t, tab, "#qty-"+mugID, "3")
	markStale(t, tab, "html")
	click(t, tab, `form.qty-form[action="/cart/items/`+mugID+`"] button[type="submit"]`)
	v = waitFor(t, tab, "the reload after the update", func(v pageState) bool { return true })
	expectEq(t, "location after the update", v.URL, s.URL+"/cart")
	expectEq(t, "flash after the update", v.Flash, "Your cart was updated.")
	expectCart(t, "the cart after the update", v, []wantLine{
		{kettleName, 2, "€59.00", "€118.00"},
		{mugName, 3, "€18.50", "€55.50"},
	}, "Total (5 items)", "€173.50", "5 items")

	// Remove the kettles.
	markStale(t, tab, "html")
	click(t, tab, `#cart-lines button.remove[aria-label="Remove `+kettleName+`"]`)
	v = waitFor(t, tab, "the reload after the removal", func(v pageState) bool { return true })
	expectEq(t, "location after the removal", v.URL, s.URL+"/cart")
	expectEq(t, "flash after the removal", v.Flash, "The product was removed from your cart.")
	afterRemove := []wantLine{{mugName, 3, "€18.50", "€55.50"}}
	expectCart(t, "the cart after the removal", v, afterRemove, "Total (3 items)", "€55.50", "3 items")

	jar := cookies(t, tab)
	expectSessionCookie(t, jar)
	closeTab(t, tab)
	reopenCart(t, browser, s.URL, jar, true, afterRemove, "Total (3 items)", "€55.50", "3 items")

	strangerSeesEmptyCart(t, browser, s.URL, true)
}

// reopenCart opens /cart in a new, empty browser context that gets only jar,
// and expects the cart there.
func reopenCart(t *testing.T, browser context.Context, base string, jar []*network.Cookie, noJS bool,
	lines []wantLine, totalLabel, total, badge string) {
	t.Helper()
	again := newIsolatedTab(t, browser)
	if noJS {
		disableJS(t, again)
	}
	if n := len(cookies(t, again)); n != 0 {
		t.Fatalf("a new isolated context has %d cookies, want 0", n)
	}
	setCookies(t, again, jar)
	navigate(t, again, base+"/cart")
	expectCart(t, "the cart reopened with the cookie jar", snapshot(t, again), lines, totalLabel, total, badge)
}

// strangerSeesEmptyCart opens /cart in a new browser context without cookies.
func strangerSeesEmptyCart(t *testing.T, browser context.Context, base string, noJS bool) {
	t.Helper()
	stranger := newIsolatedTab(t, browser)
	if noJS {
		disableJS(t, stranger)
	}
	navigate(t, stranger, base+"/cart")
	v := snapshot(t, stranger)
	if len(v.Lines) != 0 || v.Total != "" {
		t.Fatalf("a visitor without cookies sees %d cart lines (total %q), want none", len(v.Lines), v.Total)
	}
	if !strings.Contains(v.Empty, "Your cart is empty.") {
		t.Fatalf("a visitor without cookies: empty-cart text = %q, want \"Your cart is empty.\"", v.Empty)
	}
	expectBadge(t, "a visitor without cookies", v, "")
	expectEq(t, "banner of a visitor without cookies", v.Banner, "")
	for _, c := range cookies(t, stranger) {
		if c.Name == "sid" {
			t.Fatal("viewing an empty cart gave the visitor a session cookie")
		}
	}
}

// closeTab closes a tab of newIsolatedTab, and with it its browser context.
func closeTab(t *testing.T, ctx context.Context) {
	t.Helper()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), actionTimeout)
	defer cancel()
	if err := chromedp.Cancel(cctx); err != nil {
		t.Fatalf("closing the tab: %v", err)
	}
}

// expectSessionCookie checks that jar holds the guest's HttpOnly sid cookie.
func expectSessionCookie(t *testing.T, jar []*network.Cookie) {
	t.Helper()
	for _, c := range jar {
		if c.Name == "sid" {
			if c.Value == "" || !c.HTTPOnly || c.Session {
				t.Fatalf("sid cookie: value %q, HttpOnly %t, session-only %t; want a persistent HttpOnly token",
					c.Value, c.HTTPOnly, c.Session)
			}
			return
		}
	}
	names := make([]string, len(jar))
	for i, c := range jar {
		names[i] = c.Name
	}
	t.Fatalf("no sid cookie after adding to the cart; cookies: %v", names)
}

// saveScreenshot writes a full-page PNG named name into the directory
// $E2E_SCREENSHOTS, and does nothing when that variable is unset.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("E2E_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating the screenshot directory: %v", err)
	}
	screenshot(t, ctx, filepath.Join(dir, name))
	t.Logf("screenshot: %s", filepath.Join(dir, name))
}

// pageState is what the journeys read of a page, read in one evaluation so
// that an htmx swap cannot tear it.
type pageState struct {
	URL          string    `json:"url"`
	Ready        string    `json:"ready"`     // document.readyState
	Stale        bool      `json:"stale"`     // an element markStale marked is still there
	Kept         bool      `json:"kept"`      // the window of markStale is still there
	HasCartLines bool      `json:"hasLines"`  // #cart-lines is there
	Lines        []cartRow `json:"lines"`     // the rows of the cart table
	TotalLabel   string    `json:"totalText"` // "Total (3 items)"
	Total        string    `json:"total"`
	Empty        string    `json:"empty"`     // the empty cart's text
	Badge        string    `json:"badge"`     // header badge's textContent, as a screen reader has it; "" when hidden
	Flash        string    `json:"flash"`     // the layout's flash message
	AddStatus    string    `json:"addStatus"` // #add-status on a product page
	Banner       string    `json:"banner"`    // the guest's "Save your cart" banner
}

type cartRow struct {
	ID    string `json:"id"`    // product ID, from the quantity input's id
	Name  string `json:"name"`  // the product link's text
	Qty   string `json:"qty"`   // the quantity input's value attribute, as rendered
	Price string `json:"price"` // unit price
	Line  string `json:"line"`  // line total
}

const pageStateJS = `(() => {
	const txt = el => el ? el.innerText.trim().replace(/\s+/g, " ") : "";
	const q = s => document.querySelector(s);
	const badge = q("#cart-badge");
	const rows = [...document.querySelectorAll("#cart-lines table.cart tbody tr")].map(tr => {
		const input = tr.querySelector("input[name=quantity]");
		const nums = tr.querySelectorAll("td.num");
		return {
			id: input ? input.id.replace(/^qty-/, "") : "",
			name: txt(tr.querySelector(".cart-product a")),
			qty: input ? (input.getAttribute("value") || "") : "",
			price: txt(nums[0]),
			line: txt(nums[1]),
		};
	});
	return {
		url: location.href,
		ready: document.readyState,
		stale: !!q("[data-e2e-stale]"),
		kept: window.__e2eKept === true,
		hasLines: !!q("#cart-lines"),
		lines: rows,
		totalText: txt(q("#cart-lines tfoot th")),
		total: txt(q("#cart-lines tfoot .total")),
		empty: txt(q("#cart-lines .empty")),
		badge: badge && badge.checkVisibility() ? badge.textContent.trim().replace(/\s+/g, " ") : "",
		flash: txt(q("main > .flash")),
		addStatus: txt(q("#add-status")),
		banner: txt(q("main > .banner")),
	};
})()`

func readState(ctx context.Context) (pageState, error) {
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return chromedp.Run(actx, chromedp.Evaluate[pageState](pageStateJS))
}

// snapshot reads the state of the loaded page now.
func snapshot(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	v, err := readState(ctx)
	if err != nil {
		fail(t, ctx, "reading the page: %v", err)
	}
	return v
}

// markStale marks the element sel, which the next action replaces (an htmx
// swap target, or "html" for a page load), and the window; waitFor waits
// until the marked element is gone.
func markStale(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		if (!el) return false;
		el.setAttribute("data-e2e-stale", "");
		window.__e2eKept = true;
		return true;
	})()`, strconv.Quote(sel))
	if !run(t, ctx, "marking "+sel, chromedp.Evaluate[bool](js)) {
		fail(t, ctx, "marking %s: no such element", sel)
	}
}

// waitFor polls the page until what markStale marked is replaced, the
// document has loaded and ok holds, and returns that state.
func waitFor(t *testing.T, ctx context.Context, what string, ok func(pageState) bool) pageState {
	t.Helper()
	deadline := time.Now().Add(actionTimeout)
	var (
		v   pageState
		err error
	)
	for time.Now().Before(deadline) {
		// Errors are expected while a navigation swaps the document.
		if v, err = readState(ctx); err == nil && !v.Stale && v.Ready == "complete" && ok(v) {
			return v
		}
		time.Sleep(50 * time.Millisecond)
	}
	fail(t, ctx, "waiting for %s: timed out after %s; last state %+v, last error %v", what, actionTimeout, v, err)
	return v
}

// assertSamePage checks that an htmx action kept the page (no reload, same
// URL).
func assertSamePage(t *testing.T, v pageState, url string) {
	t.Helper()
	if !v.Kept {
		t.Fatal("the page was reloaded: htmx did not handle the form")
	}
	expectEq(t, "location after an htmx action", v.URL, url)
}

type wantLine struct {
	name        string
	qty         int
	price, line string
}

// expectCart checks the cart table line by line, its footer and the badge.
func expectCart(t *testing.T, what string, v pageState, want []wantLine, totalLabel, total, badge string) {
	t.Helper()
	if len(v.Lines) != len(want) {
		t.Fatalf("%s: %d lines %+v, want %d", what, len(v.Lines), v.Lines, len(want))
	}
	var bad []string
	for i, w := range want {
		got := v.Lines[i]
		if got.Name != w.name || got.Qty != strconv.Itoa(w.qty) || got.Price != w.price || got.Line != w.line {
			bad = append(bad, fmt.Sprintf("line %d = %s ×%s at %s = %s, want %s ×%d at %s = %s",
				i+1, got.Name, got.Qty, got.Price, got.Line, w.name, w.qty, w.price, w.line))
		}
		if got.ID == "" {
			bad = append(bad, fmt.Sprintf("line %d has no quantity input id", i+1))
		}
	}
	if v.TotalLabel != totalLabel || v.Total != total {
		bad = append(bad, fmt.Sprintf("footer = %q %q, want %q %q", v.TotalLabel, v.Total, totalLabel, total))
	}
	if v.Empty != "" {
		bad = append(bad, fmt.Sprintf("shows the empty cart (%q) next to its lines", v.Empty))
	}
	if len(bad) > 0 {
		t.Fatalf("%s:\n\t%s", what, strings.Join(bad, "\n\t"))
	}
	expectBadge(t, what, v, badge)
}

// expectBadge checks the header's cart badge. A wrong badge fails the test
// but does not stop the journey, so that one run shows every cart problem.
func expectBadge(t *testing.T, what string, v pageState, want string) {
	t.Helper()
	if v.Badge != want {
		t.Errorf("%s: header badge = %q, want %q", what, v.Badge, want)
	}
}

func expectEq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}
