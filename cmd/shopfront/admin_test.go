package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"shopfront/models"
	"shopfront/models/modeltest"
)

func TestAdminCreate(t *testing.T) {
	dbURL := modeltest.NewDatabase(t)
	env := envFrom(map[string]string{"DATABASE_URL": dbURL})
	ctx := context.Background()
	adminCreate := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"admin", "create"}, args...), env, strings.NewReader(stdin), &out)
		return out.String(), err
	}

	out, err := adminCreate("a long admin password\n", "--email", "Boss@Example.com", "--password-stdin")
	if err != nil || !strings.Contains(out, "created admin boss@example.com") {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if strings.Contains(out, "a long admin password") {
		t.Fatal("the password was printed")
	}
	out, err = adminCreate("another long password\n", "--email", "boss@example.com", "--password-stdin")
	if err != nil || !strings.Contains(out, "now an admin") {
		t.Fatalf("again: %v\n%s", err, out)
	}

	for name, tc := range map[string]struct {
		stdin string
		args  []string
		want  string
	}{
		"short password": {"short\n", []string{"--email", "x@example.com", "--password-stdin"}, "at least 12"},
		"no password":    {"", []string{"--email", "x@example.com", "--password-stdin"}, "no password"},
		"no stdin flag":  {"a long admin password\n", []string{"--email", "x@example.com"}, "--password-stdin"},
		"bad email":      {"a long admin password\n", []string{"--email", "not-an-email", "--password-stdin"}, "not an email"},
		"unknown flag":   {"", []string{"--password", "x"}, "flag provided but not defined"},
		"no subcommand":  {"", nil, "usage"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			args := []string{"admin", "create"}
			if tc.args == nil {
				args = []string{"admin"}
			}
			err := run(ctx, append(args, tc.args...), env, strings.NewReader(tc.stdin), &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), tc.want) {
				t.Fatalf("err = %v, out %q; want one mentioning %q", err, out.String(), tc.want)
			}
		})
	}

	db := modeltest.Open(t, dbURL)
	var admins int
	db.Raw(`SELECT count(*) FROM users WHERE is_admin AND kind = 'registered' AND email_verified_at IS NOT NULL`).Scan(&admins)
	if admins != 1 {
		t.Fatalf("%d verified admins, want 1", admins)
	}
	var hash string
	db.Raw(`SELECT password_hash FROM users WHERE email = 'boss@example.com'`).Scan(&hash)
	ok, err := models.NewPasswords().Check(ctx, "a long admin password", hash)
	if err != nil || !ok {
		t.Fatal("the admin's password is not the one given first")
	}
}
