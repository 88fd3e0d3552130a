package views

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"shopfront/models"
)

// testFunnel is November 2024 with a few busy days, the 27th the busiest.
func testFunnel() models.Funnel {
	first := time.Date(2024, time.November, 1, 0, 0, 0, 0, time.UTC)
	f := models.Funnel{
		Totals: models.FunnelDay{
			Day: first, GuestsCreated: 5038, SaveRequested: 933, Saved: 548, SignInMerges: 184,
		},
		ConversionRate:   548.0 / 5038.0,
		MedianTimeToSave: 2*time.Hour + 15*time.Minute + 10*time.Second,
		HasMedian:        true,
	}
	for i := range 30 {
		f.Days = append(f.Days, models.FunnelDay{Day: first.AddDate(0, 0, i)})
	}
	f.Days[0] = models.FunnelDay{Day: f.Days[0].Day, GuestsCreated: 12, SaveRequested: 3, Saved: 1}
	f.Days[26] = models.FunnelDay{Day: f.Days[26].Day, GuestsCreated: 1227, SaveRequested: 204, Saved: 122, SignInMerges: 5}
	f.Days[29] = models.FunnelDay{Day: f.Days[29].Day, GuestsCreated: 75, SaveRequested: 12, Saved: 8, SignInMerges: 11}
	return f
}

func renderFunnel(t *testing.T, f models.Funnel) string {
	t.Helper()
	var b bytes.Buffer
	if err := FunnelChart(f).Render(context.Background(), &b); err != nil {
		t.Fatalf("render: %v", err)
	}
	return b.String()
}

// svgElement is one element of the chart, with the text it holds directly.
type svgElement struct {
	Name  string
	Attrs map[string]string
	Text  string
}

// parseSVG decodes the page's <svg>…</svg> as XML, failing on malformed markup.
func parseSVG(t *testing.T, page string) []svgElement {
	t.Helper()
	start, end := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if start < 0 || end < start || strings.Count(page, "<svg") != 1 {
		t.Fatalf("want exactly one <svg>…</svg> in:\n%s", page)
	}
	dec := xml.NewDecoder(strings.NewReader(page[start : end+len("</svg>")]))
	var (
		elems []svgElement
		open  []int // indexes into elems of the elements being read
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := svgElement{Name: tok.Name.Local, Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.Attrs[a.Name.Local] = a.Value
			}
			elems = append(elems, e)
			open = append(open, len(elems)-1)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				elems[open[len(open)-1]].Text += string(tok)
			}
		}
	}
	if len(open) != 0 {
		t.Fatalf("SVG has %d unclosed elements", len(open))
	}
	return elems
}

// texts returns the contents of the chart's <text> elements.
func texts(elems []svgElement) []string {
	var out []string
	for _, e := range elems {
		if e.Name == "text" {
			out = append(out, e.Text)
		}
	}
	return out
}

// between returns the part of s from the first start to the next end.
func between(t *testing.T, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("no %q in output", start)
	}
	j := strings.Index(s[i:], end)
	if j < 0 {
		t.Fatalf("no %q after %q", end, start)
	}
	return s[i : i+j+len(end)]
}

var cellRE = regexp.MustCompile(`<td class="num">([^<]*)</td>`)

