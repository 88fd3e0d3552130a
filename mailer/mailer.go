// Package mailer sends the outbox's mail over SMTP with go-mail: a Sender
// that delivers a batch over one connection, and a Worker that drains the
// outbox table with retries and backoff.
package mailer

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"shopfront/models"
)

// Config is the mail part of the settings: SMTP_URL and MAIL_FROM.
type Config struct {
	// URL is smtp://[user:pass@]host[:587][?tls=opportunistic|none] (STARTTLS
	// required unless tls says otherwise) or smtps://[user:pass@]host[:465].
	URL string
	// From is the sender, such as "Shopfront <no-reply@localhost>".
	From string
}

// Default ports: submission with STARTTLS, and submission over implicit TLS.
const (
	defaultSMTPPort  = 587
	defaultSMTPSPort = 465
	// dialTimeout bounds connecting and each SMTP command, so a stuck server
	// holds the outbox rows of a batch no longer than this per message.
	dialTimeout = 15 * time.Second
)

// Sender delivers mail through one SMTP server. It is safe for concurrent use:
// each batch gets its own connection.
type Sender struct {
	client *mail.Client
	from   *netmail.Address
	// domain is the From address's domain, used in Message-IDs.
	domain string
	addr   string
}

// smtpSettings is SMTP_URL taken apart.
type smtpSettings struct {
	host     string
	port     int
	ssl      bool
	policy   mail.TLSPolicy
	user     string
	password string
}

// New checks cfg and returns a Sender. It does not connect: an SMTP server
// that is down at start is an outage the worker rides out, not a fatal error.
func New(cfg Config) (*Sender, error) {
	s, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("MAIL_FROM %q: %w", cfg.From, err)
	}
	client, err := mail.NewClient(s.host, s.options()...)
	if err != nil {
		return nil, fmt.Errorf("SMTP client: %w", err)
	}
	return &Sender{
		client: client,
		from:   from,
		domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		addr:   fmt.Sprintf("%s:%d", s.host, s.port),
	}, nil
}

// Addr is the server's host:port, for logs (it holds no credentials).
func (s *Sender) Addr() string { return s.addr }

// parseURL reads SMTP_URL. Its errors never quote the URL: it may hold a password.
func parseURL(raw string) (smtpSettings, error) {
	if raw == "" {
		return smtpSettings{}, errors.New("SMTP_URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL, password included
		}
		return smtpSettings{}, fmt.Errorf("SMTP_URL: %w", err)
	}
	s := smtpSettings{host: u.Hostname(), policy: mail.TLSMandatory}
	switch u.Scheme {
	case "smtp":
		s.port = defaultSMTPPort
	case "smtps":
		s.ssl, s.port = true, defaultSMTPSPort
	default:
		return smtpSettings{}, fmt.Errorf("SMTP_URL: unknown scheme %q (want smtp or smtps)", u.Scheme)
	}
	if s.host == "" {
		return smtpSettings{}, errors.New("SMTP_URL: no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return smtpSettings{}, fmt.Errorf("SMTP_URL: bad port %q", p)
		}
		s.port = n
	}
	if u.Path != "" && u.Path != "/" {
		return smtpSettings{}, errors.New("SMTP_URL: unexpected path (want smtp://host:port)")
	}
	if err := s.readQuery(u.Query()); err != nil {
		return smtpSettings{}, fmt.Errorf("SMTP_URL: %w", err)
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	return s, nil
}

// readQuery applies the tls parameter. Unknown parameters are refused: a
// mistyped one would otherwise silently leave the defaults in place.
func (s *smtpSettings) readQuery(q url.Values) error {
	for key := range q {
		if key != "tls" {
			return fmt.Errorf("unknown parameter %q (only tls is known)", key)
		}
	}
	switch v := q.Get("tls"); {
	case v == "" || v == "required":
		return nil
	case s.ssl:
		return fmt.Errorf("tls=%s applies to smtp:// only; smtps:// always uses TLS", v)
	case v == "opportunistic":
		s.policy = mail.TLSOpportunistic
	case v == "none":
		s.policy = mail.NoTLS
	default:
		return fmt.Errorf("unknown tls value %q (want required, opportunistic or none)", v)
	}
	return nil
}

// options are the go-mail client options for s.
func (s smtpSettings) options() []mail.Option {
	opts := []mail.Option{mail.WithTimeout(dialTimeout)}
	if s.ssl {
		opts = append(opts, mail.WithSSL())
	} else {
		opts = append(opts, mail.WithTLSPolicy(s.policy))
	}
	// After WithSSL, which sets its own default port.
	opts = append(opts, mail.WithPort(s.port))
	if s.user != "" {
		// go-mail picks the strongest mechanism the server offers, and never
		// PLAIN or LOGIN over an unencrypted connection.
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(s.user), mail.WithPassword(s.password))
	}
	return opts
}

