package handlers

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"shopfront/views"
)

// maxQueryLen bounds the search terms; longer ones are refused, not cut.
const maxQueryLen = 200

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,99}$`)

// catalogIndex handles "GET /": the catalog, a search, a page of either.
func (h *handler) catalogIndex(c *fiber.Ctx) error {
	q := strings.TrimSpace(c.Query("q"))
	if len(q) > maxQueryLen || !utf8.ValidString(q) || strings.ContainsRune(q, 0) {
		return fiber.NewError(fiber.StatusBadRequest, "bad search")
	}
	page := 1
	if raw := c.Query("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 10_000 {
			return fiber.NewError(fiber.StatusBadRequest, "bad page")
		}
		page = n
	}
	results, err := h.listings.get(c.UserContext(), strconv.Itoa(page)+"\x00"+q, func(ctx context.Context) (string, error) {
		products, err := h.catalog.List(ctx, q, page)
		if err != nil {
			return "", err
		}
		// Only what is the same for every visitor goes into the cached HTML.
		var b strings.Builder
		err = views.CatalogResults(views.Meta{Query: q, AssetVersion: h.assetVersion}, products).Render(ctx, &b)
		return b.String(), err
	})
	if err != nil {
		return err
	}
	title := "Products"
	if q != "" {
		title = "Search: " + q
	}
	m := h.meta(c, title)
	m.Query = q
	// results is templ's own escaped output, rendered above.
	return render(c, fiber.StatusOK, views.CatalogPage(m, templ.Raw(results)))
}

// productShow handles "GET /products/:slug".
func (h *handler) productShow(c *fiber.Ctx) error {
	slug := c.Params("slug")
	if !slugPattern.MatchString(slug) {
		return fiber.ErrNotFound
	}
	p, err := h.catalog.BySlug(c.UserContext(), slug)
	if err != nil {
		return err
	}
	return render(c, fiber.StatusOK, views.ProductPage(h.meta(c, p.Name), p, ""))
}
