package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Token purposes.
const (
	PurposePromote = "promote"
	PurposeReset   = "reset"
)

// Account errors.
var (
	// ErrTokenInvalid: the link is unknown, used, expired or no longer fits
	// its account.
	ErrTokenInvalid = errors.New("invalid or expired link")
	// ErrEmailTaken: another account proved this address first.
	ErrEmailTaken = errors.New("email belongs to another account")
	// ErrBadCredentials: no registered account with that email and password.
	ErrBadCredentials = errors.New("wrong email or password")
	// ErrNotGuest: only a guest can save its account.
	ErrNotGuest = errors.New("account is not a guest")
)

// NormalizeEmail checks that s is one plain email address and returns it
// trimmed and lower-cased, as accounts store it.
func NormalizeEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 254 || strings.ContainsAny(s, "\x00\r\n") {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") || strings.HasSuffix(s, ".") {
		return "", false
	}
	// Lower-casing can lengthen some letters (Ⱥ to ⱥ): check the result.
	if s = strings.ToLower(s); len(s) > 254 {
		return "", false
	}
	return s, true
}

// Accounts saves guests, signs customers in and resets passwords.
type Accounts struct {
	db        *gorm.DB
	passwords *Passwords
	tokenTTL  time.Duration
}

// NewAccounts returns the account store; emailed links last tokenTTL.
func NewAccounts(db *gorm.DB, passwords *Passwords, tokenTTL time.Duration) *Accounts {
	return &Accounts{db: db, passwords: passwords, tokenTTL: tokenTTL}
}

// Composer writes the email for a link; token is the raw token for the link.
type Composer func(token string) (Email, error)

// RequestSave starts saving a guest's account under email. It never touches
// the user row: the address waits on a promote token until the emailed link
// is used. When the address already has an account, its owner gets
// toOwner's email instead and the token is spent at once; the caller answers
// the guest the same either way, so nobody learns who has an account.
func (a *Accounts) RequestSave(ctx context.Context, guestID uuid.UUID, email string, toGuest, toOwner Composer) error {
	return a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var kind string
		err := tx.Raw(`SELECT kind FROM users WHERE id = ? FOR UPDATE`, guestID).Row().Scan(&kind)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("request save: %w", err)
		}
		if kind != KindGuest {
			return ErrNotGuest
		}
		taken, err := emailTaken(tx, email)
		if err != nil {
			return err
		}
		// Both answers do the same work: a token is issued either way (spent
		// at once for a taken address), so older links end either way and
		// neither timing nor a guest's old link tells whether an address
		// has an account.
		token, err := issueToken(ctx, tx, guestID, PurposePromote, email, a.tokenTTL, taken)
		if err != nil {
			return err
		}
		var msg Email
		if taken {
			msg, err = toOwner("")
		} else {
			msg, err = toGuest(token)
		}
		if err != nil {
			return fmt.Errorf("compose email: %w", err)
		}
		if err := enqueueEmail(ctx, tx, msg); err != nil {
			return err
		}
		return recordEvent(ctx, tx, &guestID, EventSaveRequested, map[string]any{"address_taken": taken})
	})
}

// QueueReset records a forgot-password request. It does the same single
// write whether or not the address has an account, so the answer's timing
// tells nothing; ProcessResets does the rest in the background.
func (a *Accounts) QueueReset(ctx context.Context, email string) error {
	if err := a.db.WithContext(ctx).Exec(`INSERT INTO reset_requests (email) VALUES (?)`, email).Error; err != nil {
		return fmt.Errorf("queue reset: %w", err)
	}
	return nil
}

// ProcessResets handles up to limit queued forgot-password requests, each
// in its own transaction with the request's deletion: a registered address
// gets a reset token and the email compose writes; any other address gets
// nothing. Rows are claimed with SKIP LOCKED, so several workers may run.
// It returns how many requests it handled.
func (a *Accounts) ProcessResets(ctx context.Context, limit int, compose func(email, token string) (Email, error)) (int, error) {
	done := 0
	for done < limit {
		handled, err := a.processReset(ctx, compose)
		if err != nil || !handled {
			return done, err
		}
		done++
	}
	return done, nil
}

