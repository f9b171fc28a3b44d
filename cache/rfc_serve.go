package cache

import (
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// ServeHeader makes dst the head of the stored response meta served from the cache at
// now: a copy of meta.Response without the fields that must not be sent from storage
// (hop-by-hop fields, the ones Connection lists, and those a qualified no-cache or
// private names, RFC 9111 §3.1, §5.2.2.4, §5.2.2.7: they are normally stripped when
// storing, and are stripped again in case a store was filled otherwise), with Age set
// to the current age in seconds (§5.1, §4.2.3), and Content-Length set to the stored
// body's size when meta.Size is known and the status allows one (a stored chunked
// response has none). dst's storage is reused; it allocates nothing once dst has
// grown, except to format an Age of 100 seconds or more, or a Content-Length the
// stored head did not already hold.
func ServeHeader(dst *message.ResponseHeader, meta *Meta, now time.Time) {
	dst.CopyFrom(&meta.Response)
	if d := meta.derived(); !d.clean {
		cc := ParseCacheControl(&dst.Header)
		stripUnstorable(&dst.Header, &cc)
	}
	dst.Header.Set("Age", ageValue(CurrentAge(meta, now)))
	if meta.Size >= 0 && dst.Status >= 200 && dst.Status != 204 && dst.Status != 304 {
		v, lines := "", 0
		for _, f := range dst.Header.Fields() {
			if message.EqualFold(f.Name, "Content-Length") {
				v, lines = f.Value, lines+1
			}
		}
		if n, ok := parsePos(trimOWS(v)); !ok || n != meta.Size || lines != 1 {
			dst.Header.Set("Content-Length", strconv.FormatInt(meta.Size, 10))
		}
	}
}
