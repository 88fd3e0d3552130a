package handlers

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"shopfront/views"
)

// mailboxLimit is how many messages the development mailbox lists.
const mailboxLimit = 100

// mailLinkPattern finds the http(s) URLs in a plain-text mail body.
var mailLinkPattern = regexp.MustCompile("https?://[^\\s<>\"'`]+")

// mailboxIndex handles "GET /dev/mailbox": the outbox, newest first, for
// development without SMTP.
func (h *handler) mailboxIndex(c *fiber.Ctx) error {
	// The route exists only in development; this guards a mistaken mount,
	// since the mail holds sign-in tokens.
	if !h.cfg.DevMailbox {
		return fiber.ErrNotFound
	}
	msgs, err := h.outbox.Recent(c.UserContext(), mailboxLimit)
	if err != nil {
		return fmt.Errorf("mailbox: %w", err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return render(c, fiber.StatusOK, views.MailboxPage(h.meta(c, "Mailbox"), msgs))
}

// mailboxShow handles "GET /dev/mailbox/:id": one message as text, with its
// links to this site made clickable.
func (h *handler) mailboxShow(c *fiber.Ctx) error {
	if !h.cfg.DevMailbox {
		return fiber.ErrNotFound
	}
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id < 1 {
		return fiber.ErrNotFound
	}
	msg, err := h.outbox.ByID(c.UserContext(), id)
	if err != nil {
		return err // models.ErrNotFound is a 404 page
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return render(c, fiber.StatusOK, views.MailPage(h.meta(c, msg.Subject), msg, h.mailLinks(msg.TextBody)))
}

// mailLinks returns the links in a text body that lead to this site, each
// once. Links elsewhere stay plain text: the mailbox must not become a way
// to click through to whatever a message says.
func (h *handler) mailLinks(body string) []string {
	base := strings.TrimSuffix(h.cfg.BaseURL.String(), "/")
	var links []string
	for _, link := range mailLinkPattern.FindAllString(body, -1) {
		// Sentence punctuation after a link is not part of it.
		link = strings.TrimRight(link, ".,;:!?)]}")
		if onSite(link, base) && !slices.Contains(links, link) {
			links = append(links, link)
		}
	}
	return links
}

// onSite reports whether link is base or a page under it. A bare prefix
// test would let "http://shop.test.evil.example" or "http://shop.test@evil.example"
// pass for "http://shop.test".
func onSite(link, base string) bool {
	rest, ok := strings.CutPrefix(link, base)
	return ok && (rest == "" || strings.ContainsRune("/?#", rune(rest[0])))
}
