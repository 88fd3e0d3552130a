package handlers

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"shopfront/models"
	"shopfront/views"
)

// loginShow handles "GET /login".
func (h *handler) loginShow(c *fiber.Ctx) error {
	form := views.LoginForm{Next: localPath(c.Query("next"))}
	return render(c, fiber.StatusOK, views.LoginPage(h.meta(c, "Sign in"), form))
}

// loginPost handles "POST /login". The same message answers an unknown
// email and a wrong password, after the same work.
func (h *handler) loginPost(c *fiber.Ctx) error {
	if err := h.allow(c, "login", c.IP(), h.cfg.Limits.Login); err != nil {
		return err
	}
	form := views.LoginForm{Email: strings.TrimSpace(c.FormValue("email")), Next: localPath(c.FormValue("next"))}
	email, ok := models.NormalizeEmail(form.Email)
	password := c.FormValue("password")
	if !ok || password == "" || len(password) > 4*models.MaxPasswordLen {
		form.Error = "Enter your email and password."
		return render(c, fiber.StatusUnprocessableEntity, views.LoginPage(h.meta(c, "Sign in"), form))
	}
	userID, err := h.accounts.Authenticate(c.UserContext(), email, password)
	if errors.Is(err, models.ErrBadCredentials) {
		form.Error = "That email and password do not match an account."
		return render(c, fiber.StatusUnprocessableEntity, views.LoginPage(h.meta(c, "Sign in"), form))
	}
	if err != nil {
		return err
	}
	token, hash := models.NewToken()
	res, err := h.accounts.SignIn(c.UserContext(), userID, current(c), h.newSession(c, hash))
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	h.setSessionCookie(c, token)
	h.setFlash(c, signInMessage(res))
	if form.Next == "" {
		form.Next = "/"
		if res.MergedItems > 0 {
			form.Next = "/cart" // where the merged cart can be seen
		}
	}
	return redirect(c, form.Next)
}

func signInMessage(res models.SignInResult) string {
	msg := "You are signed in."
	switch {
	case res.MergedItems == 1:
		msg += " 1 item from your guest cart was added to your cart."
	case res.MergedItems > 1:
		msg += fmt.Sprintf(" %d items from your guest cart were added to your cart.", res.MergedItems)
	}
	if len(res.Dropped) > 0 {
		msg += " These did not fit (stock or cart limits): " + strings.Join(res.Dropped, ", ") + "."
	}
	return msg
}

// logoutPost handles "POST /logout".
func (h *handler) logoutPost(c *fiber.Ctx) error {
	if cur := current(c); cur != nil {
		if err := h.accounts.SignOut(c.UserContext(), cur); err != nil {
			return err
		}
	}
	h.clearSessionCookie(c)
	h.setFlash(c, "You are signed out.")
	return redirect(c, "/")
}

// forgotShow handles "GET /password/forgot".
func (h *handler) forgotShow(c *fiber.Ctx) error {
	return render(c, fiber.StatusOK, views.ForgotPage(h.meta(c, "Forgot your password?"), views.EmailForm{}))
}

// forgotPost handles "POST /password/forgot": the same answer whether or
// not the address has an account; a link only when it has.
func (h *handler) forgotPost(c *fiber.Ctx) error {
	form := views.EmailForm{Email: strings.TrimSpace(c.FormValue("email"))}
	email, ok := models.NormalizeEmail(form.Email)
	if !ok {
		form.Error = "Enter an email address such as name@example.com."
		return render(c, fiber.StatusUnprocessableEntity, views.ForgotPage(h.meta(c, "Forgot your password?"), form))
	}
	if err := h.allowEmail(c, "forgot", email); err != nil {
		return err
	}
	// The request only queues the address: the worker looks it up and
	// mails a link, so the answer takes as long for any address.
	if err := h.accounts.QueueReset(c.UserContext(), email); err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	h.mailQueued()
	h.setFlash(c, "If "+email+" belongs to an account, a link to choose a new password is on its way.")
	return redirect(c, "/login")
}

// localPath returns next when it is a path on this site, else "": sign-in
// must never send anyone to another site.
func localPath(next string) string {
	if next == "" || len(next) > 2000 || !strings.HasPrefix(next, "/") ||
		strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\\\x00\r\n\t") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}
