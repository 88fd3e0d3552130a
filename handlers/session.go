package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"shopfront/models"
)

const (
	sessionCookie = "sid"
	currentLocal  = "current_user"
)

// current is the signed-in user of the request, or nil for a visitor.
func current(c *fiber.Ctx) *models.Current {
	cur, _ := c.Locals(currentLocal).(*models.Current)
	return cur
}

// loadSession finds the user behind the sid cookie: no query without a
// cookie, one indexed query with one. An unknown, expired or malformed
// cookie is cleared and the request goes on as a visitor's.
func (h *handler) loadSession(c *fiber.Ctx) error {
	token := c.Cookies(sessionCookie)
	if token == "" {
		return c.Next()
	}
	hash, ok := models.ParseToken(token)
	if !ok {
		h.clearSessionCookie(c)
		return c.Next()
	}
	cur, err := h.sessions.Authenticate(c.UserContext(), hash)
	if errors.Is(err, models.ErrNotFound) {
		h.clearSessionCookie(c)
		return c.Next()
	}
	if err != nil {
		return err
	}
	if time.Since(cur.SessionSeenAt) > models.SessionTouchEvery {
		if err := h.sessions.Touch(c.UserContext(), cur.SessionID, h.cfg.GuestTTL); err != nil {
			return err
		}
		h.setSessionCookie(c, token) // the cookie slides with the session
	}
	c.Locals(currentLocal, cur)
	return c.Next()
}

// setSessionCookie sends the session token for GUEST_TTL.
func (h *handler) setSessionCookie(c *fiber.Ctx, token string) {
	c.Cookie(&fiber.Cookie{
		Name:     sessionCookie,
		Value:    token,
		Path:     "/",
		MaxAge:   int(h.cfg.GuestTTL.Seconds()),
		HTTPOnly: true,
		Secure:   h.cfg.BaseURL.Scheme == "https",
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// clearSessionCookie tells the browser to forget its session.
func (h *handler) clearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name:     sessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HTTPOnly: true,
		Secure:   h.cfg.BaseURL.Scheme == "https",
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// guestSessionToken is the session token of a guest created by this browser:
// derived from its csrf cookie, so two first adds racing from one browser
// name one session and the database lets only one guest be created.
// Sign-in and upgrade replace it with a random token.
func (h *handler) guestSessionToken(c *fiber.Ctx) (token string, hash []byte) {
	mac := hmac.New(sha256.New, h.cfg.SecretKey)
	mac.Write([]byte("shopfront guest session v1\x00"))
	mac.Write([]byte(c.Cookies(h.csrfCookieName())))
	raw := mac.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(raw), models.HashToken(raw)
}
