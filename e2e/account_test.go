package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"shopfront/mailer/mailtest"
)

// A third seeded product, for the second visitor's cart.
const (
	boardSlug = "oak-cutting-board"
	boardName = "Oak Cutting Board" // €45.00
)

// acctPassword is long enough for the 12-character minimum.
const acctPassword = "correct horse battery staple"

// acctMailTimeout bounds the wait for the outbox worker to deliver a mail.
const acctMailTimeout = 10 * time.Second

// acctLinkRE finds the set-password link on a line of its own in the mail's
// text body.
var acctLinkRE = regexp.MustCompile(`(?m)^(\S+/account/password\?token=(\S+))$`)

// TestSaveAccountJourney: with JavaScript, a guest fills a cart, saves the
// account from /account with an email, opens the emailed link, chooses a
// password and lands on the same cart as a signed-in customer; signs out;
// then a second visitor with a cart of their own signs in to that account
// and finds both carts merged.
func TestSaveAccountJourney(t *testing.T) {
	browser := newBrowser(t)
	s := startShop(t)
	tab := newIsolatedTab(t, browser)
	const email = "ada.lovelace@example.com"

	// A guest's cart: two kettles and a mug, through htmx.
	acctAddWithJS(t, tab, s.URL, kettleSlug, kettleName, 2, "2 items")
	acctAddWithJS(t, tab, s.URL, mugSlug, mugName, 1, "3 items")
	guestSID := acctCookie(t, tab, "sid")
	if guestSID == "" {
		t.Fatal("no sid cookie after adding to the cart")
	}

	// The header invites the guest to save the cart; /account has the form.
	navigate(t, tab, s.URL+"/")
	click(t, tab, `header a[href="/account"]`)
	waitVisible(t, tab, `form[action="/account/promote"] #email`)
	expectEq(t, "/account location", location(t, tab), s.URL+"/account")
	expectEq(t, "header account link of a guest", text(t, tab, `header a[href="/account"]`), "Save your cart")
	expectEq(t, "/account heading", text(t, tab, "main h1"), "Your account")
	expectEq(t, "guest form heading", text(t, tab, "main article h2"), "Save your cart")
	if n := count(t, tab, `form[action="/account/promote"] input[name="_csrf"][type="hidden"]`); n != 1 {
		t.Fatalf("the save-your-cart form has %d CSRF fields, want 1", n)
	}
	saveScreenshot(t, tab, "account-guest.png")

	// Ask for the link: a plain form post, answered with a 303 to /account.
	setValue(t, tab, "#email", email)
	v := acctClickToPage(t, tab, `form[action="/account/promote"] button[type="submit"]`,
		"the redirect after asking for the link", s.URL+"/account")
	expectEq(t, "flash after asking for the link", v.Flash,
		"Check your inbox: we sent a link to "+email+". Open it to choose a password and save your cart.")
	expectBadge(t, "on /account after asking for the link", v, "3 items")
	if acctCookie(t, tab, "sid") != guestSID {
		t.Error("asking for the link changed the guest's session cookie")
	}

	// The mail, delivered by the outbox worker.
	link := acctPromoteLink(t, s.Mail, 1, email, s.URL)

	// The link shows the set-password form and uses nothing yet.
	navigate(t, tab, link)
	waitVisible(t, tab, "#password")
	expectEq(t, "set-password heading", text(t, tab, "main h1"), "Save your account")
	expectContains(t, "set-password page", text(t, tab, "main article"),
		"Choose a password for "+email+". Your cart stays as it is.")
	for _, sel := range []string{"#password_confirm", `form[action="/account/password"] button[type="submit"]`} {
		if n := count(t, tab, sel); n != 1 {
			t.Fatalf("set-password page: %d matches of %s, want 1", n, sel)
		}
	}
	saveScreenshot(t, tab, "set-password.png")

	// Save the password: a 303 to the same cart, now the customer's.
	setValue(t, tab, "#password", acctPassword)
	setValue(t, tab, "#password_confirm", acctPassword)
	v = acctClickToPage(t, tab, `form[action="/account/password"] button[type="submit"]`,
		"the redirect after saving the password", s.URL+"/cart")
	expectEq(t, "flash after saving the password", v.Flash,
		"Your account is saved. Your cart is right where you left it.")
	firstCart := []wantLine{
		{kettleName, 2, "€59.00", "€118.00"},
		{mugName, 1, "€18.50", "€18.50"},
	}
	expectCart(t, "the cart of the saved account", v, firstCart, "Total (3 items)", "€136.50", "3 items")
	expectEq(t, "banner of a saved account", v.Banner, "")
	expectEq(t, "header account link of a customer", text(t, tab, `header a[href="/account"]`), "Account")
	if sid := acctCookie(t, tab, "sid"); sid == "" || sid == guestSID {
		t.Errorf("sid cookie after saving the account = %q: want a new session token (the guest's was %q)", sid, guestSID)
	}

	// /account now names the customer.
	navigate(t, tab, s.URL+"/account")
	expectContains(t, "/account of the customer", text(t, tab, "main"), "You are signed in as "+email+".")
	if n := count(t, tab, `form[action="/account/promote"]`); n != 0 {
		t.Error("/account still offers a signed-in customer to save the cart")
	}

	// The link worked once.
	navigate(t, tab, link)
	expectEq(t, "heading of the used link", text(t, tab, "main h1"), "This link no longer works")
	if n := count(t, tab, "#password"); n != 0 {
		t.Fatal("a used link still shows the set-password form")
	}

	// Sign out from /account.
	navigate(t, tab, s.URL+"/account")
	v = acctClickToPage(t, tab, `form[action="/logout"] button[type="submit"]`,
		"the redirect after signing out", s.URL+"/")
	expectEq(t, "flash after signing out", v.Flash, "You are signed out.")
	expectBadge(t, "after signing out", v, "")
	expectEq(t, "header sign-in link after signing out", text(t, tab, `header a[href="/login"]`), "Sign in")
	if n := count(t, tab, `header a[href="/account"]`); n != 0 {
		t.Errorf("the header still links to /account after signing out")
	}
	if sid := acctCookie(t, tab, "sid"); sid != "" {
		t.Errorf("sid cookie after signing out = %q, want none", sid)
	}

	// A second visitor, in a fresh context, fills a cart of their own: one
	// product the account's cart has, one it has not.
	second := newIsolatedTab(t, browser)
	acctAddWithJS(t, second, s.URL, mugSlug, mugName, 2, "2 items")
	acctAddWithJS(t, second, s.URL, boardSlug, boardName, 1, "3 items")

	// From /account, the guest follows "Sign in".
	navigate(t, second, s.URL+"/account")
	click(t, second, `main a[href="/login"]`)
	waitVisible(t, second, `form[action="/login"] #password`)
	expectEq(t, "/login location", location(t, second), s.URL+"/login")
	expectContains(t, "/login of a guest", text(t, second, "main article"),
		"The products in your cart will be added to your account's cart.")
	setValue(t, second, "#email", email)
	setValue(t, second, "#password", acctPassword)
	// A merged cart is shown right away: sign-in lands on /cart.
	v = acctClickToPage(t, second, `form[action="/login"] button[type="submit"]`,
		"the redirect after signing in", s.URL+"/cart")
	expectEq(t, "flash after signing in", v.Flash,
		"You are signed in. 3 items from your guest cart were added to your cart.")
	expectBadge(t, "after signing in", v, "6 items")
	expectEq(t, "header account link after signing in", text(t, second, `header a[href="/account"]`), "Account")

	// The merged cart: the mugs add up, the board joins.
	expectCart(t, "the merged cart", v, []wantLine{
		{kettleName, 2, "€59.00", "€118.00"},
		{mugName, 3, "€18.50", "€55.50"},
		{boardName, 1, "€45.00", "€45.00"},
	}, "Total (6 items)", "€218.50", "6 items")
	expectEq(t, "banner of the signed-in customer", v.Banner, "")
	saveScreenshot(t, second, "cart-merged.png")

	// The account page of the second browser names the same customer.
	navigate(t, second, s.URL+"/account")
	expectContains(t, "/account after signing in", text(t, second, "main"), "You are signed in as "+email+".")

	// Only the one promote mail was sent.
	if n := len(s.Mail.Messages()); n != 1 {
		t.Errorf("the sink got %d mails, want 1", n)
	}
}

