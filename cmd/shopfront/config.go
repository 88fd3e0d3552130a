package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"shopfront/handlers"
)

// config is every setting, read from the environment once and validated.
type config struct {
	Env            string
	DatabaseURL    string
	Addr           string
	SMTPURL        string
	MailFrom       string
	GuestCullAfter time.Duration
	CullEvery      time.Duration // how often serve culls
	Web            handlers.Config
}

// defaultDatabaseURL is the local PostgreSQL that `make run` sets up.
const defaultDatabaseURL = "postgres://localhost:5432/shopfront?sslmode=disable"

// loadConfig reads the settings of DESIGN.md. In development a missing
// SECRET_KEY is generated once into .data/secret_key; production refuses to
// start without one, without SMTP, or on plain http.
func loadConfig(getenv func(string) string) (config, error) {
	get := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	duration := func(key, def string) time.Duration {
		d, err := time.ParseDuration(get(key, def))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive duration such as %s", key, def))
			return 0
		}
		return d
	}

	c := config{
		Env:            get("APP_ENV", "development"),
		DatabaseURL:    get("DATABASE_URL", defaultDatabaseURL),
		Addr:           get("ADDR", "localhost:3000"),
		SMTPURL:        get("SMTP_URL", ""),
		MailFrom:       get("MAIL_FROM", "Shopfront <no-reply@localhost>"),
		GuestCullAfter: duration("GUEST_CULL_AFTER", "960h"),
		CullEvery:      duration("CULL_EVERY", "1h"),
	}
	c.Web.Production = c.Env == "production"
	c.Web.GuestTTL = duration("GUEST_TTL", "720h")
	c.Web.TokenTTL = duration("TOKEN_TTL", "1h")
	c.Web.RequestTimeout = duration("REQUEST_TIMEOUT", "10s")
	c.Web.Limits = handlers.DefaultLimits()
	if c.GuestCullAfter > 0 && c.Web.GuestTTL > 0 && c.GuestCullAfter <= c.Web.GuestTTL {
		errs = append(errs, fmt.Errorf("GUEST_CULL_AFTER (%v) must be longer than GUEST_TTL (%v): a guest whose cookie still works would lose its cart",
			c.GuestCullAfter, c.Web.GuestTTL))
	}
	if c.Env != "development" && c.Env != "production" {
		errs = append(errs, fmt.Errorf("APP_ENV: want development or production, got %q", c.Env))
	}

	base, err := url.Parse(get("BASE_URL", "http://localhost:3000"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		errs = append(errs, errors.New("BASE_URL: want an absolute http(s) URL such as https://shop.example.com"))
		base = &url.URL{Scheme: "http", Host: "localhost:3000"}
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	c.Web.BaseURL = base

	guests, err := strconv.ParseBool(get("GUESTS_ENABLED", "true"))
	if err != nil {
		errs = append(errs, errors.New("GUESTS_ENABLED: want true or false"))
	}
	c.Web.GuestsEnabled = guests

	if proxies := get("TRUSTED_PROXIES", ""); proxies != "" {
		for _, p := range strings.Split(proxies, ",") {
			c.Web.TrustedProxies = append(c.Web.TrustedProxies, strings.TrimSpace(p))
		}
	}

	if key := getenv("SECRET_KEY"); key != "" {
		c.Web.SecretKey = []byte(key)
	}
	if c.Web.Production {
		if c.SMTPURL == "" {
			errs = append(errs, errors.New("SMTP_URL: required in production (mail would never leave the outbox)"))
		}
		if c.Web.SecretKey == nil {
			errs = append(errs, errors.New("SECRET_KEY: required in production, at least 32 bytes, the same on every instance"))
		}
		if base.Scheme != "https" {
			errs = append(errs, errors.New("BASE_URL: must be https in production"))
		}
	}
	if c.Web.SecretKey != nil && len(c.Web.SecretKey) < 32 {
		errs = append(errs, errors.New("SECRET_KEY: must be at least 32 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return config{}, fmt.Errorf("configuration:\n%w", err)
	}
	return c, nil
}

// devSecretKey reads the development secret from .data/secret_key, creating
// it on first use, so CSRF tokens survive restarts of `make run`.
func devSecretKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "secret_key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev secret key: %w", err)
	}
	key := []byte(rand.Text() + rand.Text())
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("dev secret key: %w", err)
	}
	return key, nil
}
