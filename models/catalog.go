package models

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CatalogPageSize is how many products one catalog page shows.
const CatalogPageSize = 24

// Catalog reads and seeds the product catalog.
type Catalog struct {
	db *gorm.DB
}

// NewCatalog returns the catalog over db.
func NewCatalog(db *gorm.DB) *Catalog {
	return &Catalog{db: db}
}

// ProductPage is one page of a catalog listing.
type ProductPage struct {
	Products []Product
	Total    int64 // products matching the search, on every page
	Page     int   // 1-based
	Pages    int   // at least 1
}

// List returns page (1-based) of the products whose name or description
// contains query, case-insensitively; an empty query lists everything. Two
// queries whatever the page size: a count and the page itself.
func (c *Catalog) List(ctx context.Context, query string, page int) (ProductPage, error) {
	if page < 1 {
		page = 1
	}
	q := c.db.WithContext(ctx).Model(&Product{})
	if query = strings.TrimSpace(query); query != "" {
		// The same expression as the trigram index, so the index serves it.
		q = q.Where("(name || ' ' || description) ILIKE ?", "%"+escapeLike(query)+"%")
	}
	res := ProductPage{Page: page}
	if err := q.Count(&res.Total).Error; err != nil {
		return ProductPage{}, fmt.Errorf("count products: %w", err)
	}
	res.Pages = max(1, int((res.Total+CatalogPageSize-1)/CatalogPageSize))
	if page > res.Pages {
		return res, nil
	}
	err := q.Order("name, id").Limit(CatalogPageSize).Offset((page - 1) * CatalogPageSize).
		Find(&res.Products).Error
	if err != nil {
		return ProductPage{}, fmt.Errorf("list products: %w", err)
	}
	return res, nil
}

// BySlug returns the product with slug, or ErrNotFound.
func (c *Catalog) BySlug(ctx context.Context, slug string) (Product, error) {
	var p Product
	err := c.db.WithContext(ctx).Where("slug = ?", slug).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("product %q: %w", slug, err)
	}
	return p, nil
}

// ByID returns the product with id, or ErrNotFound.
func (c *Catalog) ByID(ctx context.Context, id int64) (Product, error) {
	var p Product
	err := c.db.WithContext(ctx).Where("id = ?", id).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("product %d: %w", id, err)
	}
	return p, nil
}

// Seed loads the demo catalog. It is idempotent: a product that exists (by
// slug) gets the demo texts and price again, keeps its stock, and nothing is
// duplicated.
func (c *Catalog) Seed(ctx context.Context) (int, error) {
	products := demoProducts()
	err := c.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "slug"}},
		DoUpdates: clause.AssignmentColumns([]string{"name", "description", "price_cents", "currency", "image"}),
	}).Create(&products).Error
	if err != nil {
		return 0, fmt.Errorf("seed catalog: %w", err)
	}
	return len(products), nil
}

// escapeLike escapes LIKE's wildcards so user input matches literally.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
