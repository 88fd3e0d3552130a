package handlers

import (
	"strconv"
	"strings"

	"shopfront/models"
)

// parseID reads a product id from a form field or path: a positive integer.
func parseID(raw string) (int64, bool) {
	id, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	return id, err == nil && id > 0
}

// parseQuantity reads a quantity field: a whole number from min to
// models.MaxQuantity. An empty field means def. The message says what is wrong.
func parseQuantity(raw string, def, min int) (int, string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return def, ""
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < min || n > models.MaxQuantity {
		return 0, "Quantity must be a whole number from " + strconv.Itoa(min) + " to " + strconv.Itoa(models.MaxQuantity) + "."
	}
	return n, ""
}
