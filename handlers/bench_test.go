package handlers_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"shopfront/handlers"
	"shopfront/models"
)

// BenchmarkCatalogPage renders GET / through the whole middleware stack,
// in process (no network), as a first visitor.
func BenchmarkCatalogPage(b *testing.B) {
	app, _ := newApp(b)
	handler := app.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
		for pb.Next() {
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, addr, nil)
			ctx.Request.SetRequestURI("/")
			handler(&ctx)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
		}
	})
}

// benchPost times one form post per iteration through the whole stack, in
// process, and reports the p50 and p99 of the requests.
func benchPost(b *testing.B, app *fiber.App, path string, cookies map[string]string, form func(i int) url.Values, want int) {
	b.Helper()
	handler := app.Handler()
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
	var cookie strings.Builder
	for k, v := range cookies {
		fmt.Fprintf(&cookie, "%s=%s; ", k, v)
	}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ctx fasthttp.RequestCtx
		ctx.Init(&fasthttp.Request{}, addr, nil)
		ctx.Request.Header.SetMethod(fiber.MethodPost)
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.SetContentType(fiber.MIMEApplicationForm)
		ctx.Request.Header.Set("Cookie", cookie.String())
		ctx.Request.SetBodyString(form(i).Encode())
		start := time.Now()
		handler(&ctx)
		times = append(times, time.Since(start))
		if ctx.Response.StatusCode() != want {
			b.Fatalf("status %d, want %d: %.300s", ctx.Response.StatusCode(), want, ctx.Response.Body())
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}

func unlimited(c *handlers.Config) {
	c.Limits = handlers.Limits{
		GuestCreation: handlers.Limit{Max: 1 << 30, Window: time.Hour},
		Login:         handlers.Limit{Max: 1 << 30, Window: time.Hour},
		Emails:        handlers.Limit{Max: 1 << 30, Window: time.Hour},
	}
}

// BenchmarkPromotePost: a guest asks for the set-password link (token,
// outbox row and event in one transaction; no hashing).
func BenchmarkPromotePost(b *testing.B) {
	app, db := newApp(b, unlimited)
	c := newClient(b, app)
	wantStatus(b, add(c, productID(b, db, "stoneware-mug"), "1"), http.StatusSeeOther)
	cookies := map[string]string{"csrf": c.cookies["csrf"], "sid": c.cookies["sid"]}
	token := c.csrf()
	benchPost(b, app, "/account/promote", cookies, func(i int) url.Values {
		return url.Values{"_csrf": {token}, "email": {fmt.Sprintf("shopper%d@example.com", i)}}
	}, http.StatusSeeOther)
}

// BenchmarkLoginPost: a correct sign-in (argon2id check, session rotation).
func BenchmarkLoginPost(b *testing.B) {
	app, db := newApp(b, unlimited)
	hash, err := models.NewPasswords().Hash(context.Background(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	db.Exec(`INSERT INTO users (id, kind, email, password_hash, email_verified_at)
		VALUES (gen_random_uuid(), 'registered', 'ada@example.com', ?, now())`, hash)
	c := newClient(b, app)
	token := c.csrf()
	benchPost(b, app, "/login", map[string]string{"csrf": c.cookies["csrf"]}, func(int) url.Values {
		return url.Values{"_csrf": {token}, "email": {"ada@example.com"}, "password": {"correct horse battery staple"}}
	}, http.StatusSeeOther)
}
