package models

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// ErrCheckoutToken means a checkout form's token is malformed, forged, or
// was issued to another account: the form cannot be trusted.
var ErrCheckoutToken = errors.New("invalid checkout token")

// maxCheckoutToken bounds the token: 50 lines of about 33 bytes, and room.
const maxCheckoutToken = 4096

// CheckoutKey signs checkout tokens. A checkout token is
//
//	nonce "." pid ":" tag ("," pid ":" tag)* "." shipTag "." mac
//
// The nonce is 16 random bytes: it is stored as the order's cart_token, so
// a repeated POST of one form finds the order it placed. Each line's tag is
// an HMAC of the product, quantity and price the page showed, and shipTag
// one of the shipping fee, so a change is detected per line while the form
// carries no prices. mac binds all of it to the account the page was shown
// to: nobody without SECRET_KEY can make a token, or aim one at another cart.
type CheckoutKey []byte

// Ticket is an opened checkout token.
type Ticket struct {
	Nonce string
	lines map[int64]string // product id → tag
	ship  string
}

// IssueCheckoutToken returns a fresh token for the page showing q to userID.
func (k CheckoutKey) IssueCheckoutToken(userID uuid.UUID, q Quote) string {
	b := make([]byte, 16)
	rand.Read(b) // never fails: crypto/rand panics rather than return an error
	return k.seal(userID, base64.RawURLEncoding.EncodeToString(b), q)
}

func (k CheckoutKey) seal(userID uuid.UUID, nonce string, q Quote) string {
	var b strings.Builder
	b.WriteString(nonce)
	b.WriteByte('.')
	for i, l := range q.Lines {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(l.ProductID, 10))
		b.WriteByte(':')
		b.WriteString(k.lineTag(l))
	}
	b.WriteByte('.')
	b.WriteString(k.shipTag(q))
	body := b.String()
	return body + "." + k.mac(userID, body)
}

// OpenCheckoutToken checks token against userID; ErrCheckoutToken if it is
// not one this key issued to that account.
func (k CheckoutKey) OpenCheckoutToken(userID uuid.UUID, token string) (Ticket, error) {
	if len(token) > maxCheckoutToken {
		return Ticket{}, ErrCheckoutToken
	}
	cut := strings.LastIndexByte(token, '.')
	if cut < 0 {
		return Ticket{}, ErrCheckoutToken
	}
	body, mac := token[:cut], token[cut+1:]
	if !hmac.Equal([]byte(mac), []byte(k.mac(userID, body))) {
		return Ticket{}, ErrCheckoutToken
	}
	parts := strings.Split(body, ".")
	if len(parts) != 3 || len(parts[0]) != 22 {
		return Ticket{}, ErrCheckoutToken
	}
	t := Ticket{Nonce: parts[0], lines: map[int64]string{}, ship: parts[2]}
	if parts[1] != "" {
		for _, l := range strings.Split(parts[1], ",") {
			pid, tag, ok := strings.Cut(l, ":")
			id, err := strconv.ParseInt(pid, 10, 64)
			if !ok || err != nil {
				return Ticket{}, ErrCheckoutToken
			}
			t.lines[id] = tag
		}
	}
	return t, nil
}

// Changes compares the quote the page showed with q, priced now: the
// products whose line is new or differs (price or quantity), the ones that
// are gone, and whether the shipping fee changed. Nothing changed when all
// three are empty.
func (k CheckoutKey) Changes(t Ticket, q Quote) (changed, gone []int64, shipping bool) {
	now := map[int64]bool{}
	for _, l := range q.Lines {
		now[l.ProductID] = true
		if tag, ok := t.lines[l.ProductID]; !ok || !hmac.Equal([]byte(tag), []byte(k.lineTag(l))) {
			changed = append(changed, l.ProductID)
		}
	}
	for id := range t.lines {
		if !now[id] {
			gone = append(gone, id)
		}
	}
	return changed, gone, !hmac.Equal([]byte(t.ship), []byte(k.shipTag(q)))
}

func (k CheckoutKey) lineTag(l CartLine) string {
	return k.tag("line", strconv.FormatInt(l.ProductID, 10), strconv.Itoa(l.Quantity),
		strconv.FormatInt(l.PriceCents, 10), l.Currency)
}

func (k CheckoutKey) shipTag(q Quote) string {
	return k.tag("ship", strconv.FormatInt(q.ShippingCents, 10), q.Currency)
}

// tag is a short HMAC of fields: 9 bytes are plenty to notice a change.
func (k CheckoutKey) tag(fields ...string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("shopfront checkout tag v1"))
	for _, f := range fields {
		m.Write([]byte{0})
		m.Write([]byte(f))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
}

func (k CheckoutKey) mac(userID uuid.UUID, body string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("shopfront checkout token v1\x00"))
	m.Write(userID[:])
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