// Send delivers msgs over one connection and says how each one went, in
// order. If the server cannot be reached, every message gets that
// (temporary) error. It stops early when ctx ends; the rest are retried.
func (s *Sender) Send(ctx context.Context, msgs []models.OutboxMessage) []models.Delivery {
	out := make([]models.Delivery, len(msgs))
	conn, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		// Connection refused, TLS or AUTH failure: nothing was sent. Retrying
		// is right even for a misconfiguration, which an operator can fix.
		return fill(out, models.Delivery{Err: fmt.Errorf("connect to %s: %w", s.addr, err), Retry: true})
	}
	// go-mail's per-connection calls (not Dial/Send/Close, which keep the
	// connection in the shared client) let several batches run at once.
	defer func() {
		// A failed QUIT changes nothing: what the server accepted stays accepted.
		_ = s.client.CloseWithSMTPClient(conn)
	}()
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			fill(out[i:], models.Delivery{Err: fmt.Errorf("not sent: %w", err), Retry: true})
			break
		}
		out[i] = s.sendOne(conn, m)
	}
	return out
}

// sendOne delivers one message over conn.
func (s *Sender) sendOne(conn *smtp.Client, m models.OutboxMessage) models.Delivery {
	msg, err := s.build(m)
	if err != nil {
		// A malformed address will be just as malformed next time.
		return models.Delivery{Err: err}
	}
	err = s.client.SendWithSMTPClient(conn, msg)
	if err == nil || msg.IsDelivered() {
		// IsDelivered: the server accepted the DATA; a failure after that
		// (the RSET) must not send the message twice.
		return models.Delivery{}
	}
	return models.Delivery{Err: err, Retry: retryable(err)}
}

// retryable tells a temporary failure from a permanent one. Only a 5xx
// answer is permanent; network errors and 4xx answers are worth retrying.
func retryable(err error) bool {
	var se *mail.SendError
	if errors.As(err, &se) {
		if se.IsTemp() {
			return true
		}
		return se.ErrorCode() < 500 || se.ErrorCode() > 599
	}
	return true
}

// build turns an outbox row into a message: plain text first, then the HTML
// alternative, so clients that prefer HTML show it and the rest show text.
func (s *Sender) build(m models.OutboxMessage) (*mail.Msg, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.FromFormat(s.from.Name, s.from.Address); err != nil {
		return nil, fmt.Errorf("from address: %w", err)
	}
	if err := msg.To(m.Recipient); err != nil {
		return nil, fmt.Errorf("outbox %d: recipient: %w", m.ID, err)
	}
	msg.Subject(m.Subject)
	// Stable across retries, so a receiver can drop a copy it already has.
	msg.SetMessageIDWithValue(fmt.Sprintf("outbox.%d.%d@%s", m.ID, m.CreatedAt.UnixMicro(), s.domain))
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, m.TextBody)
	if m.HTMLBody != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTMLBody)
	}
	return msg, nil
}

// fill sets every element of out to d and returns out.
func fill(out []models.Delivery, d models.Delivery) []models.Delivery {
	for i := range out {
		out[i] = d
	}
	return out
}