func (a *Accounts) processReset(ctx context.Context, compose func(email, token string) (Email, error)) (bool, error) {
	handled := false
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var req struct {
			ID    int64
			Email string
		}
		err := tx.Raw(`DELETE FROM reset_requests WHERE id = (
				SELECT id FROM reset_requests ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING id, email`).Row().Scan(&req.ID, &req.Email)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim reset request: %w", err)
		}
		handled = true
		var id uuid.UUID
		err = tx.Raw(`SELECT id FROM users WHERE lower(email) = lower(?) AND kind = 'registered'`, req.Email).Row().Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // no account: nothing to send, and nobody learns it
		}
		if err != nil {
			return fmt.Errorf("reset request %d: %w", req.ID, err)
		}
		token, err := issueToken(ctx, tx, id, PurposeReset, req.Email, a.tokenTTL, false)
		if err != nil {
			return err
		}
		msg, err := compose(req.Email, token)
		if err != nil {
			return fmt.Errorf("compose email: %w", err)
		}
		return enqueueEmail(ctx, tx, msg)
	})
	return handled, err
}

// issueToken makes a token for an emailed link and invalidates the user's
// older unused links of the same purpose. A spent token is recorded as used
// from the start: it is never sent.
func issueToken(ctx context.Context, tx *gorm.DB, userID uuid.UUID, purpose, email string, ttl time.Duration, spent bool) (string, error) {
	err := tx.WithContext(ctx).Exec(`UPDATE email_tokens SET used_at = now()
		WHERE user_id = ? AND purpose = ? AND used_at IS NULL`, userID, purpose).Error
	if err != nil {
		return "", fmt.Errorf("invalidate older links: %w", err)
	}
	token, hash := NewToken()
	err = tx.WithContext(ctx).Exec(`INSERT INTO email_tokens (id, user_id, purpose, email, token_hash, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, now() + make_interval(secs => ?), CASE WHEN ? THEN now() END)`,
		newID(), userID, purpose, email, hash, ttl.Seconds(), spent).Error
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return token, nil
}

