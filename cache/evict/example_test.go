package evict_test

import (
	"fmt"

	"github.com/gotthard-proxy/gotthard/cache/evict"
)

func Example() {
	c, err := evict.New(evict.Options[string, string]{
		Capacity: 10, // bytes
		OnEvict: func(key, value string, cause evict.Cause) {
			fmt.Println(cause, key)
		},
	})
	if err != nil {
		panic(err)
	}
	c.Set("/a", "aaaa", 4)
	c.Set("/b", "bbbbbb", 6)
	v, ok := c.Get("/a")
	fmt.Println(v, ok, c.Len(), c.Weight())

	c.Set("/a", "AA", 2) // replaces the value
	c.Remove("/b")
	fmt.Println(c.Set("/big", "0123456789X", 11)) // heavier than the capacity
	// Output:
	// aaaa true 2 10
	// replaced /a
	// removed /b
	// false
}
