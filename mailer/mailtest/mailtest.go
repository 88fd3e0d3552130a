// Package mailtest is an in-process SMTP server for tests: it accepts mail
// on 127.0.0.1 without TLS or authentication, decodes each message, and can
// be stopped, restarted on the same port, or told to refuse mail.
package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one mail the server accepted, decoded.
type Message struct {
	// From and To are the envelope (MAIL FROM and RCPT TO) addresses.
	From string
	To   []string
	// Header is the message's header; Subject is its decoded Subject.
	Header  netmail.Header
	Subject string
	// Text and HTML are the decoded bodies of the text/plain and text/html
	// parts, with line ends as "\n".
	Text string
	HTML string
	// Raw is the message as it came over the wire.
	Raw []byte
}

// Server is a running (or stopped) SMTP sink. Its methods are safe for
// concurrent use; WaitFor must be called from the test's goroutine.
type Server struct {
	addr string

	mu       sync.Mutex
	smtp     *smtp.Server
	listener *trackingListener
	served   chan struct{} // closed when the current Serve returns
	msgs     []Message
	errs     []error       // messages that could not be parsed
	changed  chan struct{} // closed and replaced whenever a message arrives
	refuse   int
	rejects  map[string]int
}

// NewServer starts a sink on a free port of 127.0.0.1; it stops when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{addr: "127.0.0.1:0", changed: make(chan struct{}), rejects: map[string]int{}}
	if err := s.Start(); err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URL is the server as an SMTP_URL for the mailer.
func (s *Server) URL() string {
	return "smtp://" + s.Addr() + "?tls=none"
}

// Addr is the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Start listens again, on the same port, after Stop. It does nothing when
// the server is running.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.smtp != nil {
		return nil
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	// Keep the port the first start was given, for restarts.
	s.addr = l.Addr().String()
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "mailtest.localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 10 << 20
	// Its log would outlive the test; failures reach the client instead.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(tl) // its error is only ever "closed", from Stop
	}()
	s.smtp, s.listener, s.served = srv, tl, served
	return nil
}

// Stop closes the listener and every open connection, as an SMTP outage
// would. Messages already received stay in Messages.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, tl, served := s.smtp, s.listener, s.served
	s.smtp, s.listener, s.served = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	// go-smtp misses a listener that Serve has not registered yet, and a
	// connection accepted but not yet registered: close those too.
	tl.closeAll()
	<-served
}

// trackingListener remembers the connections it accepted, so Stop can cut
// every one of them.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return c, nil
}

// closeAll closes the listener and every connection it accepted.
func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.Listener.Close()
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
}

// Refuse makes the server answer every MAIL FROM with code: 421 or 451 for
// a temporary refusal, a 5xx for a permanent one. Refuse(0) accepts again.
func (s *Server) Refuse(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = code
}

// RejectRecipient makes the server answer RCPT TO addr with code (4xx or
// 5xx); code 0 accepts it again.
func (s *Server) RejectRecipient(addr string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.rejects, strings.ToLower(addr))
		return
	}
	s.rejects[strings.ToLower(addr)] = code
}

// Messages returns the messages received so far, in order of arrival.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// WaitFor waits until at least n messages have arrived and returns them all;
// it fails the test if they have not within timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed, errs := len(s.msgs), s.changed, s.errs
		if got >= n {
			msgs := slices.Clone(s.msgs)
			s.mu.Unlock()
			return msgs
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("mailtest: %d messages after %v, want %d; unparsable: %v", got, timeout, n, errs)
		}
	}
}

// refusal is the error the server answers MAIL FROM with, or nil.
func (s *Server) refusal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return smtpError(s.refuse, "mailtest refuses mail")
}

// rejection is the error the server answers RCPT TO addr with, or nil.
func (s *Server) rejection(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return smtpError(s.rejects[strings.ToLower(addr)], "mailtest rejects "+addr)
}

// receive records a message and wakes WaitFor.
func (s *Server) receive(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// unparsable records a message the server refused because it could not parse it.
func (s *Server) unparsable(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// smtpError is an SMTP answer with code, or nil for code 0.
func smtpError(code int, msg string) error {
	if code == 0 {
		return nil
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

// backend gives each connection a session that records into the Server.
type backend struct{ s *Server }

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s}, nil
}

// session is one SMTP connection's current transaction.
type session struct {
	s    *Server
	from string
	to   []string
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := se.s.refusal(); err != nil {
		return err
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := se.s.rejection(to); err != nil {
		return err
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		se.s.unparsable(err)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: " + err.Error()}
	}
	m.From, m.To = se.from, slices.Clone(se.to)
	se.s.receive(m)
	return nil
}

func (se *session) Reset() {
	se.from, se.to = "", nil
}

func (se *session) Logout() error { return nil }

// parse decodes a message: its subject and its text and HTML parts.
func parse(raw []byte) (Message, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("read message: %w", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return Message{}, fmt.Errorf("decode subject: %w", err)
	}
	m := Message{Header: msg.Header, Subject: subject, Raw: raw}
	if err := readPart(textproto.MIMEHeader(msg.Header), msg.Body, &m); err != nil {
		return Message{}, err
	}
	return m, nil
}

// readPart decodes one MIME part into m, descending into multiparts.
func readPart(h textproto.MIMEHeader, body io.Reader, m *Message) error {
	mediaType, params := "text/plain", map[string]string{}
	if ct := h.Get("Content-Type"); ct != "" {
		var err error
		if mediaType, params, err = mime.ParseMediaType(ct); err != nil {
			return fmt.Errorf("content type %q: %w", ct, err)
		}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		return readMultipart(multipart.NewReader(body, params["boundary"]), m)
	}
	b, err := io.ReadAll(decoder(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return fmt.Errorf("decode %s part: %w", mediaType, err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch mediaType {
	case "text/plain":
		m.Text = text
	case "text/html":
		m.HTML = text
	}
	return nil
}

// readMultipart reads every part of mr into m.
func readMultipart(mr *multipart.Reader, m *Message) error {
	for {
		// NextRawPart: this package decodes every transfer encoding itself.
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("multipart: %w", err)
		}
		if err := readPart(p.Header, p, m); err != nil {
			return err
		}
	}
}

// decoder undoes a Content-Transfer-Encoding.
func decoder(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r) // skips the line breaks
	default: // 7bit, 8bit, binary
		return r
	}
}
