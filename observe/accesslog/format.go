package accesslog

import (
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// Time layouts: the common log format's [%d/%b/%Y:%H:%M:%S %z], and RFC 3339 with
// milliseconds. appendCLFTime and appendJSONTime write them by hand, several times
// faster than time.Time.AppendFormat (which the tests compare them with).
const (
	clfTime  = "02/Jan/2006:15:04:05 -0700"
	jsonTime = "2006-01-02T15:04:05.000Z07:00"
)

// appendCLFTime appends t as time.Time.AppendFormat(b, clfTime) does.
func appendCLFTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, clfTime)
	}
	hour, minute, sec := t.Clock()
	_, off := t.Zone()
	b = append2(b, day)
	b = append(b, '/')
	b = append(b, month.String()[:3]...)
	b = append(b, '/')
	b = append4(b, year)
	b = append(b, ':')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, ' ')
	return appendOffset(b, off, false)
}

// appendJSONTime appends t as time.Time.AppendFormat(b, jsonTime) does.
func appendJSONTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, jsonTime)
	}
	hour, minute, sec := t.Clock()
	_, off := t.Zone()
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	ms := t.Nanosecond() / 1e6
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	if off == 0 {
		return append(b, 'Z')
	}
	return appendOffset(b, off, true)
}

// appendOffset appends the zone offset off (seconds east of UTC) as -0700, or as
// -07:00 if colon; the seconds of an offset are dropped, as AppendFormat drops them.
func appendOffset(b []byte, off int, colon bool) []byte {
	zone, sign := off/60, byte('+') // in minutes
	if zone < 0 {
		zone, sign = -zone, '-'
	}
	b = append(b, sign)
	b = append2(b, zone/60)
	if colon {
		b = append(b, ':')
	}
	return append2(b, zone%60)
}

// append2 appends n (0 to 99) as two digits.
func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// append4 appends n (0 to 9999) as four digits.
func append4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

const (
	hexUpper = "0123456789ABCDEF"
	hexLower = "0123456789abcdef"
)

// stamps writes a logger's time stamps: in its Location, and from a copy of the text
// of the last second a stamp was written for, since most lines of a busy log fall in the
// same second as the one before (a zone's offset changes only at whole seconds). Safe
// for concurrent use.
type stamps struct {
	loc  *time.Location
	last atomic.Pointer[stamp]
}

// maxStamp is the longest stamp text: jsonTime's with a zone offset.
const maxStamp = 32

// stamp is the text of one second's stamp, whole: for JSON with the milliseconds as
// "000", which the writer patches (at jsonMillis).
type stamp struct {
	sec  int64
	text [maxStamp]byte
	n    int // the length of the text
}

// jsonMillis is the index of the milliseconds in a JSON stamp ("2006-01-02T15:04:05.").
const jsonMillis = 20

// maxTime is the room a line keeps for its time: a stamp, or time.Time.AppendFormat's
// text for a year the stamps cannot write (at most 37 bytes, for year -292277022657).
const maxTime = 64

func newStamps(loc *time.Location) *stamps { return &stamps{loc: loc} }

// current returns the stamp of t's second in format f, making it if the last one is
// of another second (or nil for a year the layouts cannot write).
func (s *stamps) current(f Format, t time.Time) *stamp {
	sec := t.Unix()
	if st := s.last.Load(); st != nil && st.sec == sec {
		return st
	}
	t = t.In(s.loc)
	if y := t.Year(); y < 0 || y > 9999 {
		return nil
	}
	st := &stamp{sec: sec}
	var text []byte
	if f == JSON {
		text = appendJSONTime(st.text[:0], t.Truncate(time.Second))
	} else {
		text = appendCLFTime(st.text[:0], t)
	}
	st.n = len(text)
	s.last.Store(st)
	return st
}

// putJSON writes t as appendJSONTime(b, t.In(s.loc)) does to d at i, and returns the
// index after it; d has room for maxTime bytes from i.
func (s *stamps) putJSON(d []byte, i int, t time.Time) int {
	st := s.current(JSON, t)
	if st == nil {
		return putFormat(d, i, t.In(s.loc), jsonTime)
	}
	*(*[maxStamp]byte)(d[i:]) = st.text
	ms := uint(t.Nanosecond()) / 1e6
	q, r := ms/100, ms%100*2
	d[i+jsonMillis], d[i+jsonMillis+1], d[i+jsonMillis+2] = byte('0'+q), digitPairs[r], digitPairs[r+1]
	return i + st.n
}

