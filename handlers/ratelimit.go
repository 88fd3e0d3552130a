package handlers

import (
	"math"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Limit is a number of requests allowed per window.
type Limit struct {
	Max    int
	Window time.Duration
}

// Limits are the rate limits of the sensitive actions, per client address.
type Limits struct {
	GuestCreation Limit
	Login         Limit
	// Emails limits promote and forgot-password requests, per client address
	// and per recipient.
	Emails Limit
}

// DefaultLimits are the production limits.
func DefaultLimits() Limits {
	return Limits{
		GuestCreation: Limit{Max: 30, Window: time.Hour},
		Login:         Limit{Max: 10, Window: time.Minute},
		Emails:        Limit{Max: 5, Window: time.Hour},
	}
}

// allow counts one request of action by subject (a client address, an email)
// against l, in the database so that every instance shares the count. Over
// the limit it answers 429 with Retry-After.
func (h *handler) allow(c *fiber.Ctx, action, subject string, l Limit) error {
	ok, retry, err := h.limiter.Allow(c.UserContext(), action+":"+subject, l.Max, l.Window)
	if err != nil {
		return err
	}
	if !ok {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		return fiber.ErrTooManyRequests
	}
	return nil
}

// allowEmail limits a request that sends mail, per client address and per
// recipient: neither one address nor one inbox can be flooded.
func (h *handler) allowEmail(c *fiber.Ctx, action, recipient string) error {
	if err := h.allow(c, action+"-ip", c.IP(), h.cfg.Limits.Emails); err != nil {
		return err
	}
	return h.allow(c, action+"-to", recipient, h.cfg.Limits.Emails)
}
