package e2e

// Accessibility checks: axe-core on every page, screenshots at phone and
// desktop widths, and a keyboard-only journey.
//
// testdata/axe.min.js is axe-core 4.14.1 from npm (https://github.com/dequelabs/axe-core),
// vendored unchanged. axe-core is licensed under the Mozilla Public License
// 2.0 (MPL-2.0); the file keeps its licence header, which must stay. To
// update it:
//
//	npm view axe-core version                  # the latest release
//	cd /tmp && npm pack axe-core@<version> && tar xzf axe-core-<version>.tgz
//	cp package/axe.min.js <repo>/e2e/testdata/axe.min.js
//
// then change the version above and run
// go test ./e2e/ -run 'Accessibility|Keyboard' -v: a newer axe may bring new
// rules, and so new violations.
//
// The pages' CSP allows no inline script, so axe is not added as a <script>:
// the tests evaluate its source through DevTools (Runtime.evaluate), which
// the page's CSP does not govern.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"shopfront/models"
)

// The viewports of the screenshots and of the layout checks.
var a11yViewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"phone", 390, 844, true},
	{"desktop", 1280, 900, false},
}

// TestAccessibility runs axe-core on every page of the shop, as a visitor, a
// guest with a cart, a registered customer and an admin, and fails on
// serious or critical violations. Minor and moderate ones are logged. Each
// page is checked at phone and desktop width, also for sideways scrolling, and
// photographed at both widths into $E2E_SCREENSHOTS when it is set.
func TestAccessibility(t *testing.T) {
	axeSource, err := os.ReadFile("testdata/axe.min.js")
	if err != nil {
		t.Fatalf("reading the vendored axe-core: %v", err)
	}
	s := startShop(t)
	const (
		customerEmail = "ada.a11y@example.com"
		adminEmail    = "admin.a11y@example.com"
		adminPassword = "an admin password that is long"
	)

	// Each part has its own browser, since a browser lives testTimeout at
	// most, and axe is slow on a busy machine.
	t.Run("visitor", func(t *testing.T) {
		tab := newIsolatedTab(t, newBrowser(t))
		a := &auditor{t: t, ctx: tab, axe: string(axeSource)}
		a.page("catalog", s.URL+"/")
		a.page("search", s.URL+"/?q=mug")
		a.page("search-none", s.URL+"/?q=zzzzzz")
		a.page("product", s.URL+"/products/"+mugSlug)
		a.page("cart-empty", s.URL+"/cart")
		a.page("account-visitor", s.URL+"/account")
		a.page("login", s.URL+"/login")
		a.page("forgot-password", s.URL+"/password/forgot")
		a.page("error-404", s.URL+"/products/no-such-product")
	})

	t.Run("guest", func(t *testing.T) {
		tab := newIsolatedTab(t, newBrowser(t))
		a := &auditor{t: t, ctx: tab, axe: string(axeSource)}
		acctAddWithJS(t, tab, s.URL, kettleSlug, kettleName, 2, "2 items")
		a.check("product-added") // the htmx status line and badge
		acctAddWithJS(t, tab, s.URL, mugSlug, mugName, 1, "3 items")
		a.page("cart-guest", s.URL+"/cart")
		a.page("account-guest", s.URL+"/account")
		a.page("login-guest", s.URL+"/login")

		// A bad address, then a good one: the form's error, then the flash.
		navigate(t, tab, s.URL+"/account")
		setValue(t, tab, "#email", "not an email")
		acctClickToPage(t, tab, `form[action="/account/promote"] button[type="submit"]`, "the answer to a bad address", "")
		a.check("account-guest-error")
		setValue(t, tab, "#email", customerEmail)
		acctClickToPage(t, tab, `form[action="/account/promote"] button[type="submit"]`,
			"the redirect after asking for the link", s.URL+"/account")
		a.check("account-guest-sent")

		link := acctPromoteLink(t, s.Mail, 1, customerEmail, s.URL)
		a.page("set-password", link)
		setValue(t, tab, "#password", acctPassword)
		setValue(t, tab, "#password_confirm", acctPassword)
		acctClickToPage(t, tab, `form[action="/account/password"] button[type="submit"]`,
			"the redirect after saving the password", s.URL+"/cart")
		a.check("cart-registered") // with the flash

		a.page("account-registered", s.URL+"/account")
		a.page("error-410-used-link", link)
		a.page("error-403-admin", s.URL+"/admin/users")
	})

	t.Run("admin", func(t *testing.T) {
		accounts := models.NewAccounts(s.DB, models.NewPasswords(), time.Hour)
		if _, err := accounts.CreateAdmin(context.Background(), adminEmail, adminPassword); err != nil {
			t.Fatalf("creating the admin: %v", err)
		}
		var customerID string
		if err := s.DB.Raw(`SELECT id::text FROM users WHERE email = ?`, customerEmail).Scan(&customerID).Error; err != nil || customerID == "" {
			// Without the guest part's customer, show the admin's own page.
			s.DB.Raw(`SELECT id::text FROM users WHERE email = ?`, adminEmail).Scan(&customerID)
			t.Errorf("no customer %s from the guest part (%v): the user page shows the admin", customerEmail, err)
		}

		tab := newIsolatedTab(t, newBrowser(t))
		a := &auditor{t: t, ctx: tab, axe: string(axeSource)}
		// /admin/users sends a visitor to the sign-in form, and back.
		navigate(t, tab, s.URL+"/admin/users")
		waitVisible(t, tab, `form[action="/login"] #password`)
		setValue(t, tab, "#email", adminEmail)
		setValue(t, tab, "#password", adminPassword)
		acctClickToPage(t, tab, `form[action="/login"] button[type="submit"]`,
			"the redirect to /admin/users after signing in", s.URL+"/admin/users")
		a.check("admin-users")
		a.page("admin-users-filtered", s.URL+"/admin/users?kind=guest&q=nobody")
		a.page("admin-user", s.URL+"/admin/users/"+customerID)
	})
}

