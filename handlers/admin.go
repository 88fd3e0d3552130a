package handlers

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/google/uuid"

	"shopfront/models"
	"shopfront/views"
)

// adminPageSize is how many users one page of the admin list shows.
const adminPageSize = 50

// requireAdmin guards /admin: visitors and guests are sent to sign in,
// signed-in customers who are not admins get 403.
func (h *handler) requireAdmin(c *fiber.Ctx) error {
	cur := current(c)
	if cur == nil || cur.IsGuest() {
		return c.Redirect("/login?next="+url.QueryEscape(utils.CopyString(c.OriginalURL())), fiber.StatusSeeOther)
	}
	if !cur.IsAdmin {
		return fiber.ErrForbidden
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}

// adminUsers handles "GET /admin/users": every account, newest first,
// filtered by kind and email, a keyset page at a time.
func (h *handler) adminUsers(c *fiber.Ctx) error {
	f := models.UserFilter{Kind: c.Query("kind"), Query: strings.TrimSpace(c.Query("q")), Limit: adminPageSize}
	if f.Kind != "" && f.Kind != models.KindGuest && f.Kind != models.KindRegistered {
		return fiber.NewError(fiber.StatusBadRequest, "unknown kind")
	}
	if len(f.Query) > 254 || !utf8.ValidString(f.Query) || strings.ContainsRune(f.Query, 0) {
		return fiber.NewError(fiber.StatusBadRequest, "bad search")
	}
	if after := c.Query("after"); after != "" {
		id, err := uuid.Parse(after)
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, "bad cursor")
		}
		f.After = id
	}
	ctx := c.UserContext()
	rows, more, err := h.directory.Users(ctx, f)
	if err != nil {
		return err
	}
	v := views.AdminUsers{Kind: f.Kind, Query: f.Query, Rows: rows}
	if more {
		v.NextURL = adminUsersURL(f, rows[len(rows)-1].ID)
	}
	if f.After != uuid.Nil {
		v.FirstURL = adminUsersURL(f, uuid.Nil)
	}
	if v.Guests, err = h.directory.CountKind(ctx, models.KindGuest); err != nil {
		return err
	}
	if v.Registered, err = h.directory.CountKind(ctx, models.KindRegistered); err != nil {
		return err
	}
	if f == (models.UserFilter{Limit: adminPageSize}) {
		if v.Funnel, err = h.funnel(ctx); err != nil {
			return err
		}
	}
	return render(c, fiber.StatusOK, views.AdminUsersPage(h.meta(c, "Users"), v))
}

// funnelDays is how far back the conversion funnel looks.
const funnelDays = 30

// funnel is the conversion funnel chart, computed at most once a minute:
// its queries scan a month of events.
func (h *handler) funnel(ctx context.Context) (templ.Component, error) {
	html, err := h.funnelCache.get(ctx, "funnel", func(ctx context.Context) (string, error) {
		f, err := h.stats.Funnel(ctx, time.Now(), funnelDays)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		err = views.FunnelChart(f).Render(ctx, &b)
		return b.String(), err
	})
	if err != nil {
		return nil, err
	}
	return templ.Raw(html), nil // templ's own escaped output
}

// adminUsersURL links to the page after id (the first page for Nil) with
// the same filters.
func adminUsersURL(f models.UserFilter, after uuid.UUID) string {
	q := url.Values{}
	if after != uuid.Nil {
		q.Set("after", after.String())
	}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	if f.Query != "" {
		q.Set("q", f.Query)
	}
	if len(q) == 0 {
		return "/admin/users"
	}
	return "/admin/users?" + q.Encode()
}

// adminUserShow handles "GET /admin/users/:id".
func (h *handler) adminUserShow(c *fiber.Ctx) error {
	id, err := uuid.Parse(c.Params("id"))
	if err != nil {
		return fiber.ErrNotFound
	}
	d, err := h.directory.User(c.UserContext(), id)
	if err != nil {
		return err
	}
	title := "Guest"
	if d.User.Email != nil {
		title = *d.User.Email
	}
	return render(c, fiber.StatusOK, views.AdminUserPage(h.meta(c, title), d))
}
