package handlers

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// live says the process serves requests.
func (h *handler) live(*fiber.Ctx) bool { return true }

// ready says the database answers, so a load balancer sends traffic here.
func (h *handler) ready(c *fiber.Ctx) bool {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	return h.sql.PingContext(ctx) == nil
}
