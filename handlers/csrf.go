package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"

	"github.com/gofiber/fiber/v2"
)

// CSRF protection is the signed double-submit cookie pattern (OWASP): the
// csrf cookie holds a random value, forms carry its HMAC under SECRET_KEY.
// Nothing is stored, so any instance can check any token and viewing a page
// writes nothing to the database.
const (
	csrfCookie = "csrf"
	// On https the cookie is __Host-csrf: browsers then refuse it from a
	// sibling subdomain or plain http, so nobody can plant a value (which
	// would also fix the guest session a first add creates).
	csrfCookieSecure = "__Host-csrf"
	csrfField        = "_csrf"
	csrfHeaderKey    = "X-CSRF-Token"
	csrfLocal        = "csrf_token"
)

// errCSRF refuses a POST whose token or origin does not check out.
var errCSRF = fiber.NewError(fiber.StatusForbidden, "missing or invalid CSRF token, or cross-origin request")

// csrfToken is the token forms of this request must carry.
func csrfToken(c *fiber.Ctx) string {
	t, _ := c.Locals(csrfLocal).(string)
	return t
}

// csrf makes sure every visitor has a csrf cookie and refuses unsafe requests
// whose token does not match it (403).
func (h *handler) csrf(c *fiber.Ctx) error {
	cookie := c.Cookies(h.csrfCookieName())
	raw, err := base64.RawURLEncoding.Strict().DecodeString(cookie)
	if err != nil || len(raw) != 32 {
		raw = make([]byte, 32)
		rand.Read(raw)
		c.Cookie(&fiber.Cookie{
			Name:     h.csrfCookieName(),
			Value:    base64.RawURLEncoding.EncodeToString(raw),
			Path:     "/",
			HTTPOnly: true,
			Secure:   h.cfg.BaseURL.Scheme == "https",
			SameSite: fiber.CookieSameSiteLaxMode,
			// A session cookie: it only has to outlive the forms of one visit.
		})
	}
	want := h.signCSRF(raw)
	c.Locals(csrfLocal, want)

	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	if !h.sameOrigin(c) {
		return errCSRF
	}
	got := c.Get(csrfHeaderKey)
	if got == "" {
		got = postValue(c, csrfField)
	}
	if !hmac.Equal([]byte(got), []byte(want)) {
		return errCSRF
	}
	return c.Next()
}

// csrfCookieName is the csrf cookie's name for this site's scheme.
func (h *handler) csrfCookieName() string {
	if h.cfg.BaseURL.Scheme == "https" {
		return csrfCookieSecure
	}
	return csrfCookie
}

// postValue reads a field of the request body only: unlike c.FormValue it
// never takes it from the query string, where tokens must not travel.
func postValue(c *fiber.Ctx, key string) string {
	if v := c.Request().PostArgs().Peek(key); v != nil {
		return string(v)
	}
	if form, err := c.MultipartForm(); err == nil {
		if vs := form.Value[key]; len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// signCSRF is the form token for a csrf cookie value.
func (h *handler) signCSRF(cookie []byte) string {
	mac := hmac.New(sha256.New, h.cfg.SecretKey)
	mac.Write([]byte("shopfront csrf v1\x00"))
	mac.Write(cookie)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// sameOrigin checks what the browser says about where a request comes from,
// as Go's http.CrossOriginProtection does: Sec-Fetch-Site when sent, else
// Origin against the Host. Clients that send neither are left to the token.
func (h *handler) sameOrigin(c *fiber.Ctx) bool {
	switch c.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return u.Host == string(c.Request().Host()) || u.Host == h.cfg.BaseURL.Host
}