// putCLF writes t as appendCLFTime(b, t.In(s.loc)) does to d at i, and returns the
// index after it; d has room for maxTime bytes from i.
func (s *stamps) putCLF(d []byte, i int, t time.Time) int {
	st := s.current(Combined, t)
	if st == nil {
		return putFormat(d, i, t.In(s.loc), clfTime)
	}
	*(*[maxStamp]byte)(d[i:]) = st.text
	return i + st.n
}

// putFormat writes t.AppendFormat(layout) to d at i (in place: d has room for
// maxTime bytes from i), and returns the index after it.
func putFormat(d []byte, i int, t time.Time, layout string) int {
	text := t.AppendFormat(d[i:i:i+maxTime], layout)
	return i + copy(d[i:], text) // a copy onto itself, unless the text outgrew maxTime
}

// appendJSON appends t as appendJSONTime(b, t.In(s.loc)) does.
func (s *stamps) appendJSON(b []byte, t time.Time) []byte {
	n := len(b)
	d := grow(b, maxTime)
	return d[:s.putJSON(d, n, t)]
}

// appendCLF appends t as appendCLFTime(b, t.In(s.loc)) does.
func (s *stamps) appendCLF(b []byte, t time.Time) []byte {
	n := len(b)
	d := grow(b, maxTime)
	return d[:s.putCLF(d, n, t)]
}

// appendLine appends r's line in format f, newline included, to b; st is the
// logger's, whose format is always f.
func appendLine(b []byte, f Format, r *observe.Request, st *stamps) []byte {
	if f == JSON {
		return appendJSON(b, r, st)
	}
	return appendCombined(b, r, st)
}

// header returns the value of r's first field named name, or "".
func header(r *observe.Request, name string) string {
	if r.Header == nil {
		return ""
	}
	return r.Header.Get(name)
}

// put writes s to d at i and returns the index after it. With a constant s (the
// lines' keys and punctuation), the compiler turns the copy into a few stores.
func put(d []byte, i int, s string) int {
	copy(d[i:i+len(s)], s)
	return i + len(s)
}

// maxInt is the room a line keeps for an integer: 19 digits and a sign.
const maxInt = 20

// maxMillis is the room a line keeps for a duration in milliseconds.
const maxMillis = maxInt + len(".000")

// The fixed text of a combined line, between its fields.
const (
	clfUser    = " - - ["
	clfRequest = `] "`
	clfStatus  = `" `
	clfReferer = ` "`
	clfAgent   = `" "`
	clfEnd     = "\"\n"
)

// combinedFixed is the room a combined line keeps for all but its strings: its fixed
// text, the time, the status and the bytes (or their "-"), the two spaces of the
// request line (or its "-"), and the "-" of an empty client, Referer and User-Agent.
const combinedFixed = len(clfUser+clfRequest+clfStatus+clfReferer+clfAgent+clfEnd) +
	maxTime + 2*maxInt + 2 + 3 + slack

// appendCombined appends r in the combined log format.
func appendCombined(b []byte, r *observe.Request, st *stamps) []byte {
	ref, ua := header(r, "Referer"), header(r, "User-Agent")
	strs := len(r.Client) + len(r.Method) + len(r.Target) + len(r.Proto) + len(ref) + len(ua)
	need := combinedFixed + combinedPerByte*strs
	if need > maxPooledLine && cap(b)-len(b) < need { // (see appendJSON)
		need = combinedFixed + escapedLen(r.Client, combinedPerByte) +
			escapedLen(r.Method, combinedPerByte) + escapedLen(r.Target, combinedPerByte) +
			escapedLen(r.Proto, combinedPerByte) + escapedLen(ref, combinedPerByte) +
			escapedLen(ua, combinedPerByte)
	}
	i := len(b)
	d := grow(b, need)
	i = putCLFField(d, i, r.Client)
	i = put(d, i, clfUser)
	i = st.putCLF(d, i, r.Start)
	i = put(d, i, clfRequest)
	if r.Method == "" && r.Target == "" && r.Proto == "" {
		d[i] = '-'
		i++
	} else {
		i = putCombined(d, i, r.Method)
		d[i] = ' '
		i = putCombined(d, i+1, r.Target)
		d[i] = ' '
		i = putCombined(d, i+1, r.Proto)
	}
	i = put(d, i, clfStatus)
	i = putPositive(d, i, int64(r.Status))
	d[i] = ' '
	i = putPositive(d, i+1, r.BytesSent) // "-" for no bytes, as Apache's %b writes it
	i = put(d, i, clfReferer)
	i = putCLFField(d, i, ref)
	i = put(d, i, clfAgent)
	i = putCLFField(d, i, ua)
	i = put(d, i, clfEnd)
	return d[:i]
}

// putCLFField writes s escaped as [appendEscaped] does, or "-" if s is empty.
func putCLFField(d []byte, i int, s string) int {
	if s == "" {
		d[i] = '-'
		return i + 1
	}
	return putCombined(d, i, s)
}

