// Package handlers wires Shopfront's HTTP side: the Fiber app, its middleware
// and one file of handlers per area of the site.
package handlers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"shopfront/models"
	"shopfront/views"
)

// Config is the part of the settings the web side needs, validated by cmd.
type Config struct {
	Production bool
	BaseURL    *url.URL
	// SecretKey signs CSRF tokens; every instance must share it.
	SecretKey []byte
	GuestTTL  time.Duration
	TokenTTL  time.Duration
	// GuestsEnabled lets add-to-cart create guest accounts.
	GuestsEnabled bool
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	TrustedProxies []string
	// RequestTimeout bounds the work of one request.
	RequestTimeout time.Duration
	// Limits are the rate limits; DefaultLimits() in production.
	Limits Limits
	// DevMailbox mounts /dev/mailbox: development without SMTP only.
	DevMailbox bool
}

// Deps is everything the handlers need, passed down from main.
type Deps struct {
	DB     *gorm.DB
	SQL    *sql.DB
	Log    *slog.Logger
	Config Config
	// Static is the tree served under /static/ (static.FS in production).
	Static fs.FS
	// OnMail, if set, is called after a request queued mail, to wake the
	// outbox worker.
	OnMail func()
}

// handler holds the dependencies the route handlers share.
type handler struct {
	log          *slog.Logger
	cfg          Config
	sql          *sql.DB
	catalog      *models.Catalog
	listings     *fragmentCache[string]
	categories   *fragmentCache[[]models.Category]
	sessions     *models.Sessions
	guests       *models.Guests
	carts        *models.Carts
	limiter      *models.Limiter
	outbox       *models.Outbox
	accounts     *models.Accounts
	directory    *models.Directory
	stats        *models.Stats
	funnelCache  *fragmentCache[string]
	onMail       func()
	assetVersion string
}

// New builds the Fiber app with its middleware and routes.
func New(d Deps) (*fiber.App, error) {
	h, err := newHandler(d)
	if err != nil {
		return nil, err
	}
	proxyHeader := ""
	if len(d.Config.TrustedProxies) > 0 {
		proxyHeader = fiber.HeaderXForwardedFor
	}
	app := fiber.New(fiber.Config{
		AppName:                 "shopfront",
		ErrorHandler:            h.errorHandler,
		DisableStartupMessage:   true,
		ReadTimeout:             15 * time.Second,
		WriteTimeout:            30 * time.Second,
		IdleTimeout:             2 * time.Minute,
		BodyLimit:               64 * 1024, // forms are small; nothing is uploaded
		ReadBufferSize:          16 * 1024, // request line and headers; longer ones get 431
		EnableTrustedProxyCheck: true,
		TrustedProxies:          d.Config.TrustedProxies,
		ProxyHeader:             proxyHeader,
	})
	h.routes(app, d.Static)
	return app, nil
}

// NewResetJob returns the background job that turns queued forgot-password
// requests into reset links by mail. The outbox worker runs it before each
// drain (and the request kicks the worker through OnMail).
func NewResetJob(d Deps) (func(ctx context.Context) error, error) {
	h, err := newHandler(d)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, err := h.accounts.ProcessResets(ctx, 100, func(email, token string) (models.Email, error) {
			link := h.url("/account/password?token=" + token)
			return h.email(ctx, email, views.ResetMail(link, h.tokenTTLText()))
		})
		return err
	}, nil
}

// newHandler builds the handlers' shared state.
func newHandler(d Deps) (*handler, error) {
	version, err := assetVersion(d.Static)
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}
	h := &handler{
		log:          d.Log,
		cfg:          d.Config,
		sql:          d.SQL,
		catalog:      models.NewCatalog(d.DB),
		listings:     newFragmentCache[string](2 * time.Second),
		categories:   newFragmentCache[[]models.Category](2 * time.Second),
		sessions:     models.NewSessions(d.DB),
		guests:       models.NewGuests(d.DB),
		carts:        models.NewCarts(d.DB),
		limiter:      models.NewLimiter(d.DB),
		outbox:       models.NewOutbox(d.DB),
		accounts:     models.NewAccounts(d.DB, models.NewPasswords(), d.Config.TokenTTL),
		onMail:       d.OnMail,
		directory:    models.NewDirectory(d.DB),
		stats:        models.NewStats(d.DB),
		funnelCache:  newFragmentCache[string](time.Minute),
		assetVersion: version,
	}
	return h, nil
}

