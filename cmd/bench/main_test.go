package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// wrkReport is wrk 4.1's output for a run that met errors.
const wrkReport = `Running 2s test @ http://127.0.0.1:18999/nonexistent
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.93ms    2.45ms  38.04ms   98.43%
    Req/Sec     1.09k   283.87     1.60k    62.50%
  Latency Distribution
     50%  812.00us
     75%    2.97ms
     90%    3.46ms
     99%    1.02s
  4336 requests in 2.00s, 2.15MB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 4336
Requests/sec:   2165.25
Transfer/sec:      1.07MB
`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk([]byte(wrkReport))
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{
		requests: 4336, rps: 2165.25, p50: 0.812, p99: 1020, non2xx: 4336,
		socketErrors: "connect 0, read 2, write 0, timeout 7",
	}
	if got.requests != want.requests || got.non2xx != want.non2xx || got.socketErrors != want.socketErrors ||
		!near(got.rps, want.rps) || !near(got.p50, want.p50) || !near(got.p99, want.p99) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseWrkIncomplete(t *testing.T) {
	if _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1 Connection refused\n")); err == nil {
		t.Error("no error for a report without results")
	}
}

func TestMillis(t *testing.T) {
	for in, want := range map[string]float64{"812.00us": 0.812, "1.23ms": 1.23, "2.01s": 2010, "1.50m": 90000} {
		got, err := millis(in)
		if err != nil || !near(got, want) {
			t.Errorf("millis(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := millis("12.0xs"); err == nil {
		t.Error("millis(12.0xs): no error")
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestReportFlagsErrorResponses(t *testing.T) {
	results := []result{
		{scenario: scenario{name: "real", server: true, baseline: "base"},
			wrk: wrkResult{requests: 100, rps: 40, non2xx: 3}, mem: memory{rss: 30 << 20, peak: 32 << 20}},
		{scenario: scenario{name: "base"}, wrk: wrkResult{requests: 1000, rps: 100}},
	}
	var out strings.Builder
	report(&out, options{duration: 10 * time.Second, warmup: 2 * time.Second}, wrk{threads: 2, connections: 32},
		page{body: []byte("<html>"), contentType: "text/html"}, results, logSummary{lines: 1100})
	for _, want := range []string{
		"| real | 40 | 0.00 | 0.00 | 100 requests, **3 NON-2XX/3XX** |",
		"ratio real/baseline: 0.40 (target ≥ 0.5) BELOW TARGET",
		"server RSS after load: 30 MiB (peak 32 MiB)",
		"WARNING: real got 3 error responses",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if err := failures(results); err == nil {
		t.Error("failures: nil for a run with error responses")
	}
}
