package handlers

import (
	"github.com/gofiber/fiber/v2"

	"shopfront/views"
)

// accountShow handles "GET /account". It creates nothing for a visitor.
func (h *handler) accountShow(c *fiber.Ctx) error {
	return render(c, fiber.StatusOK, views.AccountPage(h.meta(c, "Your account")))
}
