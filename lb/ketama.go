package lb

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// ketamaPointsPerWeight is the number of ring points per unit of weight, as in nginx.
const ketamaPointsPerWeight = 160

// ketamaPicker is nginx's consistent hash ring (ngx_http_upstream_hash_module with
// "consistent"): for each backend, weight×160 points whose hashes are chained crc32s
// of "host\x00port" followed by the previous point's hash (4 bytes, little-endian;
// zero for the first). A key maps to the first point at or after crc32(key), wrapping
// around; points with equal hashes keep the first backend in sorted order.
type ketamaPicker[T any] struct {
	hashes []uint32 // sorted
	owners []uint16 // owners[i] is the target index of hashes[i]
	// index[b] is the first point whose hash's top ketamaIndexBits bits are >= b; it
	// narrows the binary search to a few points.
	index [1<<ketamaIndexBits + 1]uint32
}

const ketamaIndexBits = 12

type ketamaPoint struct {
	hash  uint32
	owner uint16
}

func newKetamaPicker[T any](ts []*Target[T]) *ketamaPicker[T] {
	var total int64
	for _, t := range ts {
		total += t.weight
	}
	pts := make([]ketamaPoint, 0, total*ketamaPointsPerWeight)
	for i, t := range ts {
		pts = ketamaPoints(pts, t.backend.Addr, int(t.weight), uint16(i))
	}
	slices.SortStableFunc(pts, func(a, b ketamaPoint) int {
		if a.hash != b.hash {
			if a.hash < b.hash {
				return -1
			}
			return 1
		}
		return int(a.owner) - int(b.owner)
	})
	pts = slices.CompactFunc(pts, func(a, b ketamaPoint) bool { return a.hash == b.hash })
	p := &ketamaPicker[T]{hashes: make([]uint32, len(pts)), owners: make([]uint16, len(pts))}
	for i, pt := range pts {
		p.hashes[i], p.owners[i] = pt.hash, pt.owner
	}
	j := 0
	for b := range 1 << ketamaIndexBits {
		for j < len(pts) && pts[j].hash>>(32-ketamaIndexBits) < uint32(b) {
			j++
		}
		p.index[b] = uint32(j)
	}
	p.index[1<<ketamaIndexBits] = uint32(len(pts))
	return p
}

// ketamaPoints appends the ring points of the backend named addr. The name splits at
// its last colon into host and port, as nginx splits its server names ("unix:" names
// have no port).
func ketamaPoints(pts []ketamaPoint, addr string, weight int, owner uint16) []ketamaPoint {
	host, port := addr, ""
	if len(addr) >= 5 && strings.EqualFold(addr[:5], "unix:") {
		host = addr[5:]
	} else if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		host, port = addr[:i], addr[i+1:]
	}
	base := crc32.ChecksumIEEE([]byte(host + "\x00" + port))
	var prev [4]byte
	for range weight * ketamaPointsPerWeight {
		h := crc32.Update(base, crc32.IEEETable, prev[:])
		pts = append(pts, ketamaPoint{hash: h, owner: owner})
		binary.LittleEndian.PutUint32(prev[:], h)
	}
	return pts
}

// point returns the index of the first point at or after key's hash.
func (p *ketamaPicker[T]) point(key string) int {
	h := crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(key), len(key)))
	b := h >> (32 - ketamaIndexBits)
	lo, hi := int(p.index[b]), int(p.index[b+1])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.hashes[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(p.hashes) {
		lo = 0
	}
	return lo
}

func (p *ketamaPicker[T]) pick(s *snapshot[T], key string, a *Attempts[T], _ time.Duration) *Target[T] {
	i := p.point(key)
	n := len(p.hashes)
	// Like nginx, go round the ring past unavailable backends.
	for range min(n, maxWalk*4) {
		if t := s.targets[p.owners[i]]; usable(t, a) {
			return t
		}
		if i++; i == n {
			i = 0
		}
	}
	return scan(s, a)
}