// putPositive writes n in decimal, or "-" if n is not positive.
func putPositive(d []byte, i int, n int64) int {
	if n <= 0 {
		d[i] = '-'
		return i + 1
	}
	return putInt(d, i, n)
}

// The fixed text of a JSON line: each key with the punctuation around it. A string
// value's quotes are part of the keys around it.
const (
	jsonTimeKey       = `{"time":"`
	jsonService       = `","service":"`
	jsonClient        = `","client":"`
	jsonMethod        = `","method":"`
	jsonTarget        = `","target":"`
	jsonProto         = `","proto":"`
	jsonHost          = `","host":"`
	jsonStatus        = `","status":`
	jsonUpStatus      = `,"upstream_status":`
	jsonUpstream      = `,"upstream":"`
	jsonBytesSent     = `","bytes_sent":`
	jsonBytesReceived = `,"bytes_received":`
	jsonDuration      = `,"duration_ms":`
	jsonTTFB          = `,"ttfb_ms":`
	jsonAttempts      = `,"attempts":`
	jsonReusedTrue    = `,"reused":true,"cache":"`
	jsonReusedFalse   = `,"reused":false,"cache":"`
	jsonError         = `","error":"`
	jsonErrorType     = `","error_type":"`
	jsonUserAgent     = `","user_agent":"`
	jsonReferer       = `","referer":"`
	jsonEnd           = "\"}\n"
)

// jsonKeys is the fixed text of a JSON line but its end, as keys to write with put.
// Read-only.
var jsonKeys = struct {
	time, service, client, method, target, proto, host, status, upstream, bytesSent,
	duration, ttfb, attempts, error, errorType, userAgent, referer key16
	upStatus, bytesReceived, reusedTrue, reusedFalse key32
}{
	time: newKey16(jsonTimeKey), service: newKey16(jsonService), client: newKey16(jsonClient),
	method: newKey16(jsonMethod), target: newKey16(jsonTarget), proto: newKey16(jsonProto),
	host: newKey16(jsonHost), status: newKey16(jsonStatus), upstream: newKey16(jsonUpstream),
	bytesSent: newKey16(jsonBytesSent), duration: newKey16(jsonDuration), ttfb: newKey16(jsonTTFB),
	attempts: newKey16(jsonAttempts), error: newKey16(jsonError), errorType: newKey16(jsonErrorType),
	userAgent: newKey16(jsonUserAgent), referer: newKey16(jsonReferer),
	upStatus: newKey32(jsonUpStatus), bytesReceived: newKey32(jsonBytesReceived),
	reusedTrue: newKey32(jsonReusedTrue), reusedFalse: newKey32(jsonReusedFalse),
}

// jsonFixed is the room a JSON line keeps for all but its strings: its fixed text,
// the time and the numbers.
const jsonFixed = len(jsonTimeKey+jsonService+jsonClient+jsonMethod+jsonTarget+jsonProto+
	jsonHost+jsonStatus+jsonUpStatus+jsonUpstream+jsonBytesSent+jsonBytesReceived+
	jsonDuration+jsonTTFB+jsonAttempts+jsonReusedFalse+jsonError+jsonErrorType+
	jsonUserAgent+jsonReferer+jsonEnd) +
	maxTime + 5*maxInt + 2*maxMillis + slack

