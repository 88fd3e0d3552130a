package models_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"shopfront/models"
)

func TestIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, _, err = models.Open(context.Background(), "postgres://x@"+addr+"/x?sslmode=disable&connect_timeout=2",
		models.PoolConfig{}, slog.New(slog.DiscardHandler))
	if err == nil || !models.IsUnavailable(err) {
		t.Fatalf("a refused connection: err = %v, IsUnavailable false", err)
	}
	if !models.IsUnavailable(&pgconn.PgError{Code: "57P01"}) {
		t.Fatal("admin shutdown is unavailability")
	}
	for _, err := range []error{models.ErrNotFound, errors.New("boom"), &pgconn.PgError{Code: "23505"}} {
		if models.IsUnavailable(err) {
			t.Fatalf("%v counted as unavailability", err)
		}
	}
}
