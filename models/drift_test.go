package models_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"shopfront/models"
	"shopfront/models/modeltest"
)

// ddlLogger records every DDL statement GORM runs.
type ddlLogger struct {
	logger.Interface
	mu  sync.Mutex
	ddl []string
}

var ddlPattern = regexp.MustCompile(`(?i)^\s*(CREATE|ALTER|DROP|COMMENT)\b`)

func (l *ddlLogger) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	sql, _ := fc()
	if ddlPattern.MatchString(sql) {
		l.mu.Lock()
		l.ddl = append(l.ddl, strings.TrimSpace(sql))
		l.mu.Unlock()
	}
}

// TestSchemaDrift keeps the GORM models and the SQL migrations in step: on a
// migrated database, AutoMigrate must find nothing to change.
func TestSchemaDrift(t *testing.T) {
	db := modeltest.NewDB(t)
	rec := &ddlLogger{Interface: logger.Discard}
	errRollback := errors.New("rollback")
	err := db.Session(&gorm.Session{Logger: rec}).Transaction(func(tx *gorm.DB) error {
		if err := tx.AutoMigrate(models.All()...); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("automigrate: %v", err)
	}
	if len(rec.ddl) > 0 {
		t.Fatalf("models drift from migrations; AutoMigrate wants:\n%s", strings.Join(rec.ddl, "\n"))
	}
}
