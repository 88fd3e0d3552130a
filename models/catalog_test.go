package models_test

import (
	"context"
	"errors"
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
		page, err := catalog.List(ctx, "", 1)
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
		first, err := catalog.List(ctx, "", 1)
		if err != nil {
			t.Fatal(err)
		}
		for p := 1; p <= first.Pages; p++ {
			page, err := catalog.List(ctx, "", p)
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
		page, err := catalog.List(ctx, "CERAMIC", 1)
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

	t.Run("wildcards match literally", func(t *testing.T) {
		for _, q := range []string{"q%z", "_q_", `q\z`, "%%'; DROP TABLE products; --"} {
			page, err := catalog.List(ctx, q, 1)
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			if page.Total != 0 || len(page.Products) != 0 {
				t.Fatalf("search %q found %d products, want none", q, page.Total)
			}
		}
	})

	t.Run("page past the end is empty", func(t *testing.T) {
		page, err := catalog.List(ctx, "", 99)
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
	if _, err := models.NewCatalog(db).List(context.Background(), "", 1); err != nil {
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
	before, err := catalog.List(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("UPDATE products SET stock = 7 WHERE slug = 'enamel-tea-kettle'").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := catalog.List(ctx, "", 1)
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
