// Package views holds Shopfront's templ components: the Base layout, the
// pages, the htmx partials and the emails. Views take plain values and never
// query the database.
package views

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"shopfront/models"
)

// Meta is what every page's layout needs besides its own content.
type Meta struct {
	Title        string
	CSRF         string // the signed token every POST form carries as _csrf
	AssetVersion string // cache-busting version of the files under /static/
	Query        string // the catalog search box's value
	Flash        string // a one-time message from the previous request

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

// catalogURL links to page of the catalog search for q.
func catalogURL(q string, page int) string {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// csrfHeader is the hx-headers value that makes htmx send the CSRF token.
func csrfHeader(m Meta) string {
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": m.CSRF})
	return string(b)
}
