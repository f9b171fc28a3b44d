package memory_test

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/cache/memory"
)

func Example() {
	s, err := memory.New(memory.Options{MaxBytes: 64 << 20, MaxObjectBytes: 1 << 20})
	if err != nil {
		panic(err)
	}
	meta := &cache.Meta{RequestTime: time.Now(), ResponseTime: time.Now(), Size: -1}
	meta.Response.Status = 200
	meta.Response.Header.Add("Content-Type", "text/plain")

	w, err := s.Create("GET https://example.com/hello", meta)
	if err != nil {
		panic(err)
	}
	io.WriteString(w, "hello, ")
	io.WriteString(w, "world")
	if err := w.Commit(); err != nil {
		panic(err)
	}

	o, err := s.Lookup("GET https://example.com/hello")
	if err != nil {
		panic(err)
	}
	defer o.Close()
	fmt.Println(o.Meta().Response.Status, o.Meta().Size, string(o.(cache.BytesObject).Bytes()))

	_, err = s.Lookup("GET https://example.com/other")
	fmt.Println(errors.Is(err, cache.ErrNotFound))
	st := s.Stats()
	fmt.Println(st.Objects, st.Hits, st.Misses)
	// Output:
	// 200 12 hello, world
	// true
	// 1 1 1
}
