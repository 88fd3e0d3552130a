package models

import (
	"context"
	"fmt"
	"runtime"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
)

// Password length bounds, in characters.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 128
)

// ValidatePassword says what is wrong with a new password, or "".
func ValidatePassword(pw string) string {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return "The password contains characters we cannot read."
	case n < MinPasswordLen:
		return fmt.Sprintf("Use at least %d characters.", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Sprintf("Use at most %d characters.", MaxPasswordLen)
	}
	return ""
}

// argonParams are OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane):
// about 26 ms a hash on this hardware.
var argonParams = argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// Passwords hashes and checks passwords with argon2id. At most one hash per
// CPU runs at a time: each takes 19 MiB and a core for ~26 ms, and a burst
// of sign-ins must queue rather than exhaust memory.
type Passwords struct {
	sem   chan struct{}
	dummy string // a hash to check against for unknown accounts
}

// NewPasswords returns the password hasher.
func NewPasswords() *Passwords {
	p := &Passwords{sem: make(chan struct{}, runtime.NumCPU())}
	p.dummy, _ = argon2id.CreateHash("not a real password, just the same work", &argonParams)
	return p
}

func (p *Passwords) acquire(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait to hash a password: %w", ctx.Err())
	}
}

func (p *Passwords) release() { <-p.sem }

// Hash returns the argon2id hash of pw.
func (p *Passwords) Hash(ctx context.Context, pw string) (string, error) {
	if err := p.acquire(ctx); err != nil {
		return "", err
	}
	defer p.release()
	h, err := argon2id.CreateHash(pw, &argonParams)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// Check reports whether pw matches hash. With an empty hash (no such
// account) it does the same work against a dummy, so the answer takes as
// long whether or not an account exists.
func (p *Passwords) Check(ctx context.Context, pw, hash string) (bool, error) {
	if err := p.acquire(ctx); err != nil {
		return false, err
	}
	defer p.release()
	if hash == "" {
		argon2id.ComparePasswordAndHash(pw, p.dummy)
		return false, nil
	}
	ok, err := argon2id.ComparePasswordAndHash(pw, hash)
	if err != nil {
		return false, fmt.Errorf("check password: %w", err)
	}
	return ok, nil
}
