package models

import (
	"time"

	"github.com/google/uuid"
)

// Order statuses and payment methods, as DESIGN.md names them.
const (
	StatusPendingPayment = "pending_payment"
	StatusPaid           = "paid"
	StatusShipped        = "shipped"
	StatusCancelled      = "cancelled"

	PaymentBankTransfer   = "bank_transfer"
	PaymentCashOnDelivery = "cash_on_delivery"
)

// Statuses lists the order statuses in the order an order moves through them.
var Statuses = []string{StatusPendingPayment, StatusPaid, StatusShipped, StatusCancelled}

// PaymentMethods lists the payment methods the shop offers.
var PaymentMethods = []string{PaymentBankTransfer, PaymentCashOnDelivery}

// Order is a placed order. Its lines keep the names and prices of the moment
// it was placed; UserID is nil once its guest was culled.
type Order struct {
	ID            uuid.UUID  `gorm:"type:uuid;primaryKey"`
	Number        string     `gorm:"not null;uniqueIndex:orders_number_key"`
	UserID        *uuid.UUID `gorm:"type:uuid"`
	Email         string     `gorm:"not null"`
	Status        string     `gorm:"not null"`
	PaymentMethod string     `gorm:"not null"`
	ShipName      string     `gorm:"not null"`
	ShipAddress1  string     `gorm:"column:ship_address1;not null"`
	ShipAddress2  string     `gorm:"column:ship_address2;not null;default:''"`
	ShipCity      string     `gorm:"not null"`
	ShipPostcode  string     `gorm:"not null"`
	ShipCountry   string     `gorm:"not null"`
	SubtotalCents int64      `gorm:"not null"`
	ShippingCents int64      `gorm:"not null"`
	TotalCents    int64      `gorm:"not null"`
	Currency      string     `gorm:"not null"`
	AccessHash    []byte     `gorm:"not null"`
	CartToken     string     `gorm:"not null;uniqueIndex:orders_cart_token_key"`
	CreatedAt     time.Time  `gorm:"not null;default:now()"`
	UpdatedAt     time.Time  `gorm:"not null;default:now()"`
	PaidAt        *time.Time
	ShippedAt     *time.Time
	CancelledAt   *time.Time
}

// OrderLine is one product of an order, as it was sold.
type OrderLine struct {
	OrderID   uuid.UUID `gorm:"type:uuid;primaryKey"`
	ProductID int64     `gorm:"primaryKey;autoIncrement:false"`
	Name      string    `gorm:"not null"`
	UnitCents int64     `gorm:"not null"`
	Quantity  int       `gorm:"type:integer;not null"`
	LineCents int64     `gorm:"not null"`
}

// OrderDetail is an order with its lines.
type OrderDetail struct {
	Order
	Lines []OrderLine
}

// Address is where an order ships to.
type Address struct {
	Name     string
	Address1 string
	Address2 string
	City     string
	Postcode string
	Country  string // ISO 3166-1 alpha-2, one of Countries
}

// Pricing is the shop's shipping rule: a flat fee, free from a subtotal.
type Pricing struct {
	ShippingCents int64
	FreeFromCents int64
}

// Shipping is the fee for an order of subtotal.
func (p Pricing) Shipping(subtotal int64) int64 {
	if subtotal >= p.FreeFromCents {
		return 0
	}
	return p.ShippingCents
}

// Quote is a cart priced now: what the checkout page shows and what an
// order placed from it would cost.
type Quote struct {
	Lines         []CartLine
	Currency      string
	SubtotalCents int64
	ShippingCents int64
	TotalCents    int64
}

// NewQuote prices lines under p.
func NewQuote(lines []CartLine, p Pricing) Quote {
	q := Quote{Lines: lines, Currency: "EUR"}
	for _, l := range lines {
		q.SubtotalCents += l.LineCents()
	}
	if len(lines) > 0 {
		q.Currency = lines[0].Currency
	}
	q.ShippingCents = p.Shipping(q.SubtotalCents)
	q.TotalCents = q.SubtotalCents + q.ShippingCents
	return q
}

// Short answers whether some line wants more than is in stock.
func (q Quote) Short() bool {
	for _, l := range q.Lines {
		if l.Quantity > l.Stock {
			return true
		}
	}
	return false
}

// Country is a country the shop ships to.
type Country struct {
	Code string // ISO 3166-1 alpha-2
	Name string
}

// ShopCountry is where the shop is, the checkout's default country.
const ShopCountry = "DE"

// Countries are where the shop ships to, by name.
var Countries = []Country{
	{"AT", "Austria"}, {"BE", "Belgium"}, {"BG", "Bulgaria"}, {"HR", "Croatia"}, {"CY", "Cyprus"},
	{"CZ", "Czechia"}, {"DK", "Denmark"}, {"EE", "Estonia"}, {"FI", "Finland"}, {"FR", "France"},
	{"DE", "Germany"}, {"GR", "Greece"}, {"HU", "Hungary"}, {"IS", "Iceland"}, {"IE", "Ireland"},
	{"IT", "Italy"}, {"LV", "Latvia"}, {"LI", "Liechtenstein"}, {"LT", "Lithuania"}, {"LU", "Luxembourg"},
	{"MT", "Malta"}, {"NL", "Netherlands"}, {"NO", "Norway"}, {"PL", "Poland"}, {"PT", "Portugal"},
	{"RO", "Romania"}, {"SK", "Slovakia"}, {"SI", "Slovenia"}, {"ES", "Spain"}, {"SE", "Sweden"},
	{"CH", "Switzerland"}, {"GB", "United Kingdom"},
}

// CountryName returns the name of a country the shop ships to; ok is false
// for any other code.
func CountryName(code string) (name string, ok bool) {
	for _, c := range Countries {
		if c.Code == code {
			return c.Name, true
		}
	}
	return "", false
}
