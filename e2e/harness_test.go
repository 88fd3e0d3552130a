package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp/kb"
)

// harnessServer serves the tiny site that TestHarness drives:
//
//	/       a form with a text input that posts to /echo
//	/echo   echoes the posted name, sets the HttpOnly cookie "echoed"
//	/whoami shows the "echoed" cookie that the browser sent
//	/js     a heading that an inline script rewrites
func harnessServer(t *testing.T) *httptest.Server {
	t.Helper()
	page := func(w http.ResponseWriter, body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><title>harness</title></head><body>%s</body></html>", body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page(w, `<h1 id="title">Form</h1>
<form id="f" action="/echo" method="post">
  <input id="name" name="name" type="text">
  <button id="send" type="submit">Send</button>
</form>`)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		name := r.PostFormValue("name")
		http.SetCookie(w, &http.Cookie{Name: "echoed", Value: name, Path: "/", HttpOnly: true})
		page(w, `<h1 id="echo">You said: `+html.EscapeString(name)+`</h1>
<ul><li>one</li><li>two</li><li>three</li></ul>`)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		v := "none"
		if c, err := r.Cookie("echoed"); err == nil {
			v = c.Value
		}
		page(w, `<p id="cookie">`+html.EscapeString(v)+`</p>`)
	})
	mux.HandleFunc("GET /js", func(w http.ResponseWriter, r *http.Request) {
		page(w, `<h1 id="h">static</h1>
<script>document.getElementById("h").textContent = "changed by script";</script>`)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// TestHarness checks each helper of browser_test.go against real values, so
// that a broken helper fails here and not in the middle of a journey.
func TestHarness(t *testing.T) {
	ts := harnessServer(t)
	ctx := newBrowser(t)

	expect := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s = %q, want %q", what, got, want)
		}
	}

	// Form journey: navigate, setValue, submit, text, location, count.
	navigate(t, ctx, ts.URL+"/")
	expect("title", text(t, ctx, "#title"), "Form")
	if n := count(t, ctx, "#echo"); n != 0 {
		t.Fatalf("count(#echo) on the form = %d, want 0", n)
	}
	if n := count(t, ctx, "input"); n != 1 {
		t.Fatalf("count(input) = %d, want 1", n)
	}
	setValue(t, ctx, "#name", "Ada")
	submit(t, ctx, "#name")
	expect("echo", text(t, ctx, "#echo"), "You said: Ada")
	expect("location", location(t, ctx), ts.URL+"/echo")
	if n := count(t, ctx, "li"); n != 3 {
		t.Fatalf("count(li) = %d, want 3", n)
	}
	if n := count(t, ctx, "#title"); n != 0 {
		t.Fatalf("count(#title) after submit = %d, want 0", n)
	}

	// click on the submit button, with setValue replacing a typed value.
	navigate(t, ctx, ts.URL+"/")
	setValue(t, ctx, "#name", "first")
	setValue(t, ctx, "#name", "Grace")
	click(t, ctx, "#send")
	waitVisible(t, ctx, "#echo")
	expect("echo after click", text(t, ctx, "#echo"), "You said: Grace")

	// A tab of the same browser context shares the cookie jar.
	tab := newTab(t, ctx)
	navigate(t, tab, ts.URL+"/whoami")
	expect("cookie seen by a second tab", text(t, tab, "#cookie"), "Grace")

	// cookies round trip: an isolated context starts empty, and is logged in
	// after setCookies.
	jar := cookies(t, ctx)
	var found bool
	for _, c := range jar {
		if c.Name == "echoed" {
			found = true
			if c.Value != "Grace" || !c.HTTPOnly {
				t.Fatalf("cookie echoed = %q (HttpOnly %t), want \"Grace\" (HttpOnly true)", c.Value, c.HTTPOnly)
			}
		}
	}
	if !found {
		t.Fatalf("cookies() has no \"echoed\" cookie: %d cookies", len(jar))
	}
	iso := newIsolatedTab(t, ctx)
	navigate(t, iso, ts.URL+"/whoami")
	expect("cookie in a fresh isolated context", text(t, iso, "#cookie"), "none")
	if n := len(cookies(t, iso)); n != 0 {
		t.Fatalf("isolated context has %d cookies, want 0", n)
	}
	setCookies(t, iso, jar)
	navigate(t, iso, ts.URL+"/whoami")
	expect("cookie after setCookies", text(t, iso, "#cookie"), "Grace")

	// disableJS: the inline script runs normally, and not in a tab with
	// scripts off. Both halves, so that the check can fail.
	navigate(t, ctx, ts.URL+"/js")
	expect("heading with JavaScript", text(t, ctx, "#h"), "changed by script")
	noJS := newTab(t, ctx)
	disableJS(t, noJS)
	navigate(t, noJS, ts.URL+"/js")
	expect("heading without JavaScript", text(t, noJS, "#h"), "static")
	// The other helpers keep working without page scripts.
	navigate(t, noJS, ts.URL+"/")
	setValue(t, noJS, "#name", "NoScript")
	submit(t, noJS, "#name")
	expect("echo without JavaScript", text(t, noJS, "#echo"), "You said: NoScript")
	expect("location without JavaScript", location(t, noJS), ts.URL+"/echo")

	// Keyboard only: Tab reaches the input, typing fills it, Enter submits.
	kbd := newTab(t, ctx)
	navigate(t, kbd, ts.URL+"/")
	pressKey(t, kbd, kb.Tab)
	pressKey(t, kbd, "Linus")
	pressKey(t, kbd, kb.Enter)
	waitVisible(t, kbd, "#echo")
	expect("echo after keyboard", text(t, kbd, "#echo"), "You said: Linus")

	// screenshot of the whole page is a real PNG.
	shot := filepath.Join(t.TempDir(), "echo.png")
	screenshot(t, kbd, shot)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 100 || string(b[:8]) != "\x89PNG\r\n\x1a\n" {
		t.Fatalf("screenshot: %d bytes, not a PNG", len(b))
	}
}