// TestSaveAccountJourneyWithoutJS: saving the account with page scripts
// off, including the form errors on the way.
func TestSaveAccountJourneyWithoutJS(t *testing.T) {
	browser := newBrowser(t)
	s := startShop(t)
	tab := newIsolatedTab(t, browser)
	disableJS(t, tab)
	const email = "grace.hopper@example.org"

	// A guest's cart: two kettles, by a plain form post.
	navigate(t, tab, s.URL+"/products/"+kettleSlug)
	setValue(t, tab, "#quantity", "2")
	v := acctClickToPage(t, tab, `form.add-to-cart button[type="submit"]`,
		"the redirect after adding to the cart", s.URL+"/cart")
	expectEq(t, "flash after the add", v.Flash, "Added "+kettleName+" to your cart.")
	cart := []wantLine{{kettleName, 2, "€59.00", "€118.00"}}
	expectCart(t, "the guest's cart", v, cart, "Total (2 items)", "€118.00", "2 items")

	// The cart's banner leads to the form.
	v = acctClickToPage(t, tab, `main > .banner a[href="/account"]`, "/account from the banner", s.URL+"/account")
	waitVisible(t, tab, `form[action="/account/promote"] #email`)
	saveScreenshot(t, tab, "account-guest-nojs.png")

	// A bad address is answered with the form and a message.
	setValue(t, tab, "#email", "not an email")
	acctClickToPage(t, tab, `form[action="/account/promote"] button[type="submit"]`,
		"the answer to a bad address", "")
	expectEq(t, "error for a bad address", text(t, tab, "#email-help"),
		"Enter an email address such as name@example.com.")
	// The field is marked for screen readers (and styled by Pico).
	if n := count(t, tab, `#email[aria-invalid="true"]`); n != 1 {
		t.Error("the email field of a bad address is not marked aria-invalid")
	}
	if got := acctValue(t, tab, "#email"); got != "not an email" {
		t.Errorf("the email field after a bad address = %q, want what was typed", got)
	}
	if n := len(s.Mail.Messages()); n != 0 {
		t.Fatalf("a bad address sent %d mails", n)
	}

	// A good one.
	setValue(t, tab, "#email", email)
	v = acctClickToPage(t, tab, `form[action="/account/promote"] button[type="submit"]`,
		"the redirect after asking for the link", s.URL+"/account")
	expectEq(t, "flash after asking for the link", v.Flash,
		"Check your inbox: we sent a link to "+email+". Open it to choose a password and save your cart.")
	link := acctPromoteLink(t, s.Mail, 1, email, s.URL)

	navigate(t, tab, link)
	waitVisible(t, tab, "#password")
	expectEq(t, "set-password heading", text(t, tab, "main h1"), "Save your account")
	saveScreenshot(t, tab, "set-password-nojs.png")

	// Two passwords that differ are refused, and the link still works.
	setValue(t, tab, "#password", acctPassword)
	setValue(t, tab, "#password_confirm", acctPassword+"!")
	acctClickToPage(t, tab, `form[action="/account/password"] button[type="submit"]`,
		"the answer to two different passwords", "")
	expectEq(t, "error for two different passwords", text(t, tab, "#password-help"),
		"The two passwords differ. Type the same password twice.")
	if n := count(t, tab, `form[action="/account/password"] input[name="token"]`); n != 1 {
		t.Fatal("the refused form lost its token")
	}

	// A short one is refused too.
	setValue(t, tab, "#password", "short")
	setValue(t, tab, "#password_confirm", "short")
	acctClickToPage(t, tab, `form[action="/account/password"] button[type="submit"]`,
		"the answer to a short password", "")
	expectEq(t, "error for a short password", text(t, tab, "#password-help"), "Use at least 12 characters.")

	// The same password twice saves the account.
	setValue(t, tab, "#password", acctPassword)
	setValue(t, tab, "#password_confirm", acctPassword)
	v = acctClickToPage(t, tab, `form[action="/account/password"] button[type="submit"]`,
		"the redirect after saving the password", s.URL+"/cart")
	expectEq(t, "flash after saving the password", v.Flash,
		"Your account is saved. Your cart is right where you left it.")
	expectCart(t, "the cart of the saved account", v, cart, "Total (2 items)", "€118.00", "2 items")
	expectEq(t, "banner of a saved account", v.Banner, "")

	navigate(t, tab, s.URL+"/account")
	expectContains(t, "/account of the customer", text(t, tab, "main"), "You are signed in as "+email+".")
	if n := count(t, tab, `form[action="/logout"] button[type="submit"]`); n != 1 {
		t.Fatal("/account of the customer has no Sign out button")
	}
}

