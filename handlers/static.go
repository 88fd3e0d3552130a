package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

// assetVersion hashes every static file, so the ?v= query on asset URLs
// changes whenever any of them does and browsers may cache them for a year.
func assetVersion(fsys fs.FS) (string, error) {
	sum := sha256.New()
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(sum, "%s %d\n", path, len(b))
		sum.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil))[:12], nil
}

// staticFiles serves fsys. Versioned URLs (the ones pages link to) are
// immutable; an unversioned one is revalidated.
func (h *handler) staticFiles(fsys fs.FS) fiber.Handler {
	serve := filesystem.New(filesystem.Config{Root: http.FS(fsys)})
	return func(c *fiber.Ctx) error {
		if err := serve(c); err != nil {
			return err
		}
		if c.Response().StatusCode() != fiber.StatusOK {
			return nil
		}
		if c.Query("v") == h.assetVersion {
			c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
		} else {
			c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		}
		return nil
	}
}
