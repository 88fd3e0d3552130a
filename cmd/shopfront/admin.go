package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"shopfront/models"
)

// admin runs "shopfront admin create --email E --password-stdin".
func admin(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: shopfront admin create --email E --password-stdin")
	}
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	fs.SetOutput(e.stdout)
	email := fs.String("email", "", "the admin's email address")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	addr, ok := models.NormalizeEmail(*email)
	if !ok {
		return fmt.Errorf("admin create: --email %q is not an email address", *email)
	}
	if !*fromStdin {
		// Never from a flag: it would sit in the shell history and ps output.
		return errors.New("admin create: give the password on standard input with --password-stdin")
	}
	password, err := readPassword(e.stdin)
	if err != nil {
		return err
	}
	if msg := models.ValidatePassword(password); msg != "" {
		return fmt.Errorf("admin create: password: %s", msg)
	}

	db, closeDB, err := openDB(ctx, e)
	if err != nil {
		return err
	}
	defer closeDB()
	accounts := models.NewAccounts(db, models.NewPasswords(), e.cfg.Web.TokenTTL)
	created, err := accounts.CreateAdmin(ctx, addr, password)
	if errors.Is(err, models.ErrConflict) {
		return fmt.Errorf("admin create: %s belongs to an account that is not registered", addr)
	}
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(e.stdout, "created admin %s\n", addr)
	} else {
		fmt.Fprintf(e.stdout, "%s is now an admin (its password is unchanged)\n", addr)
	}
	return nil
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("admin create: no password on standard input")
	}
	return line, nil
}
