package models_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"shopfront/models"
	"shopfront/models/modeltest"
)

func TestCatalogList(t *testing.T) {
	db := modeltest.NewDB(t)
	catalog := models.NewCatalog(db)
	ctx := context.Background()

	t.Run("first page of everything", func(t *testing.T) {
		page, err := catalog.List(ctx, models.Listing{Page: 1})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total < 48 {
			t.Fatalf("total = %d, want at least 48 seeded products", page.Total)
		}
		if len(page.Products) != models.CatalogPageSize {
			t.Fatalf("got %d products, want %d", len(page.Products), models.CatalogPageSize)
		}
		if want := int((page.Total + 23) / 24); page.Pages != want {
			t.Fatalf("pages = %d, want %d", page.Pages, want)
		}
	})

	t.Run("pages neither skip nor repeat", func(t *testing.T) {
		seen := map[int64]bool{}
		first, err := catalog.List(ctx, models.Listing{Page: 1})
		if err != nil {
			t.Fatal(err)
		}
		for p := 1; p <= first.Pages; p++ {
			page, err := catalog.List(ctx, models.Listing{Page: p})
			if err != nil {
				t.Fatal(err)
			}
			for _, prod := range page.Products {
				if seen[prod.ID] {
					t.Fatalf("product %d on two pages", prod.ID)
				}
				seen[prod.ID] = true
			}
		}
		if int64(len(seen)) != first.Total {
			t.Fatalf("saw %d products over all pages, want %d", len(seen), first.Total)
		}
	})

	t.Run("search matches name or description case-insensitively", func(t *testing.T) {
		page, err := catalog.List(ctx, models.Listing{Query: "CERAMIC", Page: 1})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total < 2 {
			t.Fatalf("search ceramic: total = %d, want several", page.Total)
		}
		if int64(len(page.Products)) != page.Total {
			t.Fatalf("got %d products, total %d", len(page.Products), page.Total)
		}
	})

	t.Run("search syntax and wildcards are only words", func(t *testing.T) {
		all, err := catalog.List(ctx, models.Listing{Page: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"q%z", "_q_", `q\z`, "%%'; DROP TABLE products; --", `"unclosed`, "-", "or or", "!&|:*", "the"} {
			page, err := catalog.List(ctx, models.Listing{Query: q, Page: 1})
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			if page.Total >= all.Total {
				t.Fatalf("search %q found all %d products", q, page.Total)
			}
		}
	})

	t.Run("page past the end is empty", func(t *testing.T) {
		page, err := catalog.List(ctx, models.Listing{Page: 99})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Products) != 0 || page.Total == 0 {
			t.Fatalf("page 99: %d products, total %d; want none of a non-zero total", len(page.Products), page.Total)
		}
	})
}

func TestCatalogListQueryCount(t *testing.T) {
	db := modeltest.NewDB(t)
	queries := 0
	if err := db.Callback().Query().Before("gorm:query").Register("count", func(*gorm.DB) { queries++ }); err != nil {
		t.Fatal(err)
	}
	if _, err := models.NewCatalog(db).List(context.Background(), models.Listing{Page: 1}); err != nil {
		t.Fatal(err)
	}
	// Count and page: the number must not grow with the products shown.
	if queries != 2 {
		t.Fatalf("catalog page ran %d queries, want 2", queries)
	}
}

func TestCatalogBySlug(t *testing.T) {
	catalog := models.NewCatalog(modeltest.NewDB(t))
	ctx := context.Background()
	p, err := catalog.BySlug(ctx, "enamel-tea-kettle")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name == "" || p.PriceCents <= 0 || p.Currency != "EUR" {
		t.Fatalf("product = %+v, want a named, priced EUR product", p)
	}
	if _, err := catalog.BySlug(ctx, "no-such-product"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("unknown slug: err = %v, want ErrNotFound", err)
	}
}