// acctAddWithJS adds qty of a product from its page through htmx, and
// checks the status line and the header badge.
func acctAddWithJS(t *testing.T, tab context.Context, base, slug, name string, qty int, badge string) {
	t.Helper()
	navigate(t, tab, base+"/products/"+slug)
	if got := text(t, tab, "h1"); got != name {
		t.Fatalf("product heading = %q, want %q", got, name)
	}
	setValue(t, tab, "#quantity", strconv.Itoa(qty))
	markStale(t, tab, "#add-status")
	click(t, tab, `form.add-to-cart button[type="submit"]`)
	v := waitFor(t, tab, fmt.Sprintf("the htmx add of %d × %s", qty, name), func(v pageState) bool {
		return v.AddStatus != ""
	})
	assertSamePage(t, v, base+"/products/"+slug)
	expectEq(t, "status after adding "+name, v.AddStatus, "Added "+name+" to your cart. View cart")
	expectBadge(t, "after adding "+name, v, badge)
}

// acctClickToPage clicks sel, which must load a new document, and waits for
// it; with url "" any new document will do, else it must be at url.
func acctClickToPage(t *testing.T, tab context.Context, sel, what, url string) pageState {
	t.Helper()
	markStale(t, tab, "html")
	click(t, tab, sel)
	v := waitFor(t, tab, what, func(v pageState) bool {
		return url == "" || v.URL == url
	})
	if v.Kept {
		t.Fatalf("%s: the click did not load a new document", what)
	}
	return v
}

