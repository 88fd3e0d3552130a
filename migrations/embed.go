// Package migrations holds the numbered goose SQL files that define the schema.
package migrations

import "embed"

// FS holds every migration, applied in order by models.Migrate.
//
//go:embed *.sql
var FS embed.FS
