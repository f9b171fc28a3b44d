package accesslog_test

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/accesslog"
)

// The lines of one request in both formats. A proxy service calls RequestEnd itself;
// here the request is built by hand.
func Example() {
	var h message.Header
	h.Add("User-Agent", `curl/8.11.0 "quoted"`)
	start := time.Date(2026, 12, 6, 21, 4, 5, 123e6, time.UTC)
	r := &observe.Request{
		Service: "gateway", Proto: "HTTP/1.1", Method: "GET", Target: "/hello?x=1",
		Host: "example.com", Client: "192.0.2.7", Header: &h, Start: start,
		End: start.Add(1500 * time.Microsecond), Status: 200, BytesSent: 12,
		Attempts: 1, Upstream: "127.0.0.1:8080", UpstreamStatus: 200,
		FirstByte: start.Add(time.Millisecond),
	}
	for _, f := range []accesslog.Format{accesslog.Combined, accesslog.JSON} {
		l, err := accesslog.New(accesslog.Options{Writer: os.Stdout, Format: f, Location: time.UTC})
		if err != nil {
			panic(err)
		}
		l.RequestEnd(r)
		if err := l.Close(); err != nil { // writes the buffered line
			panic(err)
		}
	}
	// Output:
	// 192.0.2.7 - - [06/Dec/2026:21:04:05 +0000] "GET /hello?x=1 HTTP/1.1" 200 12 "-" "curl/8.11.0 \x22quoted\x22"
	// {"time":"2026-12-06T21:04:05.123Z","service":"gateway","client":"192.0.2.7","method":"GET","target":"/hello?x=1","proto":"HTTP/1.1","host":"example.com","status":200,"upstream_status":200,"upstream":"127.0.0.1:8080","bytes_sent":12,"bytes_received":0,"duration_ms":1.500,"ttfb_ms":1.000,"attempts":1,"reused":false,"cache":"","error":"","error_type":"","user_agent":"curl/8.11.0 \"quoted\"","referer":""}
}

// A format chosen on the command line.
func ExampleParseFormat() {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	format := fs.String("access-log-format", "combined", `"combined" or "json"`)
	if err := fs.Parse([]string{"-access-log-format", "json"}); err != nil {
		panic(err)
	}
	f, err := accesslog.ParseFormat(*format)
	fmt.Println(f, err)
	_, err = accesslog.ParseFormat("common")
	fmt.Println(err)
	// Output:
	// json <nil>
	// accesslog: unknown format "common" (want "combined" or "json")
}
