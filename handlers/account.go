package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"shopfront/models"
	"shopfront/views"
)

// accountShow handles "GET /account". It creates nothing for a visitor.
func (h *handler) accountShow(c *fiber.Ctx) error {
	return render(c, fiber.StatusOK, views.AccountPage(h.meta(c, "Your account"), views.EmailForm{}, h.guestKeepText()))
}

// accountPromotePost handles "POST /account/promote": a guest asks to save
// the account. The answer is the same whether or not the address already
// has an account.
func (h *handler) accountPromotePost(c *fiber.Ctx) error {
	cur := current(c)
	if cur == nil || !cur.IsGuest() {
		return redirect(c, "/account") // nothing to save
	}
	form := views.EmailForm{Email: strings.TrimSpace(c.FormValue("email"))}
	email, ok := models.NormalizeEmail(form.Email)
	if !ok {
		form.Error = "Enter an email address such as name@example.com."
		return render(c, fiber.StatusUnprocessableEntity, views.AccountPage(h.meta(c, "Your account"), form, h.guestKeepText()))
	}
	if err := h.allowEmail(c, "promote", email); err != nil {
		return err
	}
	err := h.accounts.RequestSave(c.UserContext(), cur.UserID, email,
		func(token string) (models.Email, error) {
			link := h.url("/account/password?token=" + token)
			return h.email(c.UserContext(), email, views.PromoteMail(link, h.tokenTTLText()))
		},
		func(string) (models.Email, error) {
			return h.email(c.UserContext(), email, views.AddressTakenMail(h.url("/login"), h.url("/password/forgot")))
		})
	if err != nil {
		return fmt.Errorf("save account: %w", err)
	}
	h.mailQueued()
	h.setFlash(c, "Check your inbox: we sent a link to "+email+". Open it to choose a password and save your cart.")
	return redirect(c, "/account")
}

// passwordShow handles "GET /account/password?token=": the form behind an
// emailed link. It never uses the link: mail scanners open links too.
func (h *handler) passwordShow(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	token := c.Query("token")
	info, err := h.accounts.CheckLink(c.UserContext(), token)
	if err != nil {
		return h.linkProblem(c, err)
	}
	return render(c, fiber.StatusOK, views.SetPasswordPage(h.meta(c, passwordTitle(info.Purpose)),
		views.SetPasswordForm{Token: token, Purpose: info.Purpose, Email: info.Email}))
}

// passwordPost handles "POST /account/password": use the link and set the
// password. A promote link signs this browser in as the saved account; a
// reset link signs every session out.
func (h *handler) passwordPost(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	token := postValue(c, "token")
	info, err := h.accounts.CheckLink(c.UserContext(), token)
	if err != nil {
		return h.linkProblem(c, err)
	}
	password := c.FormValue("password")
	form := views.SetPasswordForm{Token: token, Purpose: info.Purpose, Email: info.Email}
	form.Error = models.ValidatePassword(password)
	if form.Error == "" && password != c.FormValue("password_confirm") {
		form.Error = "The two passwords differ. Type the same password twice."
	}
	if form.Error != "" {
		return render(c, fiber.StatusUnprocessableEntity, views.SetPasswordPage(h.meta(c, passwordTitle(info.Purpose)), form))
	}

	sessionToken, sessionHash := models.NewToken()
	res, err := h.accounts.UseLink(c.UserContext(), token, password, h.newSession(c, sessionHash))
	if err != nil {
		return h.linkProblem(c, err)
	}
	if res.Purpose == models.PurposePromote {
		h.setSessionCookie(c, sessionToken) // a new token: the session rotates
		h.setFlash(c, "Your account is saved. Your cart is right where you left it.")
		return redirect(c, "/cart")
	}
	h.clearSessionCookie(c)
	h.setFlash(c, "Your password is changed. Please sign in with it.")
	return redirect(c, "/login")
}

// linkProblem answers a link that cannot be used with a page that says why
// and how to get a new one.
func (h *handler) linkProblem(c *fiber.Ctx, err error) error {
	switch {
	case errors.Is(err, models.ErrTokenInvalid):
		return render(c, fiber.StatusGone, views.LinkProblemPage(h.meta(c, "This link no longer works"),
			"The link is unknown, already used, or older than "+h.tokenTTLText()+". Links work once and for a short time, to keep your account safe."))
	case errors.Is(err, models.ErrEmailTaken):
		return render(c, fiber.StatusConflict, views.LinkProblemPage(h.meta(c, "This address has an account"),
			"Another account was saved with this email address in the meantime, so we could not save yours with it. Nothing was changed. Sign in to that account to bring your cart along."))
	}
	return err
}

func passwordTitle(purpose string) string {
	if purpose == models.PurposePromote {
		return "Save your account"
	}
	return "Choose a new password"
}

// newSession describes a new session for this browser.
func (h *handler) newSession(c *fiber.Ctx, hash []byte) models.NewSession {
	return models.NewSession{TokenHash: hash, UserAgent: c.Get(fiber.HeaderUserAgent), TTL: h.cfg.GuestTTL}
}

// url is an absolute link into the shop, built from BASE_URL and never from
// the request's Host header.
func (h *handler) url(path string) string {
	return h.cfg.BaseURL.String() + path
}

func (h *handler) tokenTTLText() string { return durationText(h.cfg.TokenTTL) }

func (h *handler) guestKeepText() string { return durationText(h.cfg.GuestTTL) }

// durationText says a setting's duration in words: "1 hour", "30 days".
func durationText(d time.Duration) string {
	day := 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	case d == time.Hour:
		return "1 hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// email renders a mail's HTML and addresses it.
func (h *handler) email(ctx context.Context, to string, m views.Mail) (models.Email, error) {
	var html strings.Builder
	if err := m.HTML.Render(ctx, &html); err != nil {
		return models.Email{}, fmt.Errorf("render %q: %w", m.Subject, err)
	}
	return models.Email{To: to, Subject: m.Subject, Text: m.Text, HTML: html.String()}, nil
}

// mailQueued wakes the outbox worker, if one runs in this process.
func (h *handler) mailQueued() {
	if h.onMail != nil {
		h.onMail()
	}
}
