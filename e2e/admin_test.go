package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"shopfront/models"
)

// The accounts of the admin journey.
const (
	adminJourneyEmail    = "chief@shop.example"
	adminJourneyPassword = "the admin's long passphrase"
	// The customer's address is saved in lower case; the search types part
	// of it in upper case.
	adminCustomerEmail = "margaret.hamilton@apollo.example"
	adminCustomerQuery = "HAMILTON@APOLLO"
	// adminBulkGuests is how many old guests are inserted with SQL, so that
	// the list has more than one page of 50.
	adminBulkGuests = 60
	adminPageSize   = 50
)

// adminStampRE is how the admin pages write a time.
var adminStampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d$`)

// TestAdminJourney: guests and a customer made through the real app, plus
// old guests inserted with SQL; a visitor who opens /admin/users is sent to
// sign in and comes back as the admin; the admin reads the counts, the list
// and the funnel, filters by kind, searches an email in another case, opens
// a user's page and pages through the whole list. Guests and customers are
// kept out.
func TestAdminJourney(t *testing.T) {
	browser := newBrowser(t)
	s := startShop(t)
	ctx := context.Background()

	// Old guests, an hour apart, with ids of their creation time (UUIDv7) so
	// that they sort after everyone the app creates below.
	bulk := adminInsertGuests(t, s.DB, adminBulkGuests)

	// Guest A fills a cart in the browser: two lines.
	tabA := newIsolatedTab(t, browser)
	acctAddWithJS(t, tabA, s.URL, kettleSlug, kettleName, 2, "2 items")
	acctAddWithJS(t, tabA, s.URL, mugSlug, mugName, 1, "3 items")
	guestA := adminNewestGuest(t, s.DB)

	// Guest B adds one board by plain HTTP, with the CSRF token of the page.
	httpB := newAdminHTTP(t, s.URL)
	httpB.addToCart(boardSlug, 1)
	guestB := adminNewestGuest(t, s.DB)
	if guestB == guestA {
		t.Fatal("guest B's add to cart did not create a new guest")
	}
	// A guest is a session, but not an admin: sent to sign in.
	r := httpB.getNoFollow("/admin/users")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?next=%2Fadmin%2Fusers" {
		t.Fatalf("a guest's GET /admin/users = %d to %q, want 303 to /login?next=%%2Fadmin%%2Fusers",
			r.StatusCode, r.Header.Get("Location"))
	}

	// The customer: a guest with three mugs saves the account by HTTP, from
	// the emailed link.
	httpC := newAdminHTTP(t, s.URL)
	httpC.addToCart(mugSlug, 3)
	customer := adminNewestGuest(t, s.DB)
	httpC.post("/account", "/account/promote", url.Values{"email": {adminCustomerEmail}}, "/account")
	link := acctPromoteLink(t, s.Mail, 1, adminCustomerEmail, s.URL)
	linkURL, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	body := httpC.post(linkURL.RequestURI(), "/account/password", url.Values{
		"token":            {linkURL.Query().Get("token")},
		"password":         {acctPassword},
		"password_confirm": {acctPassword},
	}, "/cart")
	expectContains(t, "the cart after saving the account", body, "Your account is saved.")

	// Guest D adds two kettles in the browser, then signs in as the
	// customer: the kettles are merged into the customer's cart and guest D
	// is deleted.
	tabD := newIsolatedTab(t, browser)
	acctAddWithJS(t, tabD, s.URL, kettleSlug, kettleName, 2, "2 items")
	guestD := adminNewestGuest(t, s.DB)
	navigate(t, tabD, s.URL+"/login")
	setValue(t, tabD, "#email", adminCustomerEmail)
	setValue(t, tabD, "#password", acctPassword)
	v := acctClickToPage(t, tabD, `form[action="/login"] button[type="submit"]`,
		"the customer's sign-in with a guest cart", s.URL+"/cart")
	expectEq(t, "flash after the merging sign-in", v.Flash,
		"You are signed in. 2 items from your guest cart were added to your cart.")

	// A signed-in customer is not an admin: 403, in the browser and by HTTP.
	navigate(t, tabD, s.URL+"/admin/users")
	expectEq(t, "status on the customer's /admin/users", text(t, tabD, "main .error-page .status"), "403")
	expectEq(t, "heading on the customer's /admin/users", text(t, tabD, "main h1"), "Not allowed")
	expectEq(t, "location of the customer's /admin/users", location(t, tabD), s.URL+"/admin/users")
	if n := count(t, tabD, "table.users"); n != 0 {
		t.Fatal("the 403 page of a customer shows the user table")
	}
	if n := count(t, tabD, `header a[href="/admin/users"]`); n != 0 {
		t.Error("a customer's header links to the admin pages")
	}
	saveScreenshot(t, tabD, "admin-forbidden.png")
	for _, path := range []string{"/admin/users", "/admin/users/" + customer.String()} {
		if r := httpC.getNoFollow(path); r.StatusCode != http.StatusForbidden {
			t.Errorf("the customer's GET %s = %d, want 403", path, r.StatusCode)
		}
	}

	// The admin, created as the CLI does; the newest account.
	created, err := models.NewAccounts(s.DB, models.NewPasswords(), time.Hour).CreateAdmin(ctx, adminJourneyEmail, adminJourneyPassword)
	if err != nil || !created {
		t.Fatalf("CreateAdmin = %t, %v; want a new account", created, err)
	}
	var admin uuid.UUID
	if err := s.DB.Raw(`SELECT id FROM users WHERE email = ?`, adminJourneyEmail).Row().Scan(&admin); err != nil {
		t.Fatalf("finding the admin: %v", err)
	}

	// What the database holds, newest first, to compare every page with.
	allIDs := adminIDs(t, s.DB, `SELECT id FROM users ORDER BY id DESC`)
	guestIDs := adminIDs(t, s.DB, `SELECT id FROM users WHERE kind = 'guest' ORDER BY id DESC`)
	wantAll := append([]uuid.UUID{admin, customer, guestB, guestA}, bulk...)
	if !slices.Equal(allIDs, wantAll) {
		t.Fatalf("users in the database, newest first = %v, want admin, customer, guest B, guest A and the bulk guests %v",
			allIDs, wantAll)
	}

	// A visitor who opens the admin list is sent to sign in, with next.
	tab := newIsolatedTab(t, browser)
	navigate(t, tab, s.URL+"/admin/users")
	waitVisible(t, tab, `form[action="/login"] #password`)
	expectEq(t, "location of a visitor's /admin/users", location(t, tab), s.URL+"/login?next=%2Fadmin%2Fusers")
	expectEq(t, "next field of the sign-in form", acctValue(t, tab, `form[action="/login"] input[name="next"]`), "/admin/users")

	// Signing in as the admin comes back to the list.
	setValue(t, tab, "#email", adminJourneyEmail)
	setValue(t, tab, "#password", adminJourneyPassword)
	dayBefore := time.Now().UTC().Format(time.DateOnly)
	v = acctClickToPage(t, tab, `form[action="/login"] button[type="submit"]`,
		"the admin's sign-in", s.URL+"/admin/users")
	dayAfter := time.Now().UTC().Format(time.DateOnly)
	expectEq(t, "flash after the admin's sign-in", v.Flash, "You are signed in.")

	// The first page: counts, 50 rows newest first, the next-page link and
	// the funnel.
	first := adminReadList(t, tab)
	expectEq(t, "list heading", first.H1, "Users")
	expectEq(t, "counts line", first.Counts, "All accounts: 2 registered · 62 guests")
	if !first.AdminNav {
		t.Error("the admin's header has no Admin link")
	}
	if first.Query != "" || first.Kind != "" {
		t.Errorf("filter of the unfiltered list = q %q, kind %q; want both empty", first.Query, first.Kind)
	}
	adminExpectRows(t, "the first page", first, allIDs[:adminPageSize])
	adminExpectRow(t, first.Rows[0], []string{"Registered", "Admin"}, adminJourneyEmail, "0")
	adminExpectRow(t, first.Rows[1], []string{"Registered"}, adminCustomerEmail, "2")
	adminExpectRow(t, first.Rows[2], []string{"Guest"}, "", "1")
	adminExpectRow(t, first.Rows[3], []string{"Guest"}, "", "2")
	for _, row := range first.Rows[4:] {
		adminExpectRow(t, row, []string{"Guest"}, "", "0")
	}
	expectEq(t, "account label of guest B", first.Rows[2].Email, "Guest "+guestB.String()[:8]+"…")
	expectEq(t, "next-page link of the first page", first.Next,
		"/admin/users?after="+allIDs[adminPageSize-1].String())
	expectEq(t, "Older users link", first.NextText, "Older users →")
	expectEq(t, "end marker of the first page", first.End, "")
	adminExpectFunnel(t, first.Funnel, dayBefore, dayAfter)
	saveScreenshot(t, tab, "admin-users.png")

	// Filter: guests only, through the select and the Filter button.
	adminChoose(t, tab, "#kind", "guest")
	acctClickToPage(t, tab, `form.admin-filter button[type="submit"]`, "the list of guests", "")
	guests := adminReadList(t, tab)
	adminExpectQuery(t, "the guest filter", guests.URL, s.URL, url.Values{"kind": {"guest"}, "q": {""}})
	expectEq(t, "kind select after filtering", guests.Kind, "guest")
	expectEq(t, "counts line of the guest list", guests.Counts, "All accounts: 2 registered · 62 guests")
	adminExpectRows(t, "the first page of guests", guests, guestIDs[:adminPageSize])
	for i, row := range guests.Rows {
		lines := "0" // the bulk guests'
		switch i {
		case 0:
			lines = "1" // guest B's board
		case 1:
			lines = "2" // guest A's kettles and mug
		}
		adminExpectRow(t, row, []string{"Guest"}, "", lines)
	}
	if guests.Funnel != nil {
		t.Error("the filtered list shows the funnel")
	}
	expectEq(t, "next-page link of the guest list", guests.Next,
		"/admin/users?after="+guestIDs[adminPageSize-1].String()+"&kind=guest")
	// The next page keeps the filter.
	acctClickToPage(t, tab, `nav.pagination a[rel="next"]`, "the second page of guests", s.URL+guests.Next)
	guests2 := adminReadList(t, tab)
	adminExpectRows(t, "the second page of guests", guests2, guestIDs[adminPageSize:])
	for _, row := range guests2.Rows {
		adminExpectRow(t, row, []string{"Guest"}, "", "0")
	}
	expectEq(t, "kind select on the second page of guests", guests2.Kind, "guest")
	expectEq(t, "end of the guest list", guests2.End, "End of the list")
	expectEq(t, "next-page link at the end of the guest list", guests2.Next, "")

	// Search: part of the customer's email in upper case, all kinds.
	adminChoose(t, tab, "#kind", "")
	setValue(t, tab, "#q", adminCustomerQuery)
	acctClickToPage(t, tab, `form.admin-filter button[type="submit"]`, "the search results", "")
	found := adminReadList(t, tab)
	adminExpectQuery(t, "the search", found.URL, s.URL, url.Values{"kind": {""}, "q": {adminCustomerQuery}})
	expectEq(t, "search field after searching", found.Query, adminCustomerQuery)
	expectEq(t, "kind select after searching", found.Kind, "")
	adminExpectRows(t, "the search results", found, []uuid.UUID{customer})
	adminExpectRow(t, found.Rows[0], []string{"Registered"}, adminCustomerEmail, "2")
	expectEq(t, "end of the search results", found.End, "End of the list")
	if found.Funnel != nil {
		t.Error("the search results show the funnel")
	}

	// LIKE's wildcards are searched for as text: no address has a %.
	navigate(t, tab, s.URL+"/admin/users?q=%25")
	wild := adminReadList(t, tab)
	adminExpectRows(t, "a search for %", wild, nil)
	expectEq(t, "empty list text", wild.Empty, "No users match.")

	// The customer's page, through its link in the search results.
	navigate(t, tab, found.URL)
	detailsURL := s.URL + "/admin/users/" + customer.String()
	acctClickToPage(t, tab, `table.users a[href="/admin/users/`+customer.String()+`"]`, "the customer's page", detailsURL)
	p := adminReadUser(t, tab)
	expectEq(t, "user page heading", p.H1, adminCustomerEmail)
	if !slices.Equal(p.Crumbs, []string{"Users", adminCustomerEmail}) {
		t.Errorf("breadcrumb = %q, want [Users %s]", p.Crumbs, adminCustomerEmail)
	}
	expectEq(t, "Id field", p.Fields["Id"], customer.String())
	expectEq(t, "Kind field", p.Fields["Kind"], "Registered")
	expectEq(t, "Email field", p.Fields["Email"], adminCustomerEmail)
	for _, f := range []string{"Email verified", "Created", "Last seen"} {
		if !adminStampRE.MatchString(p.Fields[f]) {
			t.Errorf("%s field = %q, want a time like 2006-01-02 15:04", f, p.Fields[f])
		}
	}
	wantCart := []adminCartRow{
		{Name: mugName, Href: "/products/" + mugSlug, Qty: "3", Total: "€55.50"},
		{Name: kettleName, Href: "/products/" + kettleSlug, Qty: "2", Total: "€118.00"},
	}
	if !slices.Equal(p.Cart, wantCart) {
		t.Errorf("cart on the user page = %+v, want %+v", p.Cart, wantCart)
	}
	// The HTTP client's session from saving the account, and the browser's
	// from signing in.
	if len(p.Sessions) != 2 ||
		!slices.ContainsFunc(p.Sessions, func(ua string) bool { return strings.Contains(ua, "Go-http-client") }) ||
		!slices.ContainsFunc(p.Sessions, func(ua string) bool { return strings.Contains(ua, "HeadlessChrome") }) {
		t.Errorf("sessions on the user page (user agents) = %q, want the Go client's and the browser's", p.Sessions)
	}
	var types []string
	for _, e := range p.Events {
		types = append(types, e.Type)
		if !adminStampRE.MatchString(e.Time) || e.Datetime == "" {
			t.Errorf("event %s is stamped %q (datetime %q)", e.Type, e.Time, e.Datetime)
		}
	}
	// The merged guest's own history is part of the account's.
	wantTypes := []string{models.EventSignedIn, models.EventGuestCreated, models.EventUpgraded, models.EventSaveRequested, models.EventGuestCreated}
	if !slices.Equal(types, wantTypes) {
		t.Fatalf("events on the user page, newest first = %q, want %q", types, wantTypes)
	}
	signIn := p.Events[0]
	expectEq(t, "merged guest of the sign-in", signIn.Guest, guestD.String())
	expectEq(t, "details of the sign-in", signIn.Details, "dropped_products: 0, merged_items: 2")
	expectEq(t, "the merged guest's event", p.Events[1].AsGuest, "as guest "+guestD.String()+", since merged")
	expectEq(t, "details of the save request", p.Events[3].Details, "address_taken: false")
	saveScreenshot(t, tab, "admin-user.png")

	// Back to the list by the breadcrumb, then every page of it.
	acctClickToPage(t, tab, `nav[aria-label="breadcrumb"] a[href="/admin/users"]`, "the list from the breadcrumb", s.URL+"/admin/users")
	again := adminReadList(t, tab)
	adminExpectRows(t, "the first page, again", again, allIDs[:adminPageSize])
	acctClickToPage(t, tab, `nav.pagination a[rel="next"]`, "the second page", s.URL+again.Next)
	second := adminReadList(t, tab)
	adminExpectRows(t, "the second page", second, allIDs[adminPageSize:])
	seen := map[string]bool{}
	for _, row := range append(again.Rows, second.Rows...) {
		if seen[row.Href] {
			t.Errorf("%s is listed on both pages", row.Href)
		}
		seen[row.Href] = true
	}
	if len(seen) != len(allIDs) {
		t.Errorf("the two pages list %d users, the database has %d", len(seen), len(allIDs))
	}
	expectEq(t, "end of the list", second.End, "End of the list")
	expectEq(t, "next-page link of the last page", second.Next, "")
	expectEq(t, "counts line on the second page", second.Counts, "All accounts: 2 registered · 62 guests")
	if second.Funnel != nil {
		t.Error("the second page shows the funnel")
	}
	saveScreenshot(t, tab, "admin-users-page2.png")
}

