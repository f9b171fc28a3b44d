package memory

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gotthard-proxy/gotthard/cache"
)

// TestConcurrentSameKey runs writers, 304-style head updates, purges and readers of the
// same few keys at once (run it with -race). Each writer's body is one byte repeated, its
// length and byte named in the head, so a reader can tell a torn or mixed object.
func TestConcurrentSameKey(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 1 << 20, MaxObjectBytes: 64 << 10})
	keys := []string{"a", "b"}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				key := keys[i%len(keys)]
				b := byte('A' + g)
				n := 1 + (i*997+g*131)%(32<<10)
				w, err := s.Create(key, testMeta(200, "X-Byte", string(b), "X-Len", strconv.Itoa(n)))
				if err != nil {
					t.Error(err)
					return
				}
				body := bytes.Repeat([]byte{b}, n)
				for len(body) > 0 {
					k := min(len(body), 1000)
					if _, err := w.Write(body[:k]); err != nil {
						t.Error(err)
						return
					}
					body = body[k:]
				}
				if i%7 == 0 {
					w.Abort()
					continue
				}
				if err := w.Commit(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var updaters sync.WaitGroup
	updaters.Go(func() {
		for i := 0; !stop.Load(); i++ {
			key := keys[i%len(keys)]
			o, err := s.Lookup(key)
			if err != nil {
				continue
			}
			// A revalidation: the same head plus a field.
			m := o.Meta().Clone()
			m.Response.Header.Set("X-Revalidated", strconv.Itoa(i))
			if err := s.UpdateMeta(key, m); err != nil && !errors.Is(err, cache.ErrNotFound) {
				t.Error(err)
			}
			if i%50 == 0 {
				s.Purge(key)
			}
		}
	})
	var readers sync.WaitGroup
	var seen atomic.Int64
	for range 2 {
		readers.Go(func() {
			for i := 0; !stop.Load(); i++ {
				o, err := s.Lookup(keys[i%len(keys)])
				if errors.Is(err, cache.ErrNotFound) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				checkObject(t, o.(cache.BytesObject))
				o.Close()
				seen.Add(1)
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	updaters.Wait()
	readers.Wait()
	for _, key := range keys {
		if o, err := s.Lookup(key); err == nil {
			checkObject(t, o.(cache.BytesObject))
		}
	}
	if seen.Load() == 0 {
		t.Fatal("the readers never found an object")
	}
}

// checkObject fails t unless o's body is one writer's whole body, its sizes agree, and,
// unless a head update may have paired it with another commit's head (UpdateMeta is
// unconditional, as Storage defines it), its head is the one its writer gave.
func checkObject(t *testing.T, o cache.BytesObject) {
	t.Helper()
	h := &o.Meta().Response.Header
	body := o.Bytes()
	b, n := h.Get("X-Byte"), len(body)
	if !h.Has("X-Revalidated") {
		var err error
		if n, err = strconv.Atoi(h.Get("X-Len")); err != nil || len(b) != 1 {
			t.Errorf("bad head %q", h.String())
			return
		}
	} else if len(body) > 0 {
		b = string(body[:1])
	}
	if len(body) != n || o.Size() != int64(n) || o.Meta().Size != int64(n) ||
		!bytes.Equal(body, bytes.Repeat([]byte(b), n)) {
		t.Errorf("torn object: head %q, Size %d, Meta.Size %d, %d body bytes", h.String(), o.Size(), o.Meta().Size, len(body))
	}
}
