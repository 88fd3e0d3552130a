package handlers

import (
	"net/url"

	"github.com/gofiber/fiber/v2"
)

const flashCookie = "flash"

// setFlash keeps a message for the next page the browser shows, across the
// 303 redirect that follows a successful form post.
func (h *handler) setFlash(c *fiber.Ctx, message string) {
	c.Cookie(&fiber.Cookie{
		Name:     flashCookie,
		Value:    url.QueryEscape(message),
		Path:     "/",
		MaxAge:   60,
		HTTPOnly: true,
		Secure:   h.cfg.BaseURL.Scheme == "https",
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// takeFlash returns the pending message, if any, and clears it.
func (h *handler) takeFlash(c *fiber.Ctx) string {
	raw := c.Cookies(flashCookie)
	if raw == "" {
		return ""
	}
	c.Cookie(&fiber.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HTTPOnly: true})
	msg, err := url.QueryUnescape(raw)
	if err != nil || len(msg) > 300 {
		return ""
	}
	return msg
}

// redirect answers a successful form post: 303 to target for a plain form,
// HX-Redirect for htmx.
func redirect(c *fiber.Ctx, target string) error {
	if isHTMX(c) {
		c.Set("HX-Redirect", target)
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.Redirect(target, fiber.StatusSeeOther)
}

// isHTMX reports whether htmx sent the request, wanting a fragment.
func isHTMX(c *fiber.Ctx) bool {
	return c.Get("HX-Request") == "true"
}