func TestSeedIsIdempotent(t *testing.T) {
	db := modeltest.NewDB(t) // already seeded once
	catalog := models.NewCatalog(db)
	ctx := context.Background()
	before, err := catalog.List(ctx, models.Listing{Page: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("UPDATE products SET stock = 7 WHERE slug = 'enamel-tea-kettle'").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := catalog.List(ctx, models.Listing{Page: 1})
	if err != nil {
		t.Fatal(err)
	}
	if after.Total != before.Total {
		t.Fatalf("second seed: %d products, want %d", after.Total, before.Total)
	}
	p, err := catalog.BySlug(ctx, "enamel-tea-kettle")
	if err != nil {
		t.Fatal(err)
	}
	if p.Stock != 7 {
		t.Fatalf("stock after reseed = %d, want the shop's 7 kept", p.Stock)
	}
}

func TestCatalogSearch(t *testing.T) {
	db := modeltest.NewDB(t)
	catalog := models.NewCatalog(db)
	ctx := context.Background()
	names := func(t *testing.T, l models.Listing) (models.ProductPage, []string) {
		t.Helper()
		page, err := catalog.List(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		var ns []string
		for _, p := range page.Products {
			ns = append(ns, p.Name)
		}
		return page, ns
	}

	for _, tc := range []struct {
		query, first string
	}{
		{"teapots", "Glass Teapot with Infuser"}, // plural, stemmed
		{"Mugs", "Enamel Camping Mug"},           // capitals and plural; name before description
		{"jar glass", "Glass Storage Jar"},       // word order
		{"skillet", "Cast Iron Skillet"},
	} {
		t.Run(tc.query+" finds "+tc.first, func(t *testing.T) {
			page, ns := names(t, models.Listing{Query: tc.query})
			if len(ns) == 0 || page.Suggestion != "" {
				t.Fatalf("search %q: %v (suggestion %q), want %q without a correction", tc.query, ns, page.Suggestion, tc.first)
			}
			if !slices.Contains(ns, tc.first) {
				t.Fatalf("search %q: %v, want %q among them", tc.query, ns, tc.first)
			}
			if page.Sort != models.SortRelevance {
				t.Fatalf("search sorted by %q, want relevance", page.Sort)
			}
		})
	}
	t.Run("a name match ranks above a description match", func(t *testing.T) {
		_, ns := names(t, models.Listing{Query: "mug"})
		// "Stoneware Mug" and "Enamel Camping Mug" have it in the name; the
		// espresso cups only in the description, if at all.
		if len(ns) < 2 || !strings.Contains(ns[0], "Mug") || !strings.Contains(ns[1], "Mug") {
			t.Fatalf("search mug ranks %v, want the two mugs first", ns)
		}
	})
	t.Run("a typo is corrected", func(t *testing.T) {
		page, ns := names(t, models.Listing{Query: "candel"})
		if page.Suggestion != "candle" {
			t.Fatalf("search candel: suggestion %q, want candle", page.Suggestion)
		}
		if !slices.Contains(ns, "Beeswax Pillar Candle") {
			t.Fatalf("search candel: %v, want the candles", ns)
		}
	})
	t.Run("one wrong letter in two words", func(t *testing.T) {
		page, ns := names(t, models.Listing{Query: "glas teapor"})
		if page.Suggestion != "glass teapot" || !slices.Contains(ns, "Glass Teapot with Infuser") {
			t.Fatalf("search 'glas teapor': %v, suggestion %q", ns, page.Suggestion)
		}
	})
	t.Run("gibberish finds nothing and suggests nothing", func(t *testing.T) {
		page, ns := names(t, models.Listing{Query: "zzqxv"})
		if len(ns) != 0 || page.Total != 0 || page.Suggestion != "" {
			t.Fatalf("search zzqxv: %v, suggestion %q", ns, page.Suggestion)
		}
	})

	cats, err := catalog.Categories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cats) < 5 || len(cats) > 8 {
		t.Fatalf("%d categories, want 5 to 8", len(cats))
	}
	var kitchen models.Category
	for _, c := range cats {
		if c.Slug == "kitchen" {
			kitchen = c
		}
	}
	t.Run("every product has a category", func(t *testing.T) {
		var n int64
		if err := db.Model(&models.Product{}).Where("category_id IS NULL").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d products without a category", n)
		}
	})
	t.Run("category, search and sort combine", func(t *testing.T) {
		page, err := catalog.List(ctx, models.Listing{Query: "ceramic", CategoryID: kitchen.ID, Sort: models.SortPriceDesc})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Products) < 2 {
			t.Fatalf("ceramic in kitchen: %d products, want several", len(page.Products))
		}
		for i, p := range page.Products {
			if p.CategoryID == nil || *p.CategoryID != kitchen.ID {
				t.Fatalf("%s is not in the kitchen", p.Name)
			}
			if i > 0 && p.PriceCents > page.Products[i-1].PriceCents {
				t.Fatalf("not by price descending: %s after %s", p.Name, page.Products[i-1].Name)
			}
		}
	})
	t.Run("sorts", func(t *testing.T) {
		for _, sort := range []string{models.SortName, models.SortPriceAsc, models.SortPriceDesc, models.SortNewest} {
			page, err := catalog.List(ctx, models.Listing{Sort: sort, Page: 1})
			if err != nil {
				t.Fatal(err)
			}
			ps := page.Products
			for i := 1; i < len(ps); i++ {
				var ok bool
				switch sort {
				case models.SortName:
					ok = ps[i-1].Name <= ps[i].Name
				case models.SortPriceAsc:
					ok = ps[i-1].PriceCents <= ps[i].PriceCents
				case models.SortPriceDesc:
					ok = ps[i-1].PriceCents >= ps[i].PriceCents
				case models.SortNewest:
					ok = !ps[i-1].CreatedAt.Before(ps[i].CreatedAt)
				}
				if !ok {
					t.Fatalf("sort %s: %s before %s", sort, ps[i-1].Name, ps[i].Name)
				}
			}
		}
	})
	t.Run("an unknown sort is the default", func(t *testing.T) {
		page, err := catalog.List(ctx, models.Listing{Sort: "bogus"})
		if err != nil {
			t.Fatal(err)
		}
		if page.Sort != models.SortName {
			t.Fatalf("sort = %q, want name", page.Sort)
		}
	})
}
