package models

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"

	"github.com/google/uuid"
)

// tokenBytes is the entropy of session cookies and emailed links.
const tokenBytes = 32

// NewToken returns a random token for a cookie or a link, and the SHA-256
// that is stored in its place.
func NewToken() (token string, hash []byte) {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails: crypto/rand panics rather than return an error
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(b)
}

// ParseToken decodes a token from a cookie or a link and returns its stored
// hash; ok is false for anything that is not a well-formed token.
func ParseToken(token string) (hash []byte, ok bool) {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return nil, false
	}
	for _, r := range token {
		// The decoder skips CR and LF; a token has none.
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return nil, false
		}
	}
	// Strict: a token has one spelling. Without it the last character's
	// unused low bits could change and still name the same session.
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return nil, false
	}
	return HashToken(b), true
}

// HashToken is the stored form of a token's raw bytes.
func HashToken(raw []byte) []byte {
	sum := sha256.Sum256(raw)
	return sum[:]
}

// newID returns a time-ordered UUIDv7 for a new row.
func newID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
