package mailer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"shopfront/mailer/mailtest"
	"shopfront/models"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want smtpSettings
	}{
		{"smtp://user:pass@mail.example.com:587", smtpSettings{host: "mail.example.com", port: 587, policy: mail.TLSMandatory, user: "user", password: "pass"}},
		{"smtp://mail.example.com", smtpSettings{host: "mail.example.com", port: 587, policy: mail.TLSMandatory}},
		{"smtp://mail.example.com?tls=required", smtpSettings{host: "mail.example.com", port: 587, policy: mail.TLSMandatory}},
		{"smtp://mail.example.com:25?tls=opportunistic", smtpSettings{host: "mail.example.com", port: 25, policy: mail.TLSOpportunistic}},
		{"smtp://127.0.0.1:2525?tls=none", smtpSettings{host: "127.0.0.1", port: 2525, policy: mail.NoTLS}},
		{"smtps://mail.example.com", smtpSettings{host: "mail.example.com", port: 465, ssl: true, policy: mail.TLSMandatory}},
		{"smtps://apikey:p%40ss%3Aword@smtp.example.com:1465", smtpSettings{host: "smtp.example.com", port: 1465, ssl: true, policy: mail.TLSMandatory, user: "apikey", password: "p@ss:word"}},
		{"SMTP://[::1]:587/", smtpSettings{host: "::1", port: 587, policy: mail.TLSMandatory}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parseURL(tt.url)
			if err != nil {
				t.Fatalf("parseURL: %v", err)
			}
			if got != tt.want {
				t.Fatalf("parseURL = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseURL_Errors(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "SMTP_URL is empty"},
		{"http://mail.example.com", `unknown scheme "http"`},
		{"mail.example.com:587", "unknown scheme"},
		{"smtp://", "no host"},
		{"smtp://:587", "no host"},
		{"smtp://mail.example.com?tls=maybe", `unknown tls value "maybe"`},
		{"smtps://mail.example.com?tls=none", "smtp:// only"},
		{"smtp://mail.example.com?tsl=none", `unknown parameter "tsl"`},
		{"smtp://mail.example.com:0", "bad port"},
		{"smtp://mail.example.com:70000", "bad port"},
		{"smtp://mail.example.com/inbox", "unexpected path"},
		{"smtp://user:s3cret@mail.example.com:port", "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseURL(tt.url)
			if err == nil {
				t.Fatalf("parseURL(%q) succeeded, want an error", tt.url)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseURL(%q) = %q, want it to say %q", tt.url, err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Run("default sender parses", func(t *testing.T) {
		s, err := New(Config{URL: "smtp://mail.example.com", From: "Shopfront <no-reply@localhost>"})
		if err != nil {
			t.Fatal(err)
		}
		if s.from.Name != "Shopfront" || s.from.Address != "no-reply@localhost" || s.domain != "localhost" {
			t.Fatalf("from = %+v, domain %q", s.from, s.domain)
		}
		if s.Addr() != "mail.example.com:587" {
			t.Fatalf("Addr = %q", s.Addr())
		}
	})
	for _, from := range []string{"", "not an address", "Shopfront <no-reply@>"} {
		t.Run("bad from "+from+" is refused", func(t *testing.T) {
			if _, err := New(Config{URL: "smtp://mail.example.com", From: from}); err == nil || !strings.Contains(err.Error(), "MAIL_FROM") {
				t.Fatalf("New with From %q: err = %v, want a MAIL_FROM error", from, err)
			}
		})
	}
	t.Run("bad URL is refused", func(t *testing.T) {
		if _, err := New(Config{URL: "ftp://x", From: "a@b.test"}); err == nil {
			t.Fatal("New accepted ftp://")
		}
	})
}

// newSender returns a Sender to url from the default MAIL_FROM.
func newSender(t testing.TB, url string) *Sender {
	t.Helper()
	s, err := New(Config{URL: url, From: "Shopfront <no-reply@localhost>"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// message is an outbox row to send, not stored anywhere.
func message(id int64, to, subject string) models.OutboxMessage {
	return models.OutboxMessage{
		ID: id, Recipient: to, Subject: subject, CreatedAt: time.Now(),
		TextBody: "Hello,\n\n" + subject + "\n", HTMLBody: "<p>Hello,</p><p>" + subject + "</p>",
	}
}

func TestSender_DeliversTextAndHTML(t *testing.T) {
	sink := mailtest.NewServer(t)
	link := "http://localhost:3000/account/password?token=Zm9vYmFyYmF6cXV1eC1hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk_-x&next=%2Fcart"
	text := "Hallo Jürgen,\n\nsetzen Sie Ihr Passwort: " + link + "\n\nGrüße — Shopfront ✓\n"
	html := `<p>Hallo Jürgen,</p><p><a href="` + link + `">Passwort setzen</a></p><p>Grüße — Shopfront ✓</p>`
	msg := models.OutboxMessage{
		ID: 7, Recipient: "jurgen@example.test", Subject: "Passwort für Ihr Konto — jetzt festlegen ✓ 日本語",
		TextBody: text, HTMLBody: html, CreatedAt: time.Now(),
	}

	ds := newSender(t, sink.URL()).Send(context.Background(), []models.OutboxMessage{msg})
	if ds[0].Err != nil {
		t.Fatalf("send: %v", ds[0].Err)
	}

	got := sink.WaitFor(t, 1, 5*time.Second)[0]
	if got.Subject != msg.Subject {
		t.Errorf("subject = %q, want %q", got.Subject, msg.Subject)
	}
	if got.Text != text {
		t.Errorf("text =\n%q\nwant\n%q", got.Text, text)
	}
	if got.HTML != html {
		t.Errorf("html =\n%q\nwant\n%q", got.HTML, html)
	}
	if got.From != "no-reply@localhost" || len(got.To) != 1 || got.To[0] != "jurgen@example.test" {
		t.Errorf("envelope from %q to %q", got.From, got.To)
	}
	if h := got.Header.Get("From"); h != `"Shopfront" <no-reply@localhost>` && h != "Shopfront <no-reply@localhost>" {
		t.Errorf("From header = %q", h)
	}
	if id := got.Header.Get("Message-Id"); !strings.HasPrefix(id, "<outbox.7.") || !strings.HasSuffix(id, "@localhost>") {
		t.Errorf("Message-ID = %q, want one made from the outbox id", id)
	}
	if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	// The text part comes first: clients show the last part they understand.
	if i, j := strings.Index(string(got.Raw), "text/plain"), strings.Index(string(got.Raw), "text/html"); i < 0 || j < i {
		t.Errorf("text/plain part at %d, text/html at %d: want text first", i, j)
	}
	for _, line := range strings.Split(string(got.Raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("raw line of %d characters: %q", len(line), line)
		}
	}
}

func TestSender_ClassifiesFailures(t *testing.T) {
	sink := mailtest.NewServer(t)
	sink.RejectRecipient("gone@example.test", 550)
	sink.RejectRecipient("busy@example.test", 451)
	batch := []models.OutboxMessage{
		message(1, "first@example.test", "first"),
		message(2, "gone@example.test", "gone"),
		message(3, "busy@example.test", "busy"),
		message(4, "not an address", "malformed"),
		message(5, "last@example.test", "last"),
	}

	ds := newSender(t, sink.URL()).Send(context.Background(), batch)

	want := []struct{ ok, retry bool }{{true, false}, {false, false}, {false, true}, {false, false}, {true, false}}
	for i, w := range want {
		if (ds[i].Err == nil) != w.ok || ds[i].Retry != w.retry {
			t.Errorf("%s: delivery %+v, want ok=%v retry=%v", batch[i].Subject, ds[i], w.ok, w.retry)
		}
	}
	if !strings.Contains(ds[1].Err.Error(), "550") {
		t.Errorf("permanent failure %q does not carry the server's 550", ds[1].Err)
	}
	// The connection survives rejections: the last message went out on it.
	msgs := sink.WaitFor(t, 2, 5*time.Second)
	if len(msgs) != 2 || msgs[0].Subject != "first" || msgs[1].Subject != "last" {
		t.Fatalf("sink got %v, want first and last", subjects(msgs))
	}
}

func TestSender_ServerDownRetriesWholeBatch(t *testing.T) {
	sink := mailtest.NewServer(t)
	sender := newSender(t, sink.URL())
	sink.Stop()

	ds := sender.Send(context.Background(), []models.OutboxMessage{message(1, "a@example.test", "a"), message(2, "b@example.test", "b")})

	for i, d := range ds {
		if d.Err == nil || !d.Retry {
			t.Errorf("message %d: delivery %+v, want a temporary error", i, d)
		}
	}
}

func TestSender_TemporaryRefusalIsRetried(t *testing.T) {
	sink := mailtest.NewServer(t)
	sink.Refuse(421)

	ds := newSender(t, sink.URL()).Send(context.Background(), []models.OutboxMessage{message(1, "a@example.test", "a")})

	if ds[0].Err == nil || !ds[0].Retry {
		t.Fatalf("delivery %+v, want a temporary error", ds[0])
	}
}

func TestSender_RequiresSTARTTLSByDefault(t *testing.T) {
	sink := mailtest.NewServer(t) // offers no STARTTLS
	plain := "smtp://" + sink.Addr()

	ds := newSender(t, plain).Send(context.Background(), []models.OutboxMessage{message(1, "a@example.test", "a")})

	if ds[0].Err == nil || !strings.Contains(ds[0].Err.Error(), "STARTTLS") {
		t.Fatalf("delivery %+v, want a STARTTLS error", ds[0])
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("sink got %d messages over plain text", n)
	}
}

func TestSender_StopsWhenContextEnds(t *testing.T) {
	sink := mailtest.NewServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	ds := newSender(t, sink.URL()).Send(ctx, []models.OutboxMessage{message(1, "a@example.test", "a")})

	if ds[0].Err == nil || !ds[0].Retry {
		t.Fatalf("delivery %+v, want a temporary error", ds[0])
	}
}

func subjects(msgs []mailtest.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Subject
	}
	return out
}
