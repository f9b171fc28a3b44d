package h1_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/gotthard-proxy/gotthard/internal/h1"
)

func Example() {
	conn := strings.NewReader("POST /echo HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n")
	var out bytes.Buffer
	pool := h1.NewBufPool(0)
	r := h1.NewReader(conn, pool, h1.Limits{})
	w := h1.NewWriter(&out, pool)

	var req h1.RequestHead
	if err := r.ReadRequestHead(&req); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %s host=%s body=%v\n", req.Method, req.Target, req.Host, req.Body)

	w.WriteStatusLine(1, 200, "")
	w.WriteField("Transfer-Encoding", "chunked")
	w.EndHead()
	w.StartBody(h1.BodyChunked, 0)
	for {
		p, err := r.ReadBody()
		w.WriteBody(p)
		if err == io.EOF {
			break
		} else if err != nil {
			fmt.Println(err)
			return
		}
	}
	w.FinishBody(nil)
	if err := w.Flush(); err != nil {
		fmt.Println(err)
		return
	}
	r.Release()
	w.Release()
	fmt.Printf("%q\n", out.String())
	// Output:
	// POST /echo host=example.com body=chunked
	// "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
}

func ExampleParseRequestHead() {
	var h h1.RequestHead
	_, err := h1.ParseRequestHead([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"), &h, nil)
	fmt.Println(err)
	// Output: h1: both Content-Length and Transfer-Encoding (status 400, offset 0)
}