// acctPromoteLink waits for the n-th mail, checks that it is the promote
// mail to email, and returns its set-password link.
func acctPromoteLink(t *testing.T, sink *mailtest.Server, n int, email, base string) string {
	t.Helper()
	msgs := sink.WaitFor(t, n, acctMailTimeout)
	m := msgs[n-1]
	if !slices.Equal(m.To, []string{email}) {
		t.Errorf("promote mail to %v, want [%s]", m.To, email)
	}
	expectEq(t, "promote mail subject", m.Subject, "Save your Shopfront cart")
	match := acctLinkRE.FindStringSubmatch(m.Text)
	if match == nil {
		t.Fatalf("no set-password link in the promote mail's text:\n%s", m.Text)
	}
	link := match[1]
	if !strings.HasPrefix(link, base+"/account/password?token=") || len(match[2]) < 16 {
		t.Fatalf("set-password link = %q, want %s/account/password?token=<a long token>", link, base)
	}
	if !strings.Contains(m.HTML, `href="`+link+`"`) {
		t.Errorf("the promote mail's HTML does not link to %s", link)
	}
	return link
}

// acctCookie is the value of the cookie name in the tab's jar, or "".
func acctCookie(t *testing.T, tab context.Context, name string) string {
	t.Helper()
	jar := cookies(t, tab)
	i := slices.IndexFunc(jar, func(c *network.Cookie) bool { return c.Name == name })
	if i < 0 {
		return ""
	}
	return jar[i].Value
}

// acctValue is the current value of the input sel.
func acctValue(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	return run(t, tab, "reading the value of "+sel, chromedp.Value(chromedp.CSS(sel)))
}

// expectContains fails the test unless got, with its white space collapsed,
// contains want.
func expectContains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(strings.Join(strings.Fields(got), " "), want) {
		t.Fatalf("%s = %q, want it to contain %q", what, got, want)
	}
}
