package models

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CatalogPageSize is how many products one catalog page shows.
const CatalogPageSize = 24

// The orders a listing can be sorted in. Relevance applies to searches only.
const (
	SortRelevance = "relevance"
	SortName      = "name"
	SortPriceAsc  = "price_asc"
	SortPriceDesc = "price_desc"
	SortNewest    = "newest"
)

// ValidSort reports whether s is one of the sort orders.
func ValidSort(s string) bool {
	switch s {
	case SortRelevance, SortName, SortPriceAsc, SortPriceDesc, SortNewest:
		return true
	}
	return false
}

// productColumns are the columns a Product is read from; the search vector
// stays in the database.
const productColumns = "id, slug, name, description, price_cents, currency, image, stock, created_at, category_id"

// Catalog reads and seeds the product catalog.
type Catalog struct {
	db *gorm.DB
}

// NewCatalog returns the catalog over db.
func NewCatalog(db *gorm.DB) *Catalog {
	return &Catalog{db: db}
}

// Listing asks for one page of the catalog.
type Listing struct {
	Query      string // search words; empty lists everything
	CategoryID int64  // 0: every category
	Sort       string // one of the Sort constants; empty or invalid: the default
	Page       int    // 1-based
}

// ProductPage is one page of a catalog listing.
type ProductPage struct {
	Products []Product
	Total    int64  // products matching the search, on every page
	Page     int    // 1-based
	Pages    int    // at least 1
	Sort     string // the order applied
	// Suggestion is set when the query matched nothing and a spelling
	// correction of it did: the products are the suggestion's.
	Suggestion string
}

// EffectiveSort is the order a listing is shown in: relevance for a search
// unless another order is asked for, and name for everything else.
func EffectiveSort(query, sort string) string {
	switch {
	case !ValidSort(sort) || sort == SortRelevance:
		if strings.TrimSpace(query) != "" {
			return SortRelevance
		}
		return SortName
	}
	return sort
}

// List returns a page of the products matching l. A search is PostgreSQL
// full-text search (English stemming, name weighted above description);
// when it finds nothing, each unknown word is replaced by the nearest word
// of the catalog (trigram distance) and the corrected search is run and
// reported as the Suggestion. Two queries for a page, plus two for a
// correction.
func (c *Catalog) List(ctx context.Context, l Listing) (ProductPage, error) {
	l.Query = strings.TrimSpace(l.Query)
	l.Sort = EffectiveSort(l.Query, l.Sort)
	l.Page = max(l.Page, 1)
	res, err := c.list(ctx, l)
	if err != nil || res.Total > 0 || l.Query == "" {
		return res, err
	}
	suggestion, err := c.correct(ctx, l.Query)
	if err != nil || suggestion == "" {
		return res, err
	}
	l.Query = suggestion
	corrected, err := c.list(ctx, l)
	if err != nil || corrected.Total == 0 {
		return res, err
	}
	corrected.Suggestion = suggestion
	return corrected, nil
}

func (c *Catalog) list(ctx context.Context, l Listing) (ProductPage, error) {
	where := func() *gorm.DB {
		q := c.db.WithContext(ctx).Model(&Product{})
		if l.CategoryID != 0 {
			q = q.Where("category_id = ?", l.CategoryID)
		}
		if l.Query != "" {
			q = q.Where("search @@ websearch_to_tsquery('english', ?)", l.Query)
		}
		return q
	}
	res := ProductPage{Page: l.Page, Sort: l.Sort}
	if err := where().Count(&res.Total).Error; err != nil {
		return ProductPage{}, fmt.Errorf("count products: %w", err)
	}
	res.Pages = max(1, int((res.Total+CatalogPageSize-1)/CatalogPageSize))
	if l.Page > res.Pages || res.Total == 0 {
		return res, nil
	}
	var order clause.Expression
	switch l.Sort {
	case SortRelevance:
		order = clause.Expr{SQL: "ts_rank(search, websearch_to_tsquery('english', ?)) DESC, name, id", Vars: []any{l.Query}}
	case SortPriceAsc:
		order = clause.Expr{SQL: "price_cents, id"}
	case SortPriceDesc:
		order = clause.Expr{SQL: "price_cents DESC, id DESC"}
	case SortNewest:
		order = clause.Expr{SQL: "created_at DESC, id DESC"}
	default:
		order = clause.Expr{SQL: "name, id"}
	}
	err := where().Select(productColumns).Clauses(clause.OrderBy{Expression: order}).
		Limit(CatalogPageSize).Offset((l.Page - 1) * CatalogPageSize).Find(&res.Products).Error
	if err != nil {
		return ProductPage{}, fmt.Errorf("list products: %w", err)
	}
	return res, nil
}

