package main

import (
	"context"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/google/uuid"

	"shopfront/models"
)

const (
	addToCartName = "POST /cart/items (add to cart, existing guest)"
	// benchStock is more than any load adds: a line stops at
	// models.MaxQuantity and the add still answers 303, but an add over the
	// stock answers 422.
	benchStock = 1_000_000
	formType   = "application/x-www-form-urlencoded"
)

// scripts are the add-to-cart load's scripts: add_to_cart.lua for wrk, and
// add_to_cart.sql, a text/template of the pgbench script.
//
//go:embed add_to_cart.lua add_to_cart.sql
var scripts embed.FS

// product is the one the product-page and add-to-cart loads use.
type product struct {
	id   int64
	slug string
}

// firstProduct is the first product of the catalog page, in the order of
// models.Catalog.List.
func firstProduct(ctx context.Context, db *sql.DB) (product, error) {
	var p product
	err := db.QueryRowContext(ctx, `SELECT id, slug FROM products ORDER BY name, id LIMIT 1`).Scan(&p.id, &p.slug)
	if err != nil {
		return product{}, fmt.Errorf("first product: %w", err)
	}
	return p, nil
}

// giveStock makes the product's stock too large for the load to reach.
func giveStock(ctx context.Context, db *sql.DB, productID int64) error {
	res, err := db.ExecContext(ctx, `UPDATE products SET stock = $1 WHERE id = $2`, benchStock, productID)
	if err != nil {
		return fmt.Errorf("stock of product %d: %w", productID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("stock of product %d: %w", productID, err)
	}
	if n != 1 {
		return fmt.Errorf("stock of product %d: %d rows updated, want 1", productID, n)
	}
	return nil
}

// guest is the visitor the add-to-cart load acts as, with the cookies and
// form token a browser would have after its first add.
type guest struct {
	csrf      string // the csrf cookie
	token     string // the form token signed for it
	sid       string // the session cookie
	productID int64
}

// cookie is the Cookie header the guest's browser sends.
func (g guest) cookie() string {
	return "csrf=" + g.csrf + "; sid=" + g.sid
}

// form is the body of the product page's "Add to cart" form.
func (g guest) form() string {
	return url.Values{
		"_csrf":      {g.token},
		"product_id": {strconv.FormatInt(g.productID, 10)},
		"quantity":   {"1"},
	}.Encode()
}

// newGuest makes a guest through the server, as a browser does: a page view
// for the csrf cookie and token, then a first add to cart, which creates the
// guest, its session and its cart.
func newGuest(ctx context.Context, serverURL string, productID int64) (guest, error) {
	client := &http.Client{
		Timeout: 10 * time.Second,
		// The add's 303 is the answer to check, not the cart page after it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	g := guest{productID: productID}
	var err error
	if g.csrf, g.token, err = csrfPair(ctx, client, serverURL+"/"); err != nil {
		return guest{}, fmt.Errorf("guest: %w", err)
	}
	if g.sid, err = firstAdd(ctx, client, serverURL+"/cart/items", g); err != nil {
		return guest{}, fmt.Errorf("guest: %w", err)
	}
	return g, nil
}

// csrfPair views page u as a new visitor and returns the csrf cookie it sets
// and the form token in the page.
func csrfPair(ctx context.Context, client *http.Client, u string) (cookie, token string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("GET %s: status %d, want 200", u, resp.StatusCode)
	}
	if cookie = cookieValue(resp, "csrf"); cookie == "" {
		return "", "", fmt.Errorf("GET %s: no csrf cookie set", u)
	}
	if token, err = parseCSRFToken(body); err != nil {
		return "", "", fmt.Errorf("GET %s: %w", u, err)
	}
	return cookie, token, nil
}

// firstAdd posts g's add-to-cart form without a session and returns the
// session cookie of the guest it creates.
func firstAdd(ctx context.Context, client *http.Client, u string, g guest) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(g.form()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Cookie", "csrf="+g.csrf)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", u, err)
	}
	// A 303 elsewhere, to /login, means guests are off: no cart was made.
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cart" {
		return "", fmt.Errorf("POST %s: status %d to %q, want 303 to /cart:\n%s",
			u, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	sid := cookieValue(resp, "sid")
	if sid == "" {
		return "", fmt.Errorf("POST %s: no sid cookie set", u)
	}
	return sid, nil
}

