package proxy

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// A 200 to a HEAD request refreshes the stale stored GET response it describes (RFC
// 9111 §4.3.5): the next GET is a hit on the stored body with the new freshness. One
// whose ETag differs shows the stored response gone out of date: it is removed, and the
// next GET goes to the origin.
func TestCacheHEADFreshens(t *testing.T) {
	for _, tc := range []struct {
		name     string
		headETag string
		want     string // the cache statuses, sorted
		gets     int32  // GETs the origin sees
	}{
		{"same response", `"v1"`, "expired hit miss", 1},
		{"changed", `"v2"`, "expired miss miss", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gets, heads atomic.Int32
			_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "HEAD" {
					heads.Add(1)
					w.Header().Set("Cache-Control", "max-age=60")
					w.Header().Set("ETag", tc.headETag)
					w.Header().Set("Content-Length", "7")
					return
				}
				// The first GET's response is stored stale (max-age=0); the second is
				// fresh for a minute.
				n := gets.Add(1)
				if n == 1 {
					w.Header().Set("Cache-Control", "max-age=0")
				} else {
					w.Header().Set("Cache-Control", "max-age=60")
				}
				w.Header().Set("ETag", `"v1"`)
				w.Write([]byte("stored!"))
			}))
			app, addr := startCacheProxy(t, origin, 0)
			c := testClient(t)
			if resp, body := cacheGet(t, c, "GET", "http://"+addr+"/a"); resp.StatusCode != 200 || body != "stored!" {
				t.Fatalf("GET: %d %q", resp.StatusCode, body)
			}
			resp, _ := cacheGet(t, c, "HEAD", "http://"+addr+"/a")
			if resp.StatusCode != 200 || resp.Header.Get("ETag") != tc.headETag {
				t.Fatalf("HEAD: %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
			}
			if resp, body := cacheGet(t, c, "GET", "http://"+addr+"/a"); resp.StatusCode != 200 || body != "stored!" {
				t.Fatalf("GET after HEAD: %d %q", resp.StatusCode, body)
			}
			if n := gets.Load(); n != tc.gets || heads.Load() != 1 {
				t.Errorf("origin saw %d GETs and %d HEADs, want %d and 1", n, heads.Load(), tc.gets)
			}
			if got := app.statuses(t, 3); got != tc.want {
				t.Errorf("statuses %q, want %q", got, tc.want)
			}
		})
	}
}
