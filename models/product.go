package models

import "time"

// Product is one item of the catalog.
type Product struct {
	ID          int64  `gorm:"primaryKey"`
	Slug        string `gorm:"not null;uniqueIndex"`
	Name        string `gorm:"not null"`
	Description string `gorm:"not null"`
	PriceCents  int64  `gorm:"not null"`
	Currency    string `gorm:"not null"`
	// Image is a path below static/, such as "img/products/tea-kettle.svg".
	Image     string    `gorm:"not null"`
	Stock     int       `gorm:"type:integer;not null"`
	CreatedAt time.Time `gorm:"not null;default:now()"`
	// CategoryID is the product's category; nil for none.
	CategoryID *int64
}

// Category groups products for browsing; Position orders the categories.
type Category struct {
	ID       int64  `gorm:"primaryKey"`
	Slug     string `gorm:"not null;uniqueIndex"`
	Name     string `gorm:"not null"`
	Position int    `gorm:"type:integer;not null;default:0"`
}