// auditor checks the pages of one tab.
type auditor struct {
	t   *testing.T
	ctx context.Context
	axe string // the source of axe.min.js
}

// page loads url and checks it under the name name.
func (a *auditor) page(name, url string) {
	a.t.Helper()
	navigate(a.t, a.ctx, url)
	a.check(name)
}

// check runs axe on the loaded page at each viewport, checks that the page
// does not scroll sideways, and takes its screenshots.
func (a *auditor) check(name string) {
	t, ctx := a.t, a.ctx
	t.Helper()
	for _, vp := range a11yViewports {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
		if vp.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		do(t, ctx, "resizing to "+vp.name, chromedp.EmulateViewport(vp.width, vp.height, opts...))
		// Lazy images below the fold would be blank in a full-page shot.
		run(t, ctx, "loading the images", chromedp.Evaluate[bool](a11yImagesJS, chromedp.EvalAwaitPromise))

		a.axeCheck(name, vp.name)
		if wide := run(t, ctx, "measuring the page", chromedp.Evaluate[[]string](a11yOverflowJS)); len(wide) > 0 {
			t.Errorf("%s at %s width (%dpx) scrolls sideways; too wide:\n\t%s",
				name, vp.name, vp.width, strings.Join(wide, "\n\t"))
		}
		saveScreenshot(t, ctx, fmt.Sprintf("a11y-%s-%s.png", name, vp.name))
	}
}

// axeViolation is what the tests keep of an axe result.
type axeViolation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"` // minor, moderate, serious or critical
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target  []string `json:"target"`
		HTML    string   `json:"html"`
		Summary string   `json:"summary"`
	} `json:"nodes"`
}

