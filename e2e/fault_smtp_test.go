package e2e

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"shopfront/mailer/mailtest"
)

// faultSMTPOutage is how long the SMTP server is down.
const faultSMTPOutage = 60 * time.Second

// faultMailBound is how soon after SMTP's return every mail must be
// delivered (the worker's backoff is capped at 30 s), and faultMailFail the
// time this test fails at, with a margin for a busy machine.
const (
	faultMailBound = 30 * time.Second
	faultMailFail  = 45 * time.Second
)

// faultMessageIDRE reads the outbox row id from a Message-ID, which the
// sender makes stable across retries: <outbox.ID.CREATED@domain>.
var faultMessageIDRE = regexp.MustCompile(`outbox\.(\d+)\.`)

// TestFaultSMTPOutage stops the SMTP server for 60 s while guests save their
// accounts: every save is answered at once, and every mail is delivered
// within 30 s of the server's return, none lost and none twice.
func TestFaultSMTPOutage(t *testing.T) {
	pg := newPGCluster(t)
	sink := mailtest.NewServer(t)
	app := startFaultApp(t, pg.URL(), sink.URL())
	db := faultOpenSQL(t, pg.URL())
	product := faultProducts(t, db, 1, 10)[0]

	// Guests, each with a cart.
	const guests = 24
	const before = 2 // of them save their account before the outage
	shops := make([]*faultShopper, guests)
	for i := range shops {
		s := newFaultShopper(t, app.URL)
		if err := s.Begin(); err != nil {
			t.Fatal(err)
		}
		if a := s.Add(product.ID, 1); !a.OK() {
			t.Fatalf("guest %d: add to cart: %s", i, a)
		}
		shops[i] = s
	}
	email := func(i int) string { return fmt.Sprintf("smtp-outage-%02d@fault.test", i) }
	promote := func(i int) faultAnswer {
		a := shops[i].Post("/account/promote", url.Values{"email": {email(i)}})
		if !a.OK() || a.Location != "/account" {
			t.Errorf("guest %d: save the account: %s, want 303 to /account: %s", i, a, faultSnippet(a.Body))
		}
		return a
	}

	// While SMTP works, mail goes out at once.
	for i := range before {
		promote(i)
	}
	sink.WaitFor(t, before, 15*time.Second)

	// The outage: the guests save their accounts spread over it, so that
	// their mails are at every stage of the backoff when SMTP returns.
	sink.Stop()
	stoppedAt := time.Now()
	var slowest time.Duration
	during := guests - before
	for k := range during {
		at := stoppedAt.Add(time.Duration(k) * (faultSMTPOutage - 5*time.Second) / time.Duration(during))
		time.Sleep(time.Until(at))
		a := promote(before + k)
		slowest = max(slowest, a.Took())
	}
	time.Sleep(time.Until(stoppedAt.Add(faultSMTPOutage - time.Second)))
	pending := faultCount(t, db, `SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL`)
	tried := faultCount(t, db, `SELECT count(*) FROM outbox WHERE sent_at IS NULL AND attempts > 0 AND last_error <> ''`)
	maxAttempts := faultCount(t, db, `SELECT coalesce(max(attempts), 0) FROM outbox`)
	if pending != during {
		t.Errorf("outbox at the end of the outage: %d mails wait, want %d", pending, during)
	}
	if tried == 0 {
		t.Errorf("outbox at the end of the outage: no waiting mail was tried; the worker does not retry")
	}
	if got := len(sink.Messages()); got != before {
		t.Fatalf("the sink holds %d messages after the outage began, want %d", got, before)
	}
	time.Sleep(time.Until(stoppedAt.Add(faultSMTPOutage)))

	// SMTP returns, on the same port.
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	backAt := time.Now()
	// The backoff bounds the wait: the latest retry the outbox has scheduled.
	var scheduled float64
	if err := db.QueryRow(`SELECT coalesce(extract(epoch FROM max(send_after) - now()), 0)::float8
		FROM outbox WHERE sent_at IS NULL`).Scan(&scheduled); err != nil {
		t.Fatal(err)
	}
	want := before + during
	arrived := make([]time.Time, 0, want)
	deadline := backAt.Add(60 * time.Second)
	for len(arrived) < want && time.Now().Before(deadline) {
		n := len(sink.Messages())
		for len(arrived) < n {
			arrived = append(arrived, time.Now())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A copy sent twice would come a little after the first.
	time.Sleep(3 * time.Second)
	msgs := sink.Messages()
	for len(arrived) < len(msgs) {
		arrived = append(arrived, time.Now())
	}

	// Lost and duplicate mail, by outbox row: the Message-ID names it.
	seen := map[int64]int{}
	var last time.Duration
	var duplicates int
	for i, m := range msgs {
		id := faultMessageIDRE.FindStringSubmatch(m.Header.Get("Message-Id"))
		if id == nil {
			t.Errorf("message %d (%q to %v) has no outbox Message-ID: %q", i, m.Subject, m.To, m.Header.Get("Message-Id"))
			continue
		}
		n, _ := strconv.ParseInt(id[1], 10, 64)
		if seen[n]++; seen[n] > 1 {
			duplicates++
		}
		if i >= before {
			last = max(last, arrived[i].Sub(backAt))
		}
	}
	rows, err := db.Query(`SELECT id, recipient, sent_at IS NOT NULL, failed_at IS NOT NULL FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var lost, outboxRows int
	for rows.Next() {
		var id int64
		var to string
		var sent, failed bool
		if err := rows.Scan(&id, &to, &sent, &failed); err != nil {
			t.Fatal(err)
		}
		outboxRows++
		if seen[id] == 0 {
			lost++
			t.Errorf("outbox mail %d to %s was never delivered (sent_at set: %t, given up: %t)", id, to, sent, failed)
		} else if !sent || failed {
			t.Errorf("outbox mail %d to %s was delivered, but the outbox says sent %t, given up %t", id, to, sent, failed)
		}
	}
	rows.Close()
	if outboxRows != want {
		t.Errorf("the outbox holds %d mails, want %d (one per saved account)", outboxRows, want)
	}
	for i := range guests {
		if len(faultMails(sink, email(i))) == 0 {
			t.Errorf("guest %d (%s) got no mail", i, email(i))
		}
	}
	if duplicates > 0 {
		t.Errorf("%d mails were delivered more than once", duplicates)
	}

	// The mails work: the last guest saves its account with its link.
	ms := faultMails(sink, email(guests-1))
	if len(ms) > 0 {
		m := faultLinkRE.FindStringSubmatch(ms[0].Text)
		if m == nil {
			t.Fatalf("the mail to %s has no link: %q", email(guests-1), ms[0].Text)
		}
		if a := shops[guests-1].SetPassword(m[2]); !a.OK() || a.Location != "/cart" {
			t.Errorf("using the link mailed after the outage: %s, want 303 to /cart: %s", a, faultSnippet(a.Body))
		}
	}

	within := "within"
	if last > faultMailBound {
		within = "NOT within"
	}
	t.Logf("outage %v; %d mails queued during it (retried up to %d times), slowest save answer %v; latest retry scheduled %.3f s after the return; %d/%d mails at the sink",
		faultSMTPOutage, during, maxAttempts, slowest.Round(time.Millisecond), scheduled, len(msgs), want)
	t.Logf("FIGURE smtp-outage: last mail delivered %s s after return (%s the %v bound); lost %d; duplicates %d",
		faultSeconds(last), within, faultMailBound, lost, duplicates)
	if last > faultMailFail {
		t.Errorf("the last mail came %v after SMTP's return; the issue asks for %v (this test fails at %v)",
			last, faultMailBound, faultMailFail)
	}
	app.expectCleanLog()
}