func emailTaken(tx *gorm.DB, email string) (bool, error) {
	var taken bool
	if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(?))`, email).Scan(&taken).Error; err != nil {
		return false, fmt.Errorf("check email: %w", err)
	}
	return taken, nil
}

// LinkInfo is what the set-password page shows of a valid link.
type LinkInfo struct {
	Purpose string
	Email   string
}

// CheckLink tells whether the token of an emailed link is usable, without
// using it: GET requests (and mail scanners) never consume a link.
func (a *Accounts) CheckLink(ctx context.Context, token string) (LinkInfo, error) {
	hash, ok := ParseToken(token)
	if !ok {
		return LinkInfo{}, ErrTokenInvalid
	}
	var info LinkInfo
	err := a.db.WithContext(ctx).Raw(`SELECT purpose, email FROM email_tokens
		WHERE token_hash = ? AND used_at IS NULL AND expires_at > now()`, hash).Row().Scan(&info.Purpose, &info.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return LinkInfo{}, ErrTokenInvalid
	}
	if err != nil {
		return LinkInfo{}, fmt.Errorf("check link: %w", err)
	}
	return info, nil
}

// LinkResult is the outcome of using a link.
type LinkResult struct {
	UserID  uuid.UUID
	Purpose string
}

// UseLink consumes an emailed link and sets the password, in one
// transaction; concurrent uses of one link yield exactly one success.
//
// A promote link turns the same guest row into a registered account with the
// proven email (the cart stays), revokes the user's other sessions and links,
// and signs this browser in with session. A reset link sets the password and
// revokes every session: the user signs in again.
func (a *Accounts) UseLink(ctx context.Context, token, password string, session NewSession) (LinkResult, error) {
	if _, err := a.CheckLink(ctx, token); err != nil {
		return LinkResult{}, err // no hashing work for a link that is no good
	}
	pwHash, err := a.passwords.Hash(ctx, password)
	if err != nil {
		return LinkResult{}, err
	}
	hash, _ := ParseToken(token)
	var res LinkResult
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var email string
		err := tx.Raw(`UPDATE email_tokens SET used_at = now()
			WHERE token_hash = ? AND used_at IS NULL AND expires_at > now()
			RETURNING user_id, purpose, email`, hash).Row().Scan(&res.UserID, &res.Purpose, &email)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrTokenInvalid // another request used it first
		}
		if err != nil {
			return fmt.Errorf("use link: %w", err)
		}
		if res.Purpose == PurposePromote {
			err = upgrade(ctx, tx, res.UserID, email, pwHash)
		} else {
			err = resetPassword(ctx, tx, res.UserID, pwHash)
		}
		if err != nil {
			return err
		}
		// The address is proven now: orders placed with it come along.
		if err := claimOrders(ctx, tx, res.UserID, email); err != nil {
			return err
		}
		// Every other link of the user dies with this one, and so does every
		// session: a promote signs this browser in afresh.
		if err := tx.Exec(`UPDATE email_tokens SET used_at = now() WHERE user_id = ? AND used_at IS NULL`, res.UserID).Error; err != nil {
			return fmt.Errorf("invalidate links: %w", err)
		}
		if err := tx.Exec(`DELETE FROM sessions WHERE user_id = ?`, res.UserID).Error; err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		if res.Purpose == PurposePromote {
			if _, err := createSession(ctx, tx, res.UserID, session); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return LinkResult{}, err
	}
	return res, nil
}

// upgrade turns a guest into a registered account, in place.
func upgrade(ctx context.Context, tx *gorm.DB, userID uuid.UUID, email, pwHash string) error {
	var kind string
	err := tx.Raw(`SELECT kind FROM users WHERE id = ? FOR UPDATE`, userID).Row().Scan(&kind)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	if kind != KindGuest {
		return ErrTokenInvalid
	}
	taken, err := emailTaken(tx, email)
	if err != nil {
		return err
	}
	if taken {
		return ErrEmailTaken
	}
	err = tx.Exec(`UPDATE users SET kind = 'registered', email = ?, email_verified_at = now(),
		password_hash = ?, updated_at = now() WHERE id = ?`, email, pwHash, userID).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ErrEmailTaken // proven by a racing upgrade a moment ago
	}
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	return recordEvent(ctx, tx, &userID, EventUpgraded, nil)
}

func resetPassword(ctx context.Context, tx *gorm.DB, userID uuid.UUID, pwHash string) error {
	err := tx.Exec(`UPDATE users SET password_hash = ?, updated_at = now() WHERE id = ? AND kind = 'registered'`,
		pwHash, userID).Error
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	return recordEvent(ctx, tx, &userID, EventPasswordReset, nil)
}

// Authenticate returns the registered account with email and password, or
// ErrBadCredentials. It takes as long for an unknown email as for a wrong
// password.
func (a *Accounts) Authenticate(ctx context.Context, email, password string) (uuid.UUID, error) {
	var row struct {
		ID           uuid.UUID
		PasswordHash string
	}
	err := a.db.WithContext(ctx).Raw(`SELECT id, password_hash FROM users
		WHERE lower(email) = lower(?) AND kind = 'registered'`, email).Scan(&row).Error
	if err != nil {
		return uuid.Nil, fmt.Errorf("authenticate: %w", err)
	}
	ok, err := a.passwords.Check(ctx, password, row.PasswordHash)
	if err != nil {
		return uuid.Nil, err
	}
	if !ok {
		return uuid.Nil, ErrBadCredentials
	}
	return row.ID, nil
}

// SignInResult says what signing in did with a guest's cart.
type SignInResult struct {
	MergedItems int      // items of the guest cart now in the account's cart
	Dropped     []string // products that did not fit (the 50-line limit or stock)
}

// SignIn starts a session for userID. From a guest session (prev is the
// guest) the guest's cart is merged into the account's, the guest is
// deleted with its session and cart, and the event keeps the guest's id.
// From any other session (prev) that session ends: the token rotates.
func (a *Accounts) SignIn(ctx context.Context, userID uuid.UUID, prev *Current, session NewSession) (SignInResult, error) {
	var res SignInResult
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		data := map[string]any{}
		if prev != nil && prev.IsGuest() && prev.UserID != userID {
			var err error
			if res, err = mergeGuestCart(ctx, tx, prev.UserID, userID); err != nil {
				return err
			}
			if err := moveGuestOrders(ctx, tx, prev.UserID, userID); err != nil {
				return err
			}
			if err := tx.Exec(`DELETE FROM users WHERE id = ? AND kind = 'guest'`, prev.UserID).Error; err != nil {
				return fmt.Errorf("delete merged guest: %w", err)
			}
			data["prev_guest_id"] = prev.UserID
			data["merged_items"] = res.MergedItems
			data["dropped_products"] = len(res.Dropped)
		} else if prev != nil {
			if err := tx.Exec(`DELETE FROM sessions WHERE id = ?`, prev.SessionID).Error; err != nil {
				return fmt.Errorf("end previous session: %w", err)
			}
		}
		if _, err := createSession(ctx, tx, userID, session); err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE users SET last_seen_at = now() WHERE id = ?`, userID).Error; err != nil {
			return fmt.Errorf("sign in: %w", err)
		}
		return recordEvent(ctx, tx, &userID, EventSignedIn, data)
	})
	if err != nil {
		return SignInResult{}, err
	}
	return res, nil
}