// axeCheck runs axe on the page as it is, fails the test on serious and
// critical violations and logs the others.
func (a *auditor) axeCheck(name, viewport string) {
	t, ctx := a.t, a.ctx
	t.Helper()
	if !run(t, ctx, "looking for axe", chromedp.Evaluate[bool](`typeof window.axe?.run === "function"`)) {
		// The source defines window.axe; the last expression is the answer.
		js := a.axe + "\n;typeof window.axe?.run === \"function\""
		if !run(t, ctx, "injecting axe-core", chromedp.Evaluate[bool](js)) {
			fail(t, ctx, "injecting axe-core: window.axe is missing afterwards")
		}
	}
	res := run(t, ctx, "running axe on "+name, chromedp.Evaluate[struct {
		Passed     int            `json:"passed"`
		Violations []axeViolation `json:"violations"`
	}](a11yRunJS, chromedp.EvalAwaitPromise))
	if res.Passed == 0 {
		// A page where no rule passes is one that axe did not look at.
		fail(t, ctx, "axe on %s: no rule passed; did axe run?", name)
	}
	vs := res.Violations
	where := fmt.Sprintf("%s (%s, %s)", name, viewport, currentURL(ctx))
	for _, v := range vs {
		var targets []string
		for i, n := range v.Nodes {
			if i == 3 {
				targets = append(targets, fmt.Sprintf("… %d more", len(v.Nodes)-3))
				break
			}
			targets = append(targets, strings.Join(n.Target, " ")+"  "+n.HTML)
		}
		msg := fmt.Sprintf("%s: %s [%s] %s (%s)\n\t%s", where, v.ID, v.Impact, v.Help, v.HelpURL,
			strings.Join(targets, "\n\t"))
		if v.Impact == "serious" || v.Impact == "critical" {
			if len(v.Nodes) > 0 && v.Nodes[0].Summary != "" {
				msg += "\n\t" + strings.ReplaceAll(v.Nodes[0].Summary, "\n", "\n\t")
			}
			t.Errorf("axe: %s", msg)
		} else {
			t.Logf("axe (not failing): %s", msg)
		}
	}
}

// a11yRunJS runs every axe rule and keeps the violations, and how many
// rules passed.
const a11yRunJS = `axe.run(document, {resultTypes: ["violations"]}).then(r => ({passed: r.passes.length, violations: r.violations.map(v => ({
	id: v.id,
	impact: v.impact || "",
	help: v.help,
	helpUrl: v.helpUrl,
	nodes: v.nodes.map(n => ({
		target: n.target.map(s => Array.isArray(s) ? s.join(" >>> ") : String(s)),
		html: n.html.length > 160 ? n.html.slice(0, 160) + "…" : n.html,
		summary: n.failureSummary || "",
	})),
}))}))`

// a11yImagesJS loads every image now, and waits for them and two frames.
const a11yImagesJS = `Promise.all([...document.images].map(img => {
	img.loading = "eager";
	return img.decode().catch(() => {});
})).then(() => new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(() => ok(true)))))`

// a11yOverflowJS lists the innermost elements that stick out of the
// viewport on the right, when the page scrolls sideways. Elements inside a
// box that scrolls on its own are fine.
const a11yOverflowJS = `(() => {
	const w = document.documentElement.clientWidth;
	if (document.documentElement.scrollWidth <= w) return [];
	const scrolls = el => {
		// An absolutely positioned element escapes the scroll boxes between it
		// and its containing block: count it, as the browser does.
		if (["absolute", "fixed"].includes(getComputedStyle(el).position)) return false;
		for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
			const o = getComputedStyle(p).overflowX;
			if (o === "auto" || o === "scroll" || o === "hidden") return true;
		}
		return false;
	};
	const wide = [...document.body.querySelectorAll("*")].filter(el => {
		const r = el.getBoundingClientRect();
		return r.width > 0 && r.right > w + 1 && !scrolls(el);
	});
	const inner = wide.filter(el => !wide.some(o => o !== el && el.contains(o)));
	const desc = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
		[...el.classList].map(c => "." + c).join("") +
		" (right edge " + Math.round(el.getBoundingClientRect().right) + "px)";
	const out = inner.slice(0, 5).map(desc);
	if (out.length === 0) out.push("scrollWidth " + document.documentElement.scrollWidth + "px > " + w + "px");
	return out;
})()`

