package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "localhost:3000" || c.Web.BaseURL.String() != "http://localhost:3000" {
		t.Fatalf("addr %q, base %q", c.Addr, c.Web.BaseURL)
	}
	if c.Web.GuestTTL != 720*time.Hour || c.GuestCullAfter != 960*time.Hour || c.Web.TokenTTL != time.Hour {
		t.Fatalf("durations: guest %v, cull %v, token %v", c.Web.GuestTTL, c.GuestCullAfter, c.Web.TokenTTL)
	}
	if !c.Web.GuestsEnabled || c.Web.Production {
		t.Fatal("want guests enabled, development")
	}
}

func TestLoadConfigRefuses(t *testing.T) {
	good := map[string]string{
		"APP_ENV":    "production",
		"SMTP_URL":   "smtps://mail.example.com:465",
		"SECRET_KEY": strings.Repeat("k", 32),
		"BASE_URL":   "https://shop.example.com",
	}
	if _, err := loadConfig(envFrom(good)); err != nil {
		t.Fatalf("valid production config refused: %v", err)
	}
	cases := map[string]struct {
		key, value, want string
	}{
		"production without SMTP":        {"SMTP_URL", "", "SMTP_URL"},
		"production without secret":      {"SECRET_KEY", "", "SECRET_KEY"},
		"production on http":             {"BASE_URL", "http://shop.example.com", "https"},
		"short secret":                   {"SECRET_KEY", "short", "32 bytes"},
		"bad duration":                   {"GUEST_TTL", "forever", "GUEST_TTL"},
		"negative duration":              {"TOKEN_TTL", "-1h", "TOKEN_TTL"},
		"bad guests flag":                {"GUESTS_ENABLED", "maybe", "GUESTS_ENABLED"},
		"relative base URL":              {"BASE_URL", "/shop", "BASE_URL"},
		"unknown environment":            {"APP_ENV", "staging", "APP_ENV"},
		"cull before the cookie expires": {"GUEST_CULL_AFTER", "24h", "GUEST_CULL_AFTER"},
		"base URL with another protocol": {"BASE_URL", "ftp://shop.example.com", "BASE_URL"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range good {
				env[k] = v
			}
			env[tc.key] = tc.value
			_, err := loadConfig(envFrom(env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestRunUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, envFrom(nil), strings.NewReader(""), &out)
	if err == nil || !strings.Contains(err.Error(), "usage: shopfront") {
		t.Fatalf("err = %v, want usage", err)
	}
	if err := run(context.Background(), nil, envFrom(nil), strings.NewReader(""), &out); err == nil {
		t.Fatal("no command: want usage error")
	}
}
