package disk_test

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/cache/disk"
)

func Example() {
	dir, err := os.MkdirTemp("", "cache")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	st, err := disk.Open(dir, disk.Options{MaxBytes: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer st.Close()

	const key = "GET https://example.com/hello"
	if _, err := st.Lookup(key); errors.Is(err, cache.ErrNotFound) {
		meta := &cache.Meta{Size: -1}
		meta.Response.Status = 200
		meta.Response.Header.Add("Content-Type", "text/plain")
		w, err := st.Create(key, meta)
		if err != nil {
			panic(err)
		}
		io.WriteString(w, "hello, world\n")
		if err := w.Commit(); err != nil {
			panic(err)
		}
	}

	obj, err := st.Lookup(key)
	if err != nil {
		panic(err)
	}
	defer obj.Close()
	body, _ := io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
	fmt.Print(obj.Meta().Response.Status, " ", obj.Meta().Response.Header.Get("Content-Type"), " ", string(body))
	st2 := st.Stats()
	fmt.Println(st2.Objects, st2.Hits, st2.Misses)
	// Output:
	// 200 text/plain hello, world
	// 1 1 1
}