// appendJSON appends r as one JSON object.
func appendJSON(b []byte, r *observe.Request, st *stamps) []byte {
	ua, ref := header(r, "User-Agent"), header(r, "Referer")
	var errText string
	if r.Err != nil {
		errText = r.Err.Error()
	}
	strs := len(r.Service) + len(r.Client) + len(r.Method) + len(r.Target) + len(r.Proto) +
		len(r.Host) + len(r.Upstream) + len(r.Cache) + len(errText) + len(r.ErrType) +
		len(ua) + len(ref)
	need := jsonFixed + jsonPerByte*strs
	if need > maxPooledLine && cap(b)-len(b) < need {
		// A long line: bounded by its bytes to escape rather than six times its
		// strings, so that its buffer grows to about its length, and can go back to
		// the pool (unless the line is longer than maxPooledLine itself).
		need = jsonFixed + escapedLen(r.Service, jsonPerByte) + escapedLen(r.Client, jsonPerByte) +
			escapedLen(r.Method, jsonPerByte) + escapedLen(r.Target, jsonPerByte) +
			escapedLen(r.Proto, jsonPerByte) + escapedLen(r.Host, jsonPerByte) +
			escapedLen(r.Upstream, jsonPerByte) + escapedLen(r.Cache, jsonPerByte) +
			escapedLen(errText, jsonPerByte) + escapedLen(r.ErrType, jsonPerByte) +
			escapedLen(ua, jsonPerByte) + escapedLen(ref, jsonPerByte)
	}
	i := len(b)
	d := grow(b, need)
	k := &jsonKeys
	i = k.time.put(d, i)
	i = st.putJSON(d, i, r.Start)
	i = k.service.put(d, i)
	i = putJSON(d, i, r.Service)
	i = k.client.put(d, i)
	i = putJSON(d, i, r.Client)
	i = k.method.put(d, i)
	i = putJSON(d, i, r.Method)
	i = k.target.put(d, i)
	i = putJSON(d, i, r.Target)
	i = k.proto.put(d, i)
	i = putJSON(d, i, r.Proto)
	i = k.host.put(d, i)
	i = putJSON(d, i, r.Host)
	i = k.status.put(d, i)
	i = putInt(d, i, int64(r.Status))
	i = k.upStatus.put(d, i)
	i = putInt(d, i, int64(r.UpstreamStatus))
	i = k.upstream.put(d, i)
	i = putJSON(d, i, r.Upstream)
	i = k.bytesSent.put(d, i)
	i = putInt(d, i, r.BytesSent)
	i = k.bytesReceived.put(d, i)
	i = putInt(d, i, r.BytesReceived)
	i = k.duration.put(d, i)
	i = putMillis(d, i, r.Duration())
	i = k.ttfb.put(d, i)
	i = putMillis(d, i, r.TTFB())
	i = k.attempts.put(d, i)
	i = putInt(d, i, int64(r.Attempts))
	if r.Reused {
		i = k.reusedTrue.put(d, i)
	} else {
		i = k.reusedFalse.put(d, i)
	}
	i = putJSON(d, i, r.Cache)
	i = k.error.put(d, i)
	i = putJSON(d, i, errText)
	i = k.errorType.put(d, i)
	i = putJSON(d, i, r.ErrType)
	i = k.userAgent.put(d, i)
	i = putJSON(d, i, ua)
	i = k.referer.put(d, i)
	i = putJSON(d, i, ref)
	i = put(d, i, jsonEnd) // (checked: the line's end, where a key's padding has no room)
	return d[:i]
}

// putMillis writes d as a number of milliseconds with three decimals (0 for a
// negative d), without floating point.
func putMillis(b []byte, i int, d time.Duration) int {
	us := uint64(max(d.Microseconds(), 0))
	i = putInt(b, i, int64(us/1000))
	frac := us % 1000
	q, r := frac/100, frac%100*2
	b[i], b[i+1], b[i+2], b[i+3] = '.', byte('0'+q), digitPairs[r], digitPairs[r+1]
	return i + 4
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// putInt writes n in decimal to d at i, as strconv.AppendInt(b, n, 10) does, and
// returns the index after it. A single digit, as many numbers of a line are (attempts,
// the whole milliseconds of a fast request, the bytes of a GET's body), costs no call.
func putInt(d []byte, i int, n int64) int {
	if uint64(n) < 10 { // (a negative n is above it)
		d[i] = byte('0' + n)
		return i + 1
	}
	return putDigits(d, i, n)
}

// putDigits is putInt for the numbers below 0 or above 9.
func putDigits(d []byte, i int, n int64) int {
	switch u := uint64(n); { // (a negative n is above them all)
	case u < 100:
		d[i], d[i+1] = digitPairs[2*u], digitPairs[2*u+1]
		return i + 2
	case u < 1000: // a status
		q, r := u/100, u%100*2
		d[i], d[i+1], d[i+2] = byte('0'+q), digitPairs[r], digitPairs[r+1]
		return i + 3
	case u < 10000:
		q, r := u/100*2, u%100*2
		d[i], d[i+1], d[i+2], d[i+3] = digitPairs[q], digitPairs[q+1], digitPairs[r], digitPairs[r+1]
		return i + 4
	}
	return putLong(d, i, n)
}

// putLong is putInt for the numbers below 0 or above 9999.
func putLong(d []byte, i int, n int64) int {
	u := uint64(n)
	if n < 0 {
		d[i] = '-'
		i, u = i+1, -u
	}
	digits := 1
	for p := uint64(10); digits < 20 && u >= p; p *= 10 {
		digits++
	}
	j := i + digits
	for u >= 100 {
		r := u % 100 * 2
		u /= 100
		j -= 2
		d[j], d[j+1] = digitPairs[r], digitPairs[r+1]
	}
	if u >= 10 {
		d[j-2], d[j-1] = digitPairs[2*u], digitPairs[2*u+1]
	} else {
		d[j-1] = byte('0' + u)
	}
	return i + digits
}
