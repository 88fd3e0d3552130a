package handlers_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"shopfront/handlers"
	"shopfront/models/modeltest"
	"shopfront/static"
)

// testConfig is a valid development configuration for tests.
func testConfig() handlers.Config {
	return handlers.Config{
		BaseURL:        &url.URL{Scheme: "http", Host: "shop.test"},
		SecretKey:      []byte("test-secret-key-that-is-32-bytes-long!!"),
		GuestTTL:       720 * time.Hour,
		TokenTTL:       time.Hour,
		GuestsEnabled:  true,
		RequestTimeout: 10 * time.Second,
		Limits:         handlers.DefaultLimits(),
	}
}

// newApp returns the real app over a fresh database; configure, if given,
// changes the test configuration first.
func newApp(t testing.TB, configure ...func(*handlers.Config)) (*fiber.App, *gorm.DB) {
	t.Helper()
	cfg := testConfig()
	for _, f := range configure {
		f(&cfg)
	}
	db := modeltest.NewDB(t)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	app, err := handlers.New(handlers.Deps{
		DB: db, SQL: sqlDB, Config: cfg, Static: static.FS,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return app, db
}

// client is a browser-like caller of the app: it keeps cookies.
type client struct {
	t       testing.TB
	app     *fiber.App
	cookies map[string]string
}

func newClient(t testing.TB, app *fiber.App) *client {
	return &client{t: t, app: app, cookies: map[string]string{}}
}

// response is an answer with its body read.
type response struct {
	*http.Response
	body string
}

// testUserAgent is the browser every test client claims to be.
const testUserAgent = "shopfront-test/1.0"

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", testUserAgent)
	}
	for name, value := range c.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := c.app.Test(req, -1)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return response{Response: resp, body: string(body)}
}

func (c *client) get(target string) response {
	c.t.Helper()
	return c.do(httptest.NewRequest(http.MethodGet, target, nil))
}

// post sends a form; it adds the CSRF token unless form has "_csrf".
func (c *client) post(target string, form url.Values) response {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", c.csrf())
	}
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfPattern = regexp.MustCompile(`X-CSRF-Token&#34;:&#34;([A-Za-z0-9_-]+)&#34;`)

// csrf is the token the app's pages give this client.
func (c *client) csrf() string {
	c.t.Helper()
	m := csrfPattern.FindStringSubmatch(c.get("/").body)
	if m == nil {
		c.t.Fatal("no CSRF token on the home page")
	}
	return m[1]
}

func wantStatus(t testing.TB, r response, want int) {
	t.Helper()
	if r.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body:\n%.600s", r.Request.Method, r.Request.URL, r.StatusCode, want, r.body)
	}
}
