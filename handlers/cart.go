package handlers

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"shopfront/models"
	"shopfront/views"
)

// cartShow handles "GET /cart". A visitor without a session sees an empty
// cart; nothing is created.
func (h *handler) cartShow(c *fiber.Ctx) error {
	var lines []models.CartLine
	if cur := current(c); cur != nil {
		var err error
		if lines, err = h.carts.Lines(c.UserContext(), cur.UserID); err != nil {
			return err
		}
	}
	return render(c, fiber.StatusOK, views.CartPage(h.meta(c, "Your cart"), lines, ""))
}

// cartAddPost handles "POST /cart/items": the first successful add of a
// visitor creates the guest account.
func (h *handler) cartAddPost(c *fiber.Ctx) error {
	productID, ok := parseID(c.FormValue("product_id"))
	if !ok {
		return fiber.NewError(fiber.StatusUnprocessableEntity, "Choose a product to add.")
	}
	product, err := h.catalog.ByID(c.UserContext(), productID)
	if err != nil {
		return err // ErrNotFound: 404
	}
	qty, msg := parseQuantity(c.FormValue("quantity"), 1, 1)
	if msg != "" {
		return h.addFailed(c, product, msg)
	}

	cur := current(c)
	if cur == nil && !h.cfg.GuestsEnabled {
		h.setFlash(c, "Please sign in to add products to your cart.")
		return redirect(c, "/login?next="+url.QueryEscape("/products/"+product.Slug))
	}
	var quantity int
	if cur == nil {
		if err := h.allow(c, "guest", c.IP(), h.cfg.Limits.GuestCreation); err != nil {
			return err
		}
		token, hash := h.guestSessionToken(c)
		res, err := h.guests.AddAsGuest(c.UserContext(), models.NewSession{
			TokenHash: hash, UserAgent: c.Get(fiber.HeaderUserAgent), TTL: h.cfg.GuestTTL,
		}, productID, qty)
		if err != nil {
			return h.cartError(c, err, func(msg string) error { return h.addFailed(c, product, msg) })
		}
		h.setSessionCookie(c, token)
		quantity = res.Quantity
		cur = &models.Current{UserID: res.UserID, Kind: models.KindGuest}
	} else {
		quantity, err = h.carts.Add(c.UserContext(), cur.UserID, productID, qty)
		if err != nil {
			return h.cartError(c, err, func(msg string) error { return h.addFailed(c, product, msg) })
		}
	}

	note := fmt.Sprintf("Added %s to your cart.", product.Name)
	if quantity == models.MaxQuantity {
		note = fmt.Sprintf("Your cart holds %d of %s, the most one order may have.", quantity, product.Name)
	}
	if isHTMX(c) {
		count, err := h.carts.Count(c.UserContext(), cur.UserID)
		if err != nil {
			return err
		}
		return render(c, fiber.StatusOK, views.AddStatus(note, false, count))
	}
	h.setFlash(c, note)
	return redirect(c, "/cart")
}

// addFailed answers an add to cart that cannot be done: the product page
// (or, for htmx, its status line) with the message, 422.
func (h *handler) addFailed(c *fiber.Ctx, p models.Product, msg string) error {
	if isHTMX(c) {
		count := 0
		if cur := current(c); cur != nil {
			count = cur.CartCount
		}
		return render(c, fiber.StatusUnprocessableEntity, views.AddStatus(msg, true, count))
	}
	return h.productPage(c, fiber.StatusUnprocessableEntity, views.ProductView{Product: p, Message: msg})
}

// cartItemPost handles "POST /cart/items/:product_id": set a line's
// quantity; 0 removes it.
func (h *handler) cartItemPost(c *fiber.Ctx) error {
	productID, cur, err := h.cartLineTarget(c)
	if err != nil {
		return err
	}
	qty, msg := parseQuantity(c.FormValue("quantity"), -1, 0)
	if qty < 0 && msg == "" {
		msg = "Enter a quantity."
	}
	if msg != "" {
		return h.cartFailed(c, cur, msg)
	}
	err = h.carts.SetQuantity(c.UserContext(), cur.UserID, productID, qty)
	if err != nil {
		return h.cartError(c, err, func(msg string) error { return h.cartFailed(c, cur, msg) })
	}
	return h.cartChanged(c, cur, "Your cart was updated.")
}

// cartItemDeletePost handles "POST /cart/items/:product_id/delete".
func (h *handler) cartItemDeletePost(c *fiber.Ctx) error {
	productID, cur, err := h.cartLineTarget(c)
	if err != nil {
		return err
	}
	if err := h.carts.Remove(c.UserContext(), cur.UserID, productID); err != nil {
		return err
	}
	return h.cartChanged(c, cur, "The product was removed from your cart.")
}

// cartLineTarget reads the product of a line action and the cart's owner.
// Without a session there is no cart, so no line: 404.
func (h *handler) cartLineTarget(c *fiber.Ctx) (int64, *models.Current, error) {
	productID, ok := parseID(c.Params("product_id"))
	cur := current(c)
	if !ok || cur == nil {
		return 0, nil, fiber.ErrNotFound
	}
	return productID, cur, nil
}

// cartChanged answers a successful line change: the fresh lines and badge
// for htmx, else a redirect to the cart.
func (h *handler) cartChanged(c *fiber.Ctx, cur *models.Current, note string) error {
	if !isHTMX(c) {
		h.setFlash(c, note)
		return redirect(c, "/cart")
	}
	lines, err := h.carts.Lines(c.UserContext(), cur.UserID)
	if err != nil {
		return err
	}
	return render(c, fiber.StatusOK, views.CartFragment(h.meta(c, ""), lines, ""))
}

// cartFailed re-renders the unchanged cart with a message, 422.
func (h *handler) cartFailed(c *fiber.Ctx, cur *models.Current, msg string) error {
	lines, err := h.carts.Lines(c.UserContext(), cur.UserID)
	if err != nil {
		return err
	}
	m := h.meta(c, "Your cart")
	if isHTMX(c) {
		return render(c, fiber.StatusUnprocessableEntity, views.CartFragment(m, lines, msg))
	}
	return render(c, fiber.StatusUnprocessableEntity, views.CartPage(m, lines, msg))
}

// cartError turns the cart's refusals into messages for fail; other errors
// (ErrNotFound among them) go to the error handler.
func (h *handler) cartError(c *fiber.Ctx, err error, fail func(msg string) error) error {
	var stock *models.StockError
	switch {
	case errors.As(err, &stock) && stock.Stock == 0:
		return fail("Sorry, this product is sold out.")
	case errors.As(err, &stock):
		return fail("Sorry, we only have " + strconv.Itoa(stock.Stock) + " of these" + inCart(stock.InCart) + ".")
	case errors.Is(err, models.ErrCartFull):
		return fail("Your cart is full: it holds at most " + strconv.Itoa(models.MaxCartLines) + " different products.")
	}
	return err
}

func inCart(n int) string {
	if n == 0 {
		return ""
	}
	return ", and " + strconv.Itoa(n) + " are in your cart already"
}
