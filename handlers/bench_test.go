package handlers_test

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
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