// cells returns the numeric cells of an HTML fragment.
func cells(fragment string) []string {
	var out []string
	for _, m := range cellRE.FindAllStringSubmatch(fragment, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestFunnelChartIsSelfContained(t *testing.T) {
	for name, f := range map[string]models.Funnel{"with data": testFunnel(), "empty": {}} {
		t.Run(name, func(t *testing.T) {
			page := renderFunnel(t, f)
			if !strings.HasPrefix(page, `<section id="funnel" class="funnel"`) {
				t.Errorf("does not start with the funnel section: %.80s", page)
			}
			// The CSP allows neither inline styles nor inline scripts.
			for _, banned := range []string{"style=", "<style", "<script"} {
				if strings.Contains(strings.ToLower(page), banned) {
					t.Errorf("output contains %q", banned)
				}
			}
			if regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
				t.Error("output has an inline event handler")
			}
			parseSVG(t, page)
		})
	}
}

func TestFunnelChartDrawsTheDays(t *testing.T) {
	f := testFunnel()
	elems := parseSVG(t, renderFunnel(t, f))
	svg := elems[0]

	t.Run("accessible scalable svg", func(t *testing.T) {
		if svg.Name != "svg" || svg.Attrs["role"] != "img" || svg.Attrs["width"] != "100%" || svg.Attrs["viewBox"] != "0 0 720 260" {
			t.Fatalf("svg attributes = %v", svg.Attrs)
		}
		label := svg.Attrs["aria-label"]
		for _, want := range []string{"last 30 days", "Nov 1 – Nov 30", "5,038 guests created", "933 asked to save", "548 accounts saved", "184 sign-ins merged"} {
			if !strings.Contains(label, want) {
				t.Errorf("aria-label %q lacks %q", label, want)
			}
		}
	})
	t.Run("legend names the four series", func(t *testing.T) {
		got := texts(elems)
		for _, want := range []string{"Guests created", "Save requested", "Saved", "Sign-in merges"} {
			if !slices.Contains(got, want) {
				t.Errorf("no legend entry %q in %q", want, got)
			}
		}
	})
	t.Run("y axis rounds up to a nice maximum", func(t *testing.T) {
		got := texts(elems)
		for _, want := range []string{"0", "500", "1,000", "1,500"} {
			if !slices.Contains(got, want) {
				t.Errorf("no y tick %q in %q", want, got)
			}
		}
		if slices.Contains(got, "2,000") {
			t.Errorf("y axis goes past 1,500: %q", got)
		}
	})
	t.Run("every fifth day labelled back from today", func(t *testing.T) {
		got := texts(elems)
		for _, want := range []string{"Nov 30", "Nov 25", "Nov 20", "Nov 15", "Nov 10", "Nov 5"} {
			if !slices.Contains(got, want) {
				t.Errorf("no x label %q in %q", want, got)
			}
		}
		for _, unwanted := range []string{"Nov 1", "Nov 29", "Nov 27"} {
			if slices.Contains(got, unwanted) {
				t.Errorf("x label %q should not be drawn", unwanted)
			}
		}
	})
	t.Run("one bar per non-zero number", func(t *testing.T) {
		fills := map[string]int{}
		for _, e := range elems {
			if e.Name == "rect" && e.Attrs["fill"] != "currentColor" {
				fills[e.Attrs["fill"]]++
			}
		}
		// One legend swatch each, plus a bar on each day with a number.
		want := map[string]int{"#0072B2": 1 + 3, "#D55E00": 1 + 3, "#009E73": 1 + 3, "#CC79A7": 1 + 2}
		if !maps.Equal(fills, want) {
			t.Errorf("bars by colour = %v, want %v", fills, want)
		}
	})
	t.Run("a column per day with its numbers as tooltip", func(t *testing.T) {
		var titles []string
		for _, e := range elems {
			if e.Name == "title" {
				titles = append(titles, e.Text)
			}
		}
		if len(titles) != 30 {
			t.Fatalf("%d day tooltips, want 30", len(titles))
		}
		if want := "Wed, Nov 27: Guests created 1,227, Save requested 204, Saved 122, Sign-in merges 5"; titles[26] != want {
			t.Errorf("Nov 27 tooltip = %q, want %q", titles[26], want)
		}
	})
}

func TestFunnelChartTable(t *testing.T) {
	page := renderFunnel(t, testFunnel())
	table := between(t, page, "<table", "</table>")

	if caption := between(t, table, "<caption", "</caption>"); !strings.Contains(caption, "last 30 days") {
		t.Errorf("caption = %q", caption)
	}
	for _, col := range []string{"Day", "Guests created", "Save requested", "Saved", "Sign-in merges"} {
		if !strings.Contains(table, `<th scope="col"`) || !strings.Contains(table, ">"+col+"</th>") {
			t.Errorf("no column header %q", col)
		}
	}
	if !strings.Contains(page, `role="region" aria-labelledby="funnel-caption" tabindex="0"`) {
		t.Error("the scrolling table box is not a focusable, named region")
	}
	rows := strings.Split(between(t, table, "<tbody>", "</tbody>"), "<tr>")[1:]
	if len(rows) != 30 {
		t.Fatalf("%d rows, want 30", len(rows))
	}
	for i, want := range map[int]struct {
		date  string
		cells []string
	}{
		0:  {`datetime="2024-11-30">Sat, Nov 30`, []string{"75", "12", "8", "11"}},
		3:  {`datetime="2024-11-27">Wed, Nov 27`, []string{"1,227", "204", "122", "5"}},
		10: {`datetime="2024-11-20">Wed, Nov 20`, []string{"0", "0", "0", "0"}},
		29: {`datetime="2024-11-01">Fri, Nov 1`, []string{"12", "3", "1", "0"}},
	} {
		if !strings.Contains(rows[i], want.date) {
			t.Errorf("row %d = %s, want %s", i, rows[i], want.date)
		}
		if got := cells(rows[i]); !slices.Equal(got, want.cells) {
			t.Errorf("row %d cells = %q, want %q", i, got, want.cells)
		}
	}
	totals := between(t, table, "<tfoot>", "</tfoot>")
	if got, want := cells(totals), []string{"5,038", "933", "548", "184"}; !strings.Contains(totals, ">Total</th>") || !slices.Equal(got, want) {
		t.Errorf("totals row = %s, want cells %q", totals, want)
	}

	text := regexp.MustCompile(`<[^>]+>`).ReplaceAllString(page, "")
	for _, want := range []string{
		"Conversion: 10.9% of guests saved their account",
		"Median time from guest to saved: 2 h 15 min",
	} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
			t.Errorf("no %q in the page text", want)
		}
	}
}

