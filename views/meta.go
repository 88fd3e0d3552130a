// Package views holds Shopfront's templ components: the Base layout, the
// pages, the htmx partials and the emails. Views take plain values and never
// query the database.
package views

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"shopfront/models"
)

// Meta is what every page's layout needs besides its own content.
type Meta struct {
	Title        string
	CSRF         string // the signed token every POST form carries as _csrf
	AssetVersion string // cache-busting version of the files under /static/
	Query        string // the catalog search box's value
	Flash        string // a one-time message from the previous request
	Canonical    string // the page's one URL for search engines (absolute)
	Description  string // the meta description; a general one when empty

	// The signed-in user; Kind is empty for a visitor without a session.
	Kind      string
	Email     string
	IsAdmin   bool
	CartCount int // items in the cart
}

// IsGuest reports whether the page is shown to a guest account.
func (m Meta) IsGuest() bool { return m.Kind == models.KindGuest }

// SignedIn reports whether the page is shown to a registered account.
func (m Meta) SignedIn() bool { return m.Kind == models.KindRegistered }

// asset returns the URL of a file under static/, versioned so browsers may
// cache it for a year.
func asset(m Meta, path string) string {
	return "/static/" + path + "?v=" + url.QueryEscape(m.AssetVersion)
}

var currencySymbols = map[string]string{"EUR": "€", "USD": "$", "GBP": "£"}

// price formats an amount in minor units, such as 1250 EUR as "€12.50".
func price(cents int64, currency string) string {
	amount := fmt.Sprintf("%d.%02d", cents/100, cents%100)
	if sym, ok := currencySymbols[currency]; ok {
		return sym + amount
	}
	return amount + " " + currency
}

// CatalogLink is what a catalog URL carries: the search, the category's
// slug, the sort order (empty: the default) and the page.
type CatalogLink struct {
	Query, Category, Sort string
	Page                  int
}

// URL is the catalog address of l, with only the parameters that differ
// from the defaults, in a fixed order: one URL per listing.
func (l CatalogLink) URL() string {
	v := url.Values{}
	if l.Query != "" {
		v.Set("q", l.Query)
	}
	if l.Category != "" {
		v.Set("category", l.Category)
	}
	if l.Sort != "" {
		v.Set("sort", l.Sort)
	}
	if l.Page > 1 {
		v.Set("page", strconv.Itoa(l.Page))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// WithPage is l on another page.
func (l CatalogLink) WithPage(page int) CatalogLink { l.Page = page; return l }

// categoryURL links to the first page of a category.
func categoryURL(slug string) string { return CatalogLink{Category: slug}.URL() }

// csrfHeader is the hx-headers value that makes htmx send the CSRF token.
func csrfHeader(m Meta) string {
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": m.CSRF})
	return string(b)
}

// lower lower-cases the first letter of a label for use inside a sentence.
func lower(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
