package cache

import (
	"testing"
	"time"
	"unsafe"
)

// TestMetaOverhead: MetaOverhead covers a Meta and its memo, each in its size class.
func TestMetaOverhead(t *testing.T) {
	classes := []uintptr{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384}
	class := func(n uintptr) uintptr {
		for _, c := range classes {
			if n <= c {
				return c
			}
		}
		t.Fatalf("%d bytes: no small size class", n)
		return 0
	}
	if got := class(unsafe.Sizeof(Meta{})) + class(unsafe.Sizeof(metaMemo{})); got > MetaOverhead {
		t.Errorf("a Meta and its memo take %d bytes, MetaOverhead is %d", got, MetaOverhead)
	}
}

// TestMetaMemo: what is derived from a head is computed once, and a head a 304 updates
// is derived anew.
func TestMetaMemo(t *testing.T) {
	m := stored(t, 200, "Date: "+t0.Format(time.RFC1123), "Cache-Control: max-age=60", "Age: 10", `ETag: "a"`)
	if CurrentAge(m, t0) != 10*time.Second || m.memo.Load() == nil {
		t.Fatalf("age %v, memo %v", CurrentAge(m, t0), m.memo.Load())
	}
	d := m.memo.Load()
	if m.derived() != d {
		t.Error("derived again")
	}
	Update304(m, newResp(t, 304, "Cache-Control: max-age=120", "Age: 30"), t0, t0)
	if m.memo.Load() != nil {
		t.Fatal("the memo outlived a 304's update")
	}
	if got := CurrentAge(m, t0); got != 30*time.Second {
		t.Errorf("age after the update %v, want 30s", got)
	}
	if cc := m.derived().cc; cc.MaxAge.Seconds != 120 {
		t.Errorf("max-age after the update %d, want 120", cc.MaxAge.Seconds)
	}
}