// TestKeyboardJourney: with only a keyboard, a visitor opens a product from
// the catalog, adds it to the cart, goes on to the cart and to /account, and
// asks for the link that saves the account. Every step checks where the
// focus is, and that it shows a focus ring.
func TestKeyboardJourney(t *testing.T) {
	browser := newBrowser(t)
	s := startShop(t)
	tab := newIsolatedTab(t, browser)
	const email = "kbd.user@example.com"

	// The catalog: Tab to the kettle's card (on the first page), Enter.
	navigate(t, tab, s.URL+"/")
	tabTo(t, tab, `.product-card a[href="/products/`+kettleSlug+`"]`, false, 40)
	kbdFollow(t, tab, s.URL+"/products/"+kettleSlug)
	expectEq(t, "product heading", text(t, tab, "main h1"), kettleName)

	// The quantity field, then the button: Enter adds through htmx.
	tabTo(t, tab, "#quantity", false, 20)
	tabTo(t, tab, `form.add-to-cart button[type="submit"]`, false, 3)
	markStale(t, tab, "#add-status")
	pressKey(t, tab, kb.Enter)
	v := waitFor(t, tab, "the htmx add after Enter", func(v pageState) bool { return v.AddStatus != "" })
	assertSamePage(t, v, s.URL+"/products/"+kettleSlug)
	expectEq(t, "status after the add", v.AddStatus, "Added "+kettleName+" to your cart. View cart")
	expectBadge(t, "after the add", v, "1 item")
	// The swap keeps the focus on the button, so that Tab goes on from there
	// (to "View cart") and not from the top of the page.
	expectFocus(t, tab, `form.add-to-cart button[type="submit"]`, "after the htmx add")

	// "View cart", Enter. (The product page's header is still the visitor's,
	// without "Save your cart": the add swaps only the badge.)
	tabTo(t, tab, `#add-status a[href="/cart"]`, false, 2)
	kbdFollow(t, tab, s.URL+"/cart")

	// The header's "Save your cart" link, Enter.
	tabTo(t, tab, `header a[href="/account"]`, false, 20)
	expectEq(t, "header account link of a guest", text(t, tab, `header a[href="/account"]`), "Save your cart")
	kbdFollow(t, tab, s.URL+"/account")

	// Tab to the email field, type, Enter submits.
	tabTo(t, tab, `form[action="/account/promote"] #email`, false, 20)
	pressKey(t, tab, email)
	if got := acctValue(t, tab, "#email"); got != email {
		t.Fatalf("the email field after typing = %q, want %q", got, email)
	}
	markStale(t, tab, "html")
	pressKey(t, tab, kb.Enter)
	v = waitFor(t, tab, "the redirect after asking for the link", func(v pageState) bool {
		return v.URL == s.URL+"/account"
	})
	if v.Kept {
		t.Fatal("Enter in the email field loaded no new page")
	}
	expectEq(t, "flash after asking for the link", v.Flash,
		"Check your inbox: we sent a link to "+email+". Open it to choose a password and save your cart.")
	expectBadge(t, "on /account after asking for the link", v, "1 item")
	acctPromoteLink(t, s.Mail, 1, email, s.URL)
}

// kbdFollow presses Enter on the focused link and waits for the page at url.
func kbdFollow(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	markStale(t, ctx, "html")
	pressKey(t, ctx, kb.Enter)
	v := waitFor(t, ctx, url+" after Enter", func(v pageState) bool { return v.URL == url })
	if v.Kept {
		fail(t, ctx, "Enter loaded no new page")
	}
}

// focusInfo describes document.activeElement.
type focusInfo struct {
	Matches bool   `json:"matches"` // it matches the wanted selector
	Desc    string `json:"desc"`    // tag, id, classes, href and text, for messages
	Visible bool   `json:"visible"` // it matches :focus-visible
	Ring    string `json:"ring"`    // what draws its focus ring, "" if nothing
}

