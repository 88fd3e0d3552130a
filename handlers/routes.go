package handlers

import (
	"io/fs"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/gofiber/fiber/v2/middleware/healthcheck"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
)

// routes is the site map: the middleware stack, then one line per route.
func (h *handler) routes(app *fiber.App, static fs.FS) {
	app.Use(recover.New())
	app.Use(requestid.New())
	app.Use(h.logRequests)
	app.Use(healthcheck.New(healthcheck.Config{
		LivenessProbe: h.live, LivenessEndpoint: "/healthz",
		ReadinessProbe: h.ready, ReadinessEndpoint: "/readyz",
	}))
	app.Use(h.securityHeaders)
	// Only static files are compressed: HTML carries CSRF tokens (BREACH).
	app.Use("/static", compress.New(), h.staticFiles(static))
	app.Use(h.withDeadline)
	app.Use(h.csrf)
	app.Use(h.loadSession)

	app.Get("/", h.catalogIndex)
	app.Get("/products/:slug", h.productShow)
	app.Get("/pages/:slug", h.infoShow)
	app.Get("/cart", h.cartShow)
	app.Post("/cart/items", h.cartAddPost)
	app.Post("/cart/items/:product_id", h.cartItemPost)
	app.Post("/cart/items/:product_id/delete", h.cartItemDeletePost)
	app.Get("/account", h.accountShow)
	app.Post("/account/promote", h.accountPromotePost)
	app.Get("/account/password", h.passwordShow)
	app.Post("/account/password", h.passwordPost)
	app.Get("/login", h.loginShow)
	app.Post("/login", h.loginPost)
	app.Post("/logout", h.logoutPost)
	app.Get("/password/forgot", h.forgotShow)
	app.Post("/password/forgot", h.forgotPost)
	admin := app.Group("/admin", h.requireAdmin)
	admin.Get("/users", h.adminUsers)
	admin.Get("/users/:id", h.adminUserShow)
	if h.cfg.DevMailbox {
		app.Get("/dev/mailbox", h.mailboxIndex)
		app.Get("/dev/mailbox/:id", h.mailboxShow)
	}

	app.Use(notFound)
}
