package models_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"shopfront/models"
)

// Fuzz targets for the parsers that take untrusted text: emails, session and
// link tokens, passwords. Run one with
//
//	go test ./models/ -run '^$' -fuzz '^FuzzParseToken$' -fuzztime 20s
//
// Without -fuzz, `go test` runs the seeds below and testdata/fuzz/<Target>/.

// FuzzNormalizeEmail: an accepted address comes back in the one form the
// accounts store: trimmed, lower-case, at most 254 bytes, one '@' before a
// dotted domain, no line breaks or NULs, and normalizing it again changes
// nothing.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"ada@example.com",
		"  Ada.Lovelace@Example.COM \t",
		"o'reilly+tag@example.co.uk",
		"Bob <bob@example.com>",
		"<bob@example.com>",
		`"a@b"@example.com`,
		"a@b@example.com",
		"a@example",
		"a@example.com.",
		"a@[127.0.0.1]",
		"a\r\nBcc: eve@example.com@example.com",
		"a@example.com\x00",
		"\xff@example.com",
		"'; DROP TABLE users;--@example.com",
		"%40@example.com",
		"Ünïcödé@Exämple.com",
		strings.Repeat("a", 242) + "@example.com", // 254 bytes
		strings.Repeat("a", 243) + "@example.com", // 255 bytes
		// 253 bytes; "Ⱥ" is 2 bytes, its lower case "ⱥ" 3.
		"Ⱥ" + strings.Repeat("a", 239) + "@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := models.NormalizeEmail(s)
		if !ok {
			if got != "" {
				t.Fatalf("NormalizeEmail(%q) refused but returned %q", s, got)
			}
			return
		}
		switch {
		case got != strings.TrimSpace(got):
			t.Fatalf("NormalizeEmail(%q) = %q: not trimmed", s, got)
		case got != strings.ToLower(got):
			t.Fatalf("NormalizeEmail(%q) = %q: not lower-case", s, got)
		case len(got) > 254:
			t.Fatalf("NormalizeEmail(%q) = %q: %d bytes, more than 254", s, got, len(got))
		case strings.ContainsAny(got, "\r\n\x00"):
			t.Fatalf("NormalizeEmail(%q) = %q: contains CR, LF or NUL", s, got)
		case !utf8.ValidString(got):
			t.Fatalf("NormalizeEmail(%q) = %q: not valid UTF-8", s, got)
		case strings.Count(got, "@") != 1:
			t.Fatalf("NormalizeEmail(%q) = %q: not exactly one '@'", s, got)
		}
		local, domain, _ := strings.Cut(got, "@")
		if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") ||
			strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
			t.Fatalf("NormalizeEmail(%q) = %q: not a local part before a dotted domain", s, got)
		}
		if want := strings.ToLower(strings.TrimSpace(s)); got != want {
			t.Fatalf("NormalizeEmail(%q) = %q, want the input trimmed and lower-cased, %q", s, got, want)
		}
		again, ok := models.NormalizeEmail(got)
		if !ok || again != got {
			t.Fatalf("NormalizeEmail(%q) = %q, but NormalizeEmail(%q) = %q, %v: not idempotent", s, got, got, again, ok)
		}
	})
}