// focusStateJS reads the focus; the first %s is the wanted selector, the
// second whether to wait first until the focus styles' transitions end. Pico draws the ring as an outline or a
// box-shadow on the element itself, or, for the controls of a [role=group]
// or [role=search], on the group around them. A ring must be at least 1px
// wide and not transparent.
const focusStateJS = `(async () => {
	const el = document.activeElement;
	if (!el || el === document.body) return {matches: false, desc: "(nothing: body)", visible: false, ring: ""};
	const group = el.parentElement && el.parentElement.closest("[role=group], [role=search]");
	if (%s) await Promise.all([el, group].filter(Boolean).flatMap(e => e.getAnimations()).map(a => a.finished.catch(() => {})));
	const opaque = color => !/^rgba\(.*,\s*0(\.0+)?\)$/.test(color) && color !== "transparent";
	const ring = e => {
		const cs = getComputedStyle(e);
		if (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 1 && opaque(cs.outlineColor))
			return "outline " + cs.outlineWidth + " " + cs.outlineStyle + " " + cs.outlineColor;
		// Each layer is a colour and up to four lengths; the fourth is the spread.
		for (const layer of cs.boxShadow.split(/,(?![^(]*\))/)) {
			const color = (layer.match(/rgba?\([^)]*\)/) || [""])[0];
			const px = (layer.match(/-?[\d.]+px/g) || []).map(parseFloat);
			if (!layer.includes("inset") && px.length >= 4 && px[3] >= 1 && opaque(color)) return "box-shadow " + layer.trim();
		}
		return "";
	};
	let r = ring(el);
	if (!r && group && ring(group)) r = "on its group: " + ring(group);
	const txt = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().replace(/\s+/g, " ").slice(0, 40);
	return {
		matches: el.matches(%s),
		desc: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + [...el.classList].map(c => "." + c).join("") +
			(el.getAttribute("href") ? "[href=" + el.getAttribute("href") + "]" : "") + (txt ? " " + JSON.stringify(txt) : ""),
		visible: el.matches(":focus-visible"),
		ring: r,
	};
})()`

// focusState reads the focus; the ring only once it is drawn when settle.
func focusState(t *testing.T, ctx context.Context, sel string, settle bool) focusInfo {
	t.Helper()
	js := fmt.Sprintf(focusStateJS, strconv.FormatBool(settle), strconv.Quote(sel))
	return run(t, ctx, "reading the focus", chromedp.Evaluate[focusInfo](js, chromedp.EvalAwaitPromise))
}

// tabTo presses Tab (Shift+Tab when back) until the focused element matches
// sel, at most max times, and checks that its focus is visible.
func tabTo(t *testing.T, ctx context.Context, sel string, back bool, max int) {
	t.Helper()
	key := "Tab"
	if back {
		key = "Shift+Tab"
	}
	var path []string
	for range max {
		if back {
			do(t, ctx, "pressing Shift+Tab", chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
		} else {
			pressKey(t, ctx, kb.Tab)
		}
		f := focusState(t, ctx, sel, false)
		path = append(path, f.Desc)
		if f.Matches {
			expectFocus(t, ctx, sel, fmt.Sprintf("after %d × %s", len(path), key))
			return
		}
	}
	fail(t, ctx, "%d × %s never reached %s; the focus went:\n\t%s", max, key, sel, strings.Join(path, "\n\t"))
}

// expectFocus checks that sel has the focus and shows it; it gives a page
// script that moves the focus a moment.
func expectFocus(t *testing.T, ctx context.Context, sel, when string) {
	t.Helper()
	var f focusInfo
	for range 10 {
		if f = focusState(t, ctx, sel, true); f.Matches && f.Visible && f.Ring != "" {
			t.Logf("%s: focus on %s, ring: %s", when, f.Desc, f.Ring)
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	switch {
	case !f.Matches:
		fail(t, ctx, "%s: the focus is on %s, want %s", when, f.Desc, sel)
	case !f.Visible:
		fail(t, ctx, "%s: %s has the focus but does not match :focus-visible", when, f.Desc)
	default:
		fail(t, ctx, "%s: %s has the focus but shows no focus ring", when, f.Desc)
	}
}