// meta is the layout data of the current request. It takes the pending
// flash message, so call it once per page.
func (h *handler) meta(c *fiber.Ctx, title string) views.Meta {
	m := views.Meta{
		Title:        title,
		CSRF:         csrfToken(c),
		AssetVersion: h.assetVersion,
		Flash:        h.takeFlash(c),
		Canonical:    h.url(c.Path()),
	}
	if cur := current(c); cur != nil {
		m.Kind, m.Email, m.IsAdmin, m.CartCount = cur.Kind, cur.Email, cur.IsAdmin, cur.CartCount
	}
	return m
}

// render writes a templ component as the HTML answer with status.
func render(c *fiber.Ctx, status int, page templ.Component) error {
	return renderCtx(c.UserContext(), c, status, page)
}

// renderCtx is render with an explicit context.
func renderCtx(ctx context.Context, c *fiber.Ctx, status int, page templ.Component) error {
	c.Status(status).Type("html", "utf-8")
	if err := page.Render(ctx, c.Response().BodyWriter()); err != nil {
		c.Response().ResetBody() // never send half a page
		return fmt.Errorf("render: %w", err)
	}
	return nil
}

// errorHandler turns every error a handler returns into an HTML page with a
// plain message. Internal errors are logged with the request id, never shown.
func (h *handler) errorHandler(c *fiber.Ctx, err error) error {
	status := fiber.StatusInternalServerError
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		status = fe.Code
	case errors.Is(err, models.ErrNotFound):
		status = fiber.StatusNotFound
	case models.IsUnavailable(err):
		status = fiber.StatusServiceUnavailable
		c.Set(fiber.HeaderRetryAfter, "5")
	}
	if status >= 500 {
		h.log.Error("request failed", "status", status, "method", c.Method(), "path", c.Path(),
			"request_id", requestID(c), "err", err)
	}
	title, message := errorText(status)
	switch {
	case status == fiber.StatusUnprocessableEntity && fe != nil:
		message = fe.Message // written for the visitor by the handler
	case errors.Is(err, errCSRF):
		message = "This form has expired or came from another site. Go back, reload the page and try again."
	}
	c.Response().Header.Del(fiber.HeaderCacheControl)
	c.Set(fiber.HeaderCacheControl, "no-store")
	// The request's deadline may be what failed it; the page still renders
	// (with the CSP nonce the context carries).
	ctx := context.WithoutCancel(c.UserContext())
	if renderErr := renderCtx(ctx, c, status, views.ErrorPage(h.meta(c, title), status, message)); renderErr != nil {
		h.log.Error("render error page", "err", renderErr)
		return c.Status(status).SendString(message)
	}
	return nil
}

// errorText is what a visitor reads for a status.
func errorText(status int) (title, message string) {
	switch status {
	case fiber.StatusNotFound:
		return "Page not found", "We could not find that page. It may have moved, or the address may be mistyped."
	case fiber.StatusForbidden:
		return "Not allowed", "You do not have access to this page."
	case fiber.StatusTooManyRequests:
		return "Slow down", "Too many requests from your address. Please wait a little and try again."
	case fiber.StatusRequestEntityTooLarge, fiber.StatusRequestHeaderFieldsTooLarge, fiber.StatusRequestURITooLong:
		return "Request too large", "That request was larger than we accept."
	case fiber.StatusUnprocessableEntity:
		return "Cannot do that", "That request could not be carried out."
	case fiber.StatusServiceUnavailable:
		return "Back soon", "The shop is briefly unavailable. Please try again in a moment."
	}
	if status >= 500 {
		return "Something went wrong", "Something went wrong on our side. Please try again in a moment."
	}
	return "Bad request", "We could not understand that request."
}