// SignOut ends a session.
func (a *Accounts) SignOut(ctx context.Context, cur *Current) error {
	return a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM sessions WHERE id = ?`, cur.SessionID).Error; err != nil {
			return fmt.Errorf("sign out: %w", err)
		}
		return recordEvent(ctx, tx, &cur.UserID, EventSignedOut, nil)
	})
}

// mergeGuestCart adds the guest's lines to the account's cart: the same
// product's quantities add up, capped at MaxQuantity and the stock; new
// lines beyond MaxCartLines, and sold-out products, are dropped and named.
func mergeGuestCart(ctx context.Context, tx *gorm.DB, guestID, accountID uuid.UUID) (SignInResult, error) {
	var res SignInResult
	accountCart, err := lockCart(ctx, tx, accountID, true)
	if err != nil {
		return res, err
	}
	guestCart, err := lockCart(ctx, tx, guestID, false)
	if errors.Is(err, ErrNotFound) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	var lines []struct {
		ProductID int64
		Name      string
		Stock     int
		Quantity  int // in the guest cart
		Existing  int // in the account cart
	}
	err = tx.Raw(`
		SELECT g.product_id, p.name, p.stock, g.quantity, coalesce(a.quantity, 0) AS existing
		FROM cart_items g
		JOIN products p ON p.id = g.product_id
		LEFT JOIN cart_items a ON a.cart_id = @account AND a.product_id = g.product_id
		WHERE g.cart_id = @guest
		ORDER BY g.created_at, g.product_id`,
		map[string]any{"account": accountCart, "guest": guestCart}).Scan(&lines).Error
	if err != nil {
		return res, fmt.Errorf("read guest cart: %w", err)
	}
	var count int
	if err := tx.Raw(`SELECT count(*) FROM cart_items WHERE cart_id = ?`, accountCart).Scan(&count).Error; err != nil {
		return res, fmt.Errorf("count account cart: %w", err)
	}
	for _, l := range lines {
		want := min(l.Existing+l.Quantity, MaxQuantity, l.Stock)
		if want <= l.Existing || (l.Existing == 0 && count >= MaxCartLines) {
			res.Dropped = append(res.Dropped, l.Name)
			continue
		}
		err := tx.Exec(`INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (?, ?, ?)
			ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity`,
			accountCart, l.ProductID, want).Error
		if err != nil {
			return res, fmt.Errorf("merge line: %w", err)
		}
		if l.Existing == 0 {
			count++
		}
		res.MergedItems += want - l.Existing
	}
	return res, nil
}