// cookieValue is the value of the cookie name that resp sets, or "".
func cookieValue(resp *http.Response, name string) string {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// parseCSRFToken finds the form token in a page: in a form's _csrf field,
// or in the body's hx-headers JSON, which every page has.
func parseCSRFToken(page []byte) (string, error) {
	s := string(page)
	if _, rest, ok := strings.Cut(s, `name="_csrf" value="`); ok {
		if token, _, ok := strings.Cut(rest, `"`); ok && token != "" {
			return html.UnescapeString(token), nil
		}
	}
	if _, rest, ok := strings.Cut(s, `hx-headers="`); ok {
		if attr, _, ok := strings.Cut(rest, `"`); ok {
			var headers map[string]string
			err := json.Unmarshal([]byte(html.UnescapeString(attr)), &headers)
			if err == nil && headers["X-CSRF-Token"] != "" {
				return headers["X-CSRF-Token"], nil
			}
		}
	}
	return "", errors.New("no CSRF token in the page: neither a _csrf field nor X-CSRF-Token in hx-headers")
}

// addSQL are the values the server binds in the add's statements for the
// guest, which the pgbench script inlines.
type addSQL struct {
	TokenHash   string // hex, of the sid cookie's token
	UserID      uuid.UUID
	CartID      uuid.UUID
	NewCartID   uuid.UUID // lockCart's unused id for a new cart
	ProductID   int64
	Quantity    int
	MaxQuantity int
}

// guestSQL reads g's user and cart from the database. The session is found
// by the hash of the sid cookie, as loadSession finds it, which proves the
// script's hash literal right.
func guestSQL(ctx context.Context, db *sql.DB, g guest) (addSQL, error) {
	hash, ok := models.ParseToken(g.sid)
	if !ok {
		return addSQL{}, fmt.Errorf("sid cookie %q is not a session token", g.sid)
	}
	v := addSQL{
		TokenHash:   hex.EncodeToString(hash),
		NewCartID:   uuid.Must(uuid.NewV7()),
		ProductID:   g.productID,
		Quantity:    1,
		MaxQuantity: models.MaxQuantity,
	}
	err := db.QueryRowContext(ctx, `
		SELECT s.user_id, c.id FROM sessions s JOIN carts c ON c.user_id = s.user_id
		WHERE s.token_hash = $1`, hash).Scan(&v.UserID, &v.CartID)
	if errors.Is(err, sql.ErrNoRows) {
		return addSQL{}, errors.New("guest: no session with the sid cookie's token hash, or no cart")
	}
	if err != nil {
		return addSQL{}, fmt.Errorf("guest: %w", err)
	}
	return v, nil
}

// writeScripts writes the wrk script, and the pgbench script for v, into dir.
func writeScripts(dir string, v addSQL) (luaPath, sqlPath string, err error) {
	lua, err := scripts.ReadFile("add_to_cart.lua")
	if err != nil {
		return "", "", err
	}
	luaPath = filepath.Join(dir, "add_to_cart.lua")
	if err := os.WriteFile(luaPath, lua, 0o600); err != nil {
		return "", "", fmt.Errorf("wrk script: %w", err)
	}
	tmpl, err := template.ParseFS(scripts, "add_to_cart.sql")
	if err != nil {
		return "", "", fmt.Errorf("pgbench script: %w", err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, v); err != nil {
		return "", "", fmt.Errorf("pgbench script: %w", err)
	}
	sqlPath = filepath.Join(dir, "add_to_cart.sql")
	if err := os.WriteFile(sqlPath, []byte(b.String()), 0o600); err != nil {
		return "", "", fmt.Errorf("pgbench script: %w", err)
	}
	return luaPath, sqlPath, nil
}