func TestFunnelChartWithoutData(t *testing.T) {
	f := models.Funnel{}
	first := time.Date(2024, time.November, 1, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		f.Days = append(f.Days, models.FunnelDay{Day: first.AddDate(0, 0, i)})
	}
	f.Totals.Day = first
	page := renderFunnel(t, f)
	elems := parseSVG(t, page)

	for _, e := range elems {
		if e.Name == "rect" && e.Attrs["height"] != "13" && e.Attrs["fill"] != "currentColor" {
			t.Errorf("a bar is drawn without data: %v", e.Attrs)
		}
	}
	if got := texts(elems); !slices.Contains(got, "0") || !slices.Contains(got, "1") {
		t.Errorf("y axis of an empty chart = %q, want 0 to 1", got)
	}
	text := strings.Join(strings.Fields(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(page, "")), " ")
	for _, want := range []string{"Conversion: —", "Median time from guest to saved: —"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the page text", want)
		}
	}
	if strings.Contains(text, "NaN") || strings.Contains(text, "Inf") {
		t.Error("empty funnel shows NaN or Inf")
	}
}

func TestFunnelScale(t *testing.T) {
	for _, tc := range []struct{ high, top, step int }{
		{0, 1, 1}, {1, 1, 1}, {3, 3, 1}, {5, 5, 1}, {6, 6, 2}, {9, 10, 2}, {11, 15, 5},
		{24, 25, 5}, {26, 30, 10}, {99, 100, 20}, {213, 250, 50}, {1227, 1500, 500}, {5038, 6000, 2000},
	} {
		if top, step := funnelScale(tc.high); top != tc.top || step != tc.step {
			t.Errorf("funnelScale(%d) = %d, %d; want %d, %d", tc.high, top, step, tc.top, tc.step)
		}
	}
}

func TestFunnelFormats(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 12345: "12,345", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := funnelCount(n); got != want {
			t.Errorf("funnelCount(%d) = %q, want %q", n, got, want)
		}
	}
	for rate, want := range map[float64]string{0: "0.0%", 0.123: "12.3%", 2.0 / 6: "33.3%", 1: "100.0%"} {
		if got := funnelPercent(rate); got != want {
			t.Errorf("funnelPercent(%v) = %q, want %q", rate, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0:                                     "0 s",
		45 * time.Second:                      "45 s",
		59*time.Second + 600*time.Millisecond: "1 min",
		12*time.Minute + 20*time.Second:       "12 min",
		time.Hour:                             "1 h",
		2*time.Hour + 15*time.Minute:          "2 h 15 min",
		23*time.Hour + 59*time.Minute + 40*time.Second: "1 d",
		50 * time.Hour: "2 d 2 h",
	} {
		if got := funnelDuration(d); got != want {
			t.Errorf("funnelDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