// adminChoose selects the option of value in the select sel, as a user's
// choice would, and fires its change event. (The harness's setValue cannot
// choose "": chromedp v0.23 drops an empty string argument, so the select is
// set to undefined and ends with no option selected.)
func adminChoose(t *testing.T, tab context.Context, sel, value string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
		const s = document.querySelector(%s);
		const o = s && [...s.options].find(o => o.value === %s);
		if (!o) return false;
		o.selected = true;
		s.dispatchEvent(new Event("change", {bubbles: true}));
		return s.value === o.value;
	})()`, strconv.Quote(sel), strconv.Quote(value))
	if !run(t, tab, "choosing "+value+" in "+sel, chromedp.Evaluate[bool](js)) {
		fail(t, tab, "%s has no option of value %q", sel, value)
	}
}

// adminInsertGuests inserts n guests with SQL, created an hour apart up to
// an hour ago, with UUIDv7 ids of their creation times; it returns their
// ids newest first.
func adminInsertGuests(t *testing.T, db *gorm.DB, n int) []uuid.UUID {
	t.Helper()
	now := time.Now()
	ids := make([]uuid.UUID, n)
	values := make([]string, n)
	var args []any
	for i := range n {
		at := now.Add(-time.Duration(i+1) * time.Hour)
		id := uuid.Must(uuid.NewV7())
		var ms [8]byte
		binary.BigEndian.PutUint64(ms[:], uint64(at.UnixMilli()))
		copy(id[:6], ms[2:]) // the 48-bit timestamp of a UUIDv7
		ids[i] = id
		values[i] = "(?, 'guest', ?, ?, ?)"
		args = append(args, id, at, at, at.Add(10*time.Minute))
	}
	err := db.Exec(`INSERT INTO users (id, kind, created_at, updated_at, last_seen_at) VALUES `+
		strings.Join(values, ", "), args...).Error
	if err != nil {
		t.Fatalf("inserting %d guests: %v", n, err)
	}
	return ids
}

// adminNewestGuest is the id of the guest created last.
func adminNewestGuest(t *testing.T, db *gorm.DB) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := db.Raw(`SELECT id FROM users WHERE kind = 'guest' ORDER BY id DESC LIMIT 1`).Row().Scan(&id); err != nil {
		t.Fatalf("finding the newest guest: %v", err)
	}
	return id
}

// adminIDs runs query, which selects user ids.
func adminIDs(t *testing.T, db *gorm.DB, query string) []uuid.UUID {
	t.Helper()
	rows, err := db.Raw(query).Rows()
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return ids
}

// adminHTTP is a visitor without a browser: a cookie jar and the forms'
// CSRF tokens.
type adminHTTP struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newAdminHTTP(t *testing.T, base string) *adminHTTP {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &adminHTTP{t: t, base: base, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// get loads path, following redirects, and wants a 200.
func (h *adminHTTP) get(path string) string {
	h.t.Helper()
	resp, err := h.client.Get(h.base + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	return h.read(resp, "GET "+path, path)
}

// getNoFollow loads path with the same cookies but without following a
// redirect.
func (h *adminHTTP) getNoFollow(path string) *http.Response {
	h.t.Helper()
	c := *h.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(h.base + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// post loads page, then posts form with the page's CSRF token to action,
// following the redirect, and wants a 200 at landing.
func (h *adminHTTP) post(page, action string, form url.Values, landing string) string {
	h.t.Helper()
	form.Set("_csrf", adminFormValue(h.t, h.get(page), "_csrf"))
	resp, err := h.client.PostForm(h.base+action, form)
	if err != nil {
		h.t.Fatalf("POST %s: %v", action, err)
	}
	return h.read(resp, "POST "+action, landing)
}

// addToCart adds qty of a product from its page, as its form would.
func (h *adminHTTP) addToCart(slug string, qty int) {
	h.t.Helper()
	page := "/products/" + slug
	id := adminFormValue(h.t, h.get(page), "product_id")
	h.post(page, "/cart/items", url.Values{"product_id": {id}, "quantity": {fmt.Sprint(qty)}}, "/cart")
}

func (h *adminHTTP) read(resp *http.Response, what, landing string) string {
	h.t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s: reading the answer: %v", what, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != landing {
		h.t.Fatalf("%s: %d at %s, want 200 at %s", what, resp.StatusCode, resp.Request.URL.RequestURI(), landing)
	}
	return string(b)
}

// adminFormValue is the value of the first input named name in page.
func adminFormValue(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil || m[1] == "" {
		t.Fatalf("no %s field in the page", name)
	}
	return m[1]
}

// adminList is what the journey reads of /admin/users.
type adminList struct {
	URL      string         `json:"url"`
	H1       string         `json:"h1"`
	Counts   string         `json:"counts"`
	AdminNav bool           `json:"adminNav"` // the header links to /admin/users
	Query    string         `json:"q"`        // the search field's value
	Kind     string         `json:"kind"`     // the kind select's value
	Rows     []adminUserRow `json:"rows"`
	Empty    string         `json:"empty"`
	Next     string         `json:"next"` // href of the next-page link
	NextText string         `json:"nextText"`
	End      string         `json:"end"` // the end-of-list marker
	Funnel   *adminFunnel   `json:"funnel"`
}

type adminUserRow struct {
	Kinds     []string `json:"kinds"` // the badges' texts
	Email     string   `json:"email"`
	Created   string   `json:"created"`
	LastSeen  string   `json:"lastSeen"`
	CartLines string   `json:"cartLines"`
	Href      string   `json:"href"` // the link to the user page
	LinkText  string   `json:"linkText"`
}

type adminFunnel struct {
	Heading  string     `json:"heading"`
	SVGs     int        `json:"svgs"`
	SVGRole  string     `json:"svgRole"`
	SVGLabel string     `json:"svgLabel"`
	Legend   []string   `json:"legend"`
	Bars     int        `json:"bars"` // coloured bars in the chart
	Rates    []string   `json:"rates"`
	Caption  string     `json:"caption"`
	Head     []string   `json:"head"`
	Days     [][]string `json:"days"`     // tbody: the day's datetime, then the counts
	DayNames []string   `json:"dayNames"` // tbody: the day as shown
	Totals   []string   `json:"totals"`
}

const adminListJS = `(() => {
	const txt = el => el ? el.innerText.trim().replace(/\s+/g, " ") : "";
	const q = s => document.querySelector(s);
	const all = (root, s) => root ? [...root.querySelectorAll(s)] : [];
	const rows = all(document, "main table.users tbody tr").map(tr => {
		const td = tr.querySelectorAll("td");
		const a = td[1].querySelector("a");
		return {
			kinds: all(td[0], ".kind").map(txt),
			email: txt(td[1]), created: txt(td[2]), lastSeen: txt(td[3]), cartLines: txt(td[4]),
			href: a ? a.getAttribute("href") : "", linkText: txt(a),
		};
	});
	const next = q('main nav.pagination a[rel="next"]');
	const f = q("main #funnel");
	let funnel = null;
	if (f) {
		const svg = f.querySelector("svg");
		funnel = {
			heading: txt(f.querySelector("h2")),
			svgs: all(f, "svg").length,
			svgRole: svg ? svg.getAttribute("role") : "",
			svgLabel: svg ? svg.getAttribute("aria-label") : "",
			legend: all(f, "svg .funnel-legend text").map(el => el.textContent.trim()),
			bars: all(f, "svg .funnel-day rect:not(.funnel-hit)").length,
			rates: all(f, ".funnel-rate").map(txt),
			caption: txt(f.querySelector("table caption")),
			head: all(f, "table thead th").map(txt),
			days: all(f, "table tbody tr").map(tr => [tr.querySelector("time").getAttribute("datetime"),
				...all(tr, "td").map(txt)]),
			dayNames: all(f, "table tbody tr th").map(txt),
			totals: all(f, "table tfoot tr > *").map(txt),
		};
	}
	return {
		url: location.href,
		h1: txt(q("main h1")),
		counts: txt(q("main p.counts")),
		adminNav: !!q('header a[href="/admin/users"]'),
		q: q("#q") ? q("#q").value : "",
		kind: q("#kind") ? q("#kind").value : "",
		rows,
		empty: txt(q("main p.empty")),
		next: next ? next.getAttribute("href") : "",
		nextText: txt(next),
		end: txt(q("main nav.pagination li.muted")),
		funnel,
	};
})()`

// adminReadList reads the loaded user list.
func adminReadList(t *testing.T, tab context.Context) adminList {
	t.Helper()
	waitVisible(t, tab, "form.admin-filter")
	return run(t, tab, "reading the user list", chromedp.Evaluate[adminList](adminListJS))
}

// adminExpectRows checks that the list shows exactly the users ids, in
// order, each with its link to the user page and both times.
func adminExpectRows(t *testing.T, what string, l adminList, ids []uuid.UUID) {
	t.Helper()
	got := make([]string, len(l.Rows))
	for i, r := range l.Rows {
		got[i] = strings.TrimPrefix(r.Href, "/admin/users/")
		if r.LinkText == "" || r.LinkText != r.Email || !adminStampRE.MatchString(r.Created) || !adminStampRE.MatchString(r.LastSeen) {
			t.Errorf("%s: row %d has link %q, created %q, last seen %q", what, i+1, r.LinkText, r.Created, r.LastSeen)
		}
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = id.String()
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s lists %d users %v,\nwant %d %v", what, len(got), got, len(want), want)
	}
	if len(ids) > 0 && l.Empty != "" {
		t.Errorf("%s shows %q next to its rows", what, l.Empty)
	}
}

// adminExpectRow checks a row; an empty email means a guest's label.
func adminExpectRow(t *testing.T, r adminUserRow, kinds []string, email, cartLines string) {
	t.Helper()
	if email == "" {
		email = "Guest " + strings.TrimPrefix(r.Href, "/admin/users/")[:8] + "…"
	}
	if !slices.Equal(r.Kinds, kinds) || r.Email != email || r.CartLines != cartLines {
		t.Errorf("row of %s: badges %q, email %q, %s cart lines; want %q, %q, %s",
			r.Href, r.Kinds, r.Email, r.CartLines, kinds, email, cartLines)
	}
}

// adminExpectQuery checks that rawURL is /admin/users with exactly query.
func adminExpectQuery(t *testing.T, what, rawURL, base string, query url.Values) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s: location %q: %v", what, rawURL, err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != base+"/admin/users" || u.Query().Encode() != query.Encode() {
		t.Fatalf("%s went to %s, want %s/admin/users?%s", what, rawURL, base, query.Encode())
	}
}

// adminExpectFunnel checks the funnel of the journey: four guests created
// (A, B, the customer and the merged one), one save request, one saved
// account and one merging sign-in, today (UTC), dayBefore or dayAfter.
func adminExpectFunnel(t *testing.T, f *adminFunnel, dayBefore, dayAfter string) {
	t.Helper()
	if f == nil {
		t.Fatal("the unfiltered first page has no #funnel section")
	}
	expectEq(t, "funnel heading", f.Heading, "Conversion funnel")
	if f.SVGs != 1 || f.SVGRole != "img" {
		t.Errorf("funnel has %d svg, role %q; want one with role img", f.SVGs, f.SVGRole)
	}
	expectContains(t, "funnel chart's label", f.SVGLabel,
		": 4 guests created, 1 asked to save their account, 1 account saved, 1 sign-in merged a guest cart.")
	series := []string{"Guests created", "Save requested", "Saved", "Sign-in merges"}
	if !slices.Equal(f.Legend, series) {
		t.Errorf("funnel legend = %q, want %q", f.Legend, series)
	}
	if want := append([]string{"Day"}, series...); !slices.Equal(f.Head, want) {
		t.Errorf("funnel table head = %q, want %q", f.Head, want)
	}
	if want := []string{"Total", "4", "1", "1", "1"}; !slices.Equal(f.Totals, want) {
		t.Errorf("funnel totals = %q, want %q", f.Totals, want)
	}
	if len(f.Days) != 30 {
		t.Fatalf("funnel table has %d days, want 30", len(f.Days))
	}
	if today := f.Days[0][0]; today != dayBefore && today != dayAfter {
		t.Errorf("funnel's newest day = %s, want today (%s)", today, dayAfter)
	}
	// Every non-zero cell of the table is a bar of the chart, and the days
	// add up to the totals.
	bars, sums := 0, make([]int, 4)
	for _, d := range f.Days {
		for i, cell := range d[1:] {
			var n int
			if _, err := fmt.Sscan(cell, &n); err != nil {
				t.Fatalf("funnel cell %q of %s: %v", cell, d[0], err)
			}
			sums[i] += n
			if n > 0 {
				bars++
			}
		}
	}
	if !slices.Equal(sums, []int{4, 1, 1, 1}) {
		t.Errorf("funnel days add up to %v, want [4 1 1 1]", sums)
	}
	if f.Bars != bars {
		t.Errorf("funnel chart has %d bars, its table %d non-zero cells", f.Bars, bars)
	}
	if len(f.Rates) != 2 {
		t.Fatalf("funnel rates = %q, want two lines", f.Rates)
	}
	expectEq(t, "conversion rate", f.Rates[0], "Conversion: 25.0% of guests saved their account")
	if !regexp.MustCompile(`^Median time from guest to saved: \d+ (s|min)$`).MatchString(f.Rates[1]) {
		t.Errorf("median line = %q, want a few seconds", f.Rates[1])
	}
	expectContains(t, "funnel caption", f.Caption, "Conversion funnel per day, last 30 days (")
}

// adminUserPage is what the journey reads of /admin/users/:id.
type adminUserPage struct {
	H1       string            `json:"h1"`
	Crumbs   []string          `json:"crumbs"`
	Fields   map[string]string `json:"fields"`
	Cart     []adminCartRow    `json:"cart"`
	Sessions []string          `json:"sessions"` // user agents
	Events   []adminEvent      `json:"events"`
}

type adminCartRow struct {
	Name  string `json:"name"`
	Href  string `json:"href"`
	Qty   string `json:"qty"`
	Total string `json:"total"`
}

type adminEvent struct {
	Type     string `json:"type"`
	Time     string `json:"time"`
	Datetime string `json:"datetime"`
	Guest    string `json:"guest"`   // the merged guest's id
	AsGuest  string `json:"asGuest"` // the marker of a merged guest's own event
	Details  string `json:"details"`
}

const adminUserJS = `(() => {
	const txt = el => el ? el.innerText.trim().replace(/\s+/g, " ") : "";
	const all = (root, s) => root ? [...root.querySelectorAll(s)] : [];
	const after = title => {
		const h = all(document, "main h2").find(h => h.textContent.trim() === title);
		return h ? h.nextElementSibling : null;
	};
	const fields = {};
	for (const dt of all(document, "main dl.fields dt")) fields[txt(dt)] = txt(dt.nextElementSibling);
	const cart = after("Cart");
	return {
		h1: txt(document.querySelector("main h1")),
		crumbs: all(document, 'main nav[aria-label="breadcrumb"] li').map(txt),
		fields,
		cart: cart && cart.tagName === "TABLE" ? all(cart, "tbody tr").map(tr => {
			const td = tr.querySelectorAll("td");
			const a = td[0].querySelector("a");
			return {name: txt(a), href: a ? a.getAttribute("href") : "", qty: txt(td[1]), total: txt(td[2])};
		}) : [],
		sessions: all(after("Sessions"), "tbody td.user-agent").map(txt),
		events: all(after("Events"), "li").map(li => {
			const time = li.querySelector("time");
			return {
				type: txt(li.querySelector(":scope > code")),
				time: txt(time), datetime: time ? time.getAttribute("datetime") : "",
				guest: txt(li.querySelector("code.merged-guest")),
				asGuest: txt(li.querySelector("small.as-guest")),
				details: txt(li.querySelector("small.details")),
			};
		}),
	};
})()`

// adminReadUser reads the loaded user page.
func adminReadUser(t *testing.T, tab context.Context) adminUserPage {
	t.Helper()
	waitVisible(t, tab, "main dl.fields")
	return run(t, tab, "reading the user page", chromedp.Evaluate[adminUserPage](adminUserJS))
}