// FuzzParseToken: a token is accepted only in the one form NewToken writes
// (43 base64url characters encoding 32 bytes, canonically), its hash is
// that of those bytes, every NewToken token round-trips, and a token with
// one character changed never yields the same hash.
//
// pos and repl pick the character to change (pos modulo 43) and what to.
func FuzzParseToken(f *testing.F) {
	token, _ := models.NewToken()
	for _, s := range []struct {
		token string
		pos   uint8
		repl  byte
	}{
		{token, 0, 'x'},
		{token, 42, '_'},
		{strings.Repeat("A", 43), 42, 'E'},
		{strings.Repeat("w", 43), 21, '-'},
		{strings.Repeat("A", 42), 0, 'A'},
		{strings.Repeat("A", 44), 0, 'A'},
		{strings.Repeat("A", 42) + "=", 42, 'A'},
		{strings.Repeat("+", 43), 1, '/'},
		{strings.Repeat("A", 41) + "\r\n", 41, 'A'},
		{strings.Repeat("\xff", 43), 7, 0},
		{"", 0, 0},
		{"not-a-token!!", 3, '-'},
		{"abc\x00def", 3, 'A'},
		{strings.Repeat("é", 21) + "A", 0, 'A'},
	} {
		f.Add(s.token, s.pos, s.repl)
	}
	for range 100 {
		token, hash := models.NewToken()
		if got, ok := models.ParseToken(token); !ok || !bytes.Equal(got, hash) {
			f.Fatalf("ParseToken(NewToken() = %q) = %x, %v; want %x, true", token, got, ok, hash)
		}
	}
	strict := base64.RawURLEncoding.Strict()
	f.Fuzz(func(t *testing.T, token string, pos uint8, repl byte) {
		hash, ok := models.ParseToken(token)
		raw, err := strict.DecodeString(token)
		canonical := err == nil && len(raw) == 32 && base64.RawURLEncoding.EncodeToString(raw) == token
		switch {
		case ok && len(hash) != 32:
			t.Fatalf("ParseToken(%q): hash of %d bytes, want 32", token, len(hash))
		case ok && !canonical:
			t.Fatalf("ParseToken(%q) accepted a token that is not the canonical base64url of 32 bytes", token)
		case ok && !bytes.Equal(hash, models.HashToken(raw)):
			t.Fatalf("ParseToken(%q) = %x, want the hash of its bytes, %x", token, hash, models.HashToken(raw))
		case !ok && canonical:
			t.Fatalf("ParseToken(%q) refused a well-formed token", token)
		case !ok && hash != nil:
			t.Fatalf("ParseToken(%q) refused but returned a hash", token)
		}

		// A well-formed token made from the input round-trips, and so does
		// a fresh one; changed in one character, neither keeps its hash.
		sum := sha256.Sum256([]byte(token))
		fresh, freshHash := models.NewToken()
		for _, c := range []struct {
			token string
			hash  []byte
		}{
			{base64.RawURLEncoding.EncodeToString(sum[:]), models.HashToken(sum[:])},
			{fresh, freshHash},
		} {
			got, ok := models.ParseToken(c.token)
			if !ok || !bytes.Equal(got, c.hash) {
				t.Fatalf("ParseToken(%q) = %x, %v; want %x, true", c.token, got, ok, c.hash)
			}
			i := int(pos) % len(c.token)
			if c.token[i] == repl {
				continue
			}
			changed := c.token[:i] + string([]byte{repl}) + c.token[i+1:]
			if got, ok := models.ParseToken(changed); ok && bytes.Equal(got, c.hash) {
				t.Fatalf("ParseToken(%q) = the hash of %q: changing character %d to %q kept the token valid", changed, c.token, i, repl)
			}
		}
	})
}

// FuzzValidatePassword: a password is accepted exactly when it is valid
// UTF-8 of 12 to 128 characters.
func FuzzValidatePassword(f *testing.F) {
	for _, s := range []string{
		"",
		"short",
		"elevenchars",
		"twelve chars",
		"correct horse battery staple",
		strings.Repeat("a", 128),
		strings.Repeat("a", 129),
		strings.Repeat("é", 12),
		strings.Repeat("é", 128),
		strings.Repeat("é", 129),
		strings.Repeat("😀", 11) + "a",
		strings.Repeat("\xff", 12),
		"valid prefix \xc3",
		strings.Repeat("\x00", 12),
		strings.Repeat("e\u0301", 6), // 12 runes, 6 characters on screen
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		msg := models.ValidatePassword(pw)
		n := utf8.RuneCountInString(pw)
		valid := utf8.ValidString(pw) && n >= models.MinPasswordLen && n <= models.MaxPasswordLen
		if msg == "" && !valid {
			t.Fatalf("ValidatePassword(%q) accepted a password of %d runes (valid UTF-8: %v)", pw, n, utf8.ValidString(pw))
		}
		if msg != "" && valid {
			t.Fatalf("ValidatePassword(%q) = %q for valid UTF-8 of %d runes", pw, msg, n)
		}
	})
}
