package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/requestid"
)

// requestID is the id the requestid middleware gave this request.
func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(requestid.ConfigDefault.ContextKey).(string)
	return id
}

// logRequests logs one line per request. It logs the path only: query strings
// carry tokens and search terms.
func (h *handler) logRequests(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		// The error handler has not run yet; log the status it will choose.
		status = fiber.StatusInternalServerError
		if fe, ok := err.(*fiber.Error); ok {
			status = fe.Code
		}
	}
	h.log.Info("request", "method", c.Method(), "path", c.Path(), "status", status,
		"took", time.Since(start), "request_id", requestID(c))
	return err
}

// withDeadline gives the request's user context a deadline, so database work
// for a client that is gone, or stuck behind a lock, ends.
func (h *handler) withDeadline(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), h.cfg.RequestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// securityHeaders sends the headers every answer carries, and a
// Content-Security-Policy whose per-request nonce templ puts on script tags.
func (h *handler) securityHeaders(c *fiber.Ctx) error {
	nonce := newNonce()
	c.SetUserContext(templ.WithNonce(c.UserContext(), nonce))
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'self'; "+
		"script-src 'self' 'nonce-"+nonce+"'; style-src 'self'; img-src 'self' data:; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "same-origin")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if h.cfg.BaseURL.Scheme == "https" {
		c.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000; includeSubDomains")
	}
	return c.Next()
}

// newNonce returns 16 random bytes, base64-encoded.
func newNonce() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails: crypto/rand panics rather than return an error
	return base64.StdEncoding.EncodeToString(b)
}

// notFound answers every path no route matched.
func notFound(*fiber.Ctx) error {
	return fiber.ErrNotFound
}