// wordPattern finds the words of a search worth correcting.
var wordPattern = regexp.MustCompile(`\pL+`)

// correct returns query with each word replaced by the nearest word of the
// catalog (trigram similarity at least pg_trgm's 0.3), or "" when nothing
// changed. One query, on the trigram index of search_words.
func (c *Catalog) correct(ctx context.Context, query string) (string, error) {
	words := wordPattern.FindAllString(strings.ToLower(query), 8)
	if len(words) == 0 {
		return "", nil
	}
	var nearest []struct {
		N    int
		Word *string
	}
	err := c.db.WithContext(ctx).Raw(`
		SELECT w.n, s.word FROM unnest(?::text[]) WITH ORDINALITY AS w(input, n)
		LEFT JOIN LATERAL (
			SELECT word FROM search_words
			WHERE length(w.input) >= 3 AND word % w.input
			ORDER BY word <-> w.input LIMIT 1
		) s ON true
		ORDER BY w.n`, pgTextArray(words)).Scan(&nearest).Error
	if err != nil {
		return "", fmt.Errorf("correct search %q: %w", query, err)
	}
	changed := false
	for _, r := range nearest {
		if r.Word != nil && *r.Word != words[r.N-1] {
			words[r.N-1], changed = *r.Word, true
		}
	}
	if !changed {
		return "", nil
	}
	return strings.Join(words, " "), nil
}

// pgTextArray writes words (letters only) as a PostgreSQL array literal.
func pgTextArray(words []string) string {
	return "{" + strings.Join(words, ",") + "}"
}

// Categories returns every category in menu order.
func (c *Catalog) Categories(ctx context.Context) ([]Category, error) {
	var cs []Category
	if err := c.db.WithContext(ctx).Order("position, name").Find(&cs).Error; err != nil {
		return nil, fmt.Errorf("categories: %w", err)
	}
	return cs, nil
}

// BySlug returns the product with slug, or ErrNotFound.
func (c *Catalog) BySlug(ctx context.Context, slug string) (Product, error) {
	var p Product
	err := c.db.WithContext(ctx).Select(productColumns).Where("slug = ?", slug).Take(&p).Error
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
	err := c.db.WithContext(ctx).Select(productColumns).Where("id = ?", id).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("product %d: %w", id, err)
	}
	return p, nil
}

// Seed loads the demo catalog. It is idempotent: a category or product that
// exists (by slug) gets the demo texts, price and category again, a product
// keeps its stock, and nothing is duplicated. It refreshes the words the
// search corrects spelling with.
func (c *Catalog) Seed(ctx context.Context) (int, error) {
	categories := demoCategories()
	products := demoProducts()
	err := c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "slug"}},
			DoUpdates: clause.AssignmentColumns([]string{"name", "position"}),
		}).Create(&categories).Error
		if err != nil {
			return fmt.Errorf("seed categories: %w", err)
		}
		ids := make(map[string]int64, len(categories))
		for _, cat := range categories {
			ids[cat.Slug] = cat.ID
		}
		of := demoProductCategory()
		for i := range products {
			if id, ok := ids[of[products[i].Slug]]; ok {
				products[i].CategoryID = &id
			}
		}
		err = tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "slug"}},
			DoUpdates: clause.AssignmentColumns([]string{"name", "description", "price_cents", "currency", "image", "category_id"}),
		}).Create(&products).Error
		if err != nil {
			return fmt.Errorf("seed products: %w", err)
		}
		return c.refreshWords(tx)
	})
	if err != nil {
		return 0, err
	}
	return len(products), nil
}

// RefreshSearchWords rebuilds the words spelling corrections are made from;
// run it after changing products.
func (c *Catalog) RefreshSearchWords(ctx context.Context) error {
	return c.refreshWords(c.db.WithContext(ctx))
}

func (c *Catalog) refreshWords(db *gorm.DB) error {
	if err := db.Exec("REFRESH MATERIALIZED VIEW search_words").Error; err != nil {
		return fmt.Errorf("refresh search words: %w", err)
	}
	return nil
}

// escapeLike escapes LIKE's wildcards so user input matches literally.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
