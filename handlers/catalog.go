package handlers

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"shopfront/models"
	"shopfront/views"
)

// maxQueryLen bounds the search terms; longer ones are refused, not cut.
const maxQueryLen = 200

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,99}$`)

// catalogIndex handles "GET /": the catalog, a search, a category, in a
// sort order, a page of any of these. A bad page or an unknown category is
// a 4xx page; an unknown sort order is ignored.
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
	sort := c.Query("sort")
	if !models.ValidSort(sort) || models.EffectiveSort(q, sort) != sort {
		sort = "" // the default order, so one listing has one URL
	}
	var category *models.Category
	if raw := c.Query("category"); raw != "" {
		var err error
		if category, err = h.categoryBySlug(c.UserContext(), raw); err != nil {
			return err
		}
	}
	v := views.CatalogView{Link: views.CatalogLink{Query: q, Sort: sort, Page: page}, Category: category}
	if category != nil {
		v.Link.Category = category.Slug
	}
	results, err := h.listings.get(c.UserContext(), v.Link.URL(), func(ctx context.Context) (string, error) {
		l := models.Listing{Query: q, Sort: sort, Page: page}
		if category != nil {
			l.CategoryID = category.ID
		}
		var err error
		if v.Page, err = h.catalog.List(ctx, l); err != nil {
			return "", err
		}
		if v.Categories, err = h.allCategories(ctx); err != nil {
			return "", err
		}
		// Only what is the same for every visitor goes into the cached HTML.
		var b strings.Builder
		err = views.CatalogResults(views.Meta{AssetVersion: h.assetVersion}, v).Render(ctx, &b)
		return b.String(), err
	})
	if err != nil {
		return err
	}
	// v.Page is only filled on a miss; the heading needs only the page number.
	v.Page.Page = page
	m := h.meta(c, views.CatalogHeading(v))
	m.Query = q
	canonical := v.Link
	canonical.Sort = ""
	m.Canonical = h.url(canonical.URL())
	switch {
	case q != "":
		m.Description = "Shopfront products matching “" + q + "”."
	case category != nil:
		m.Description = category.Name + " at Shopfront: browse freely, no sign-up needed."
	}
	// results is templ's own escaped output, rendered above.
	return render(c, fiber.StatusOK, views.CatalogPage(m, templ.Raw(results)))
}

// allCategories returns the categories, from the 2 s cache.
func (h *handler) allCategories(ctx context.Context) ([]models.Category, error) {
	return h.categories.get(ctx, "", h.catalog.Categories)
}

// categoryBySlug returns the category with slug, or a 404 saying so.
func (h *handler) categoryBySlug(ctx context.Context, slug string) (*models.Category, error) {
	cats, err := h.allCategories(ctx)
	if err != nil {
		return nil, err
	}
	for i := range cats {
		if cats[i].Slug == slug {
			return &cats[i], nil
		}
	}
	return nil, fiber.NewError(fiber.StatusNotFound, "We have no such category.")
}

// categoryOf returns the category of p, or nil.
func (h *handler) categoryOf(ctx context.Context, p models.Product) (*models.Category, error) {
	if p.CategoryID == nil {
		return nil, nil
	}
	cats, err := h.allCategories(ctx)
	if err != nil {
		return nil, err
	}
	for i := range cats {
		if cats[i].ID == *p.CategoryID {
			return &cats[i], nil
		}
	}
	return nil, nil
}

// productShow handles "GET /products/:slug". ?quantity= sets the stepper,
// which is how its − and + work without JavaScript.
func (h *handler) productShow(c *fiber.Ctx) error {
	slug := c.Params("slug")
	if !slugPattern.MatchString(slug) {
		return fiber.ErrNotFound
	}
	p, err := h.catalog.BySlug(c.UserContext(), slug)
	if err != nil {
		return err
	}
	v := views.ProductView{Product: p, Quantity: 1}
	if n, err := strconv.Atoi(c.Query("quantity")); err == nil {
		v.Quantity = min(max(n, 1), max(1, min(p.Stock, models.MaxQuantity)))
	}
	return h.productPage(c, fiber.StatusOK, v)
}

// productPage renders the product page of v with status.
func (h *handler) productPage(c *fiber.Ctx, status int, v views.ProductView) error {
	var err error
	if v.Category, err = h.categoryOf(c.UserContext(), v.Product); err != nil {
		return err
	}
	if v.Quantity == 0 {
		v.Quantity = 1
	}
	m := h.meta(c, v.Product.Name)
	m.Canonical = h.url("/products/" + v.Product.Slug)
	m.Description = v.Product.Description
	return render(c, status, views.ProductPage(m, v))
}

// infoShow handles "GET /pages/:slug": shipping, returns, privacy, contact.
func (h *handler) infoShow(c *fiber.Ctx) error {
	slug := c.Params("slug")
	title, ok := views.InfoPages()[slug]
	if !ok {
		return fiber.ErrNotFound
	}
	return render(c, fiber.StatusOK, views.InfoPage(h.meta(c, title), slug))
}
