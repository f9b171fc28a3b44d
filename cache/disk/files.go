package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotthard-proxy/gotthard/cache"
)

// The layout of a store's directory:
//
//	LOCK                       held with flock while a Store has the directory open
//	ab/cd/abcd…(16 hex).m      an object's head file: key, body generation, Meta
//	ab/cd/abcd…-0123…(16).b    an object's body, one file per generation
//	ab/cd/*.tmp                a write in progress (removed by Open)
//
// The first two bytes of an object's slot (the hash of its key) name the two levels of
// directories, so 65,536 leaf directories share the objects. A head file is replaced by
// rename(2), so it always names a complete body; bodies are never changed after their
// rename into place.

const (
	lockName      = "LOCK"
	headSuffix    = ".m"
	bodySuffix    = ".b"
	tmpSuffix     = ".tmp"
	hexSlotLen    = 16
	headMagic     = "GTDH"
	headVersion   = 1
	headFixedLen  = 36 // magic, version, 3 reserved, gen, body size, body CRC, key length, meta length
	headCRCLen    = 4
	maxKeyLen     = 64 << 10
	maxMetaLen    = 1 << 20
	maxHeadLen    = headFixedLen + maxKeyLen + maxMetaLen + headCRCLen
	dirPerm       = 0o700
	filePerm      = 0o600
	maxLookupRace = 4 // lookups retried when a body is replaced between index and open
)

// errHeadFile marks a head file that does not decode; Open removes such files.
var errHeadFile = errors.New("disk: malformed head file")

// head is the decoded content of a head file.
type head struct {
	key      string
	gen      uint64
	bodySize int64
	bodyCRC  uint32
	meta     *cache.Meta
	fileLen  int64 // the head file's length, set by decodeHead
}

// appendHex appends v as 16 lower-case hex digits.
func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[(v>>uint(shift))&0xf])
	}
	return b
}

// parseHex parses exactly 16 lower-case hex digits.
func parseHex(s string) (uint64, bool) {
	if len(s) != hexSlotLen {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | uint64(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// leafPrefix is the part of a slot that names its leaf directory.
func leafPrefix(slot uint64) uint16 { return uint16(slot >> 48) }

// leafDir is the directory holding slot's files.
func (s *Store) leafDir(slot uint64) string {
	var hx [hexSlotLen]byte
	hex := appendHex(hx[:0], slot)
	return filepath.Join(s.dir, string(hex[0:2]), string(hex[2:4]))
}

// path returns the name of one of slot's files: its head (gen and suffix unused), a
// body generation, or a temporary file.
func (s *Store) path(slot, gen uint64, suffix string) string {
	var hx [hexSlotLen]byte
	hex := appendHex(hx[:0], slot)
	var b strings.Builder
	b.Grow(len(s.dir) + 8 + 2*hexSlotLen + len(suffix))
	b.WriteString(s.dir)
	b.WriteByte(filepath.Separator)
	b.Write(hex[0:2])
	b.WriteByte(filepath.Separator)
	b.Write(hex[2:4])
	b.WriteByte(filepath.Separator)
	b.Write(hex)
	if suffix != headSuffix {
		b.WriteByte('-')
		b.Write(appendHex(hx[:0], gen))
	}
	b.WriteString(suffix)
	return b.String()
}

func (s *Store) headPath(slot uint64) string      { return s.path(slot, 0, headSuffix) }
func (s *Store) bodyPath(slot, gen uint64) string { return s.path(slot, gen, bodySuffix) }
func (s *Store) bodyTmpPath(slot, gen uint64) string {
	return s.path(slot, gen, bodySuffix+tmpSuffix)
}
func (s *Store) headTmpPath(slot, gen uint64) string {
	return s.path(slot, gen, headSuffix+tmpSuffix)
}

// encodeHead builds a head file: a fixed part, the key, the encoded Meta and a CRC-32C
// of everything before it.
func (s *Store) encodeHead(h *head) ([]byte, error) {
	if len(h.key) > maxKeyLen {
		return nil, fmt.Errorf("disk: key of %d bytes over the %d-byte limit: %w", len(h.key), maxKeyLen, cache.ErrTooLarge)
	}
	b := make([]byte, headFixedLen, headFixedLen+len(h.key)+512)
	copy(b, headMagic)
	b[4] = headVersion
	binary.LittleEndian.PutUint64(b[8:], h.gen)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.bodySize))
	binary.LittleEndian.PutUint32(b[24:], h.bodyCRC)
	binary.LittleEndian.PutUint32(b[28:], uint32(len(h.key)))
	b = append(b, h.key...)
	start := len(b)
	b, err := h.meta.AppendBinary(b)
	if err != nil {
		return nil, fmt.Errorf("disk: encode head: %w", err)
	}
	metaLen := len(b) - start
	if metaLen > maxMetaLen {
		return nil, fmt.Errorf("disk: response head of %d bytes over the %d-byte limit: %w", metaLen, maxMetaLen, cache.ErrTooLarge)
	}
	binary.LittleEndian.PutUint32(b[32:], uint32(metaLen))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, s.crc)), nil
}

// decodeHead parses a head file. Every length is checked against the data, so a damaged
// file returns an error wrapping errHeadFile.
func (s *Store) decodeHead(b []byte) (*head, error) {
	if len(b) < headFixedLen+headCRCLen || string(b[:4]) != headMagic {
		return nil, fmt.Errorf("%w: bad magic or short", errHeadFile)
	}
	if b[4] != headVersion {
		return nil, fmt.Errorf("%w: unknown version %d", errHeadFile, b[4])
	}
	body := b[:len(b)-headCRCLen]
	if crc32.Checksum(body, s.crc) != binary.LittleEndian.Uint32(b[len(body):]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errHeadFile)
	}
	h := &head{
		gen:      binary.LittleEndian.Uint64(b[8:]),
		bodySize: int64(binary.LittleEndian.Uint64(b[16:])),
		bodyCRC:  binary.LittleEndian.Uint32(b[24:]),
		fileLen:  int64(len(b)),
	}
	keyLen := uint64(binary.LittleEndian.Uint32(b[28:]))
	metaLen := uint64(binary.LittleEndian.Uint32(b[32:]))
	if h.bodySize < 0 || keyLen > maxKeyLen || metaLen > maxMetaLen ||
		uint64(len(body)) != headFixedLen+keyLen+metaLen {
		return nil, fmt.Errorf("%w: lengths do not add up", errHeadFile)
	}
	h.key = string(body[headFixedLen : headFixedLen+keyLen])
	h.meta = new(cache.Meta)
	if err := h.meta.UnmarshalBinary(body[headFixedLen+keyLen:]); err != nil {
		return nil, fmt.Errorf("%w: %w", errHeadFile, err)
	}
	if h.meta.Size != h.bodySize {
		return nil, fmt.Errorf("%w: Meta.Size %d is not the body's %d", errHeadFile, h.meta.Size, h.bodySize)
	}
	return h, nil
}

// readHead reads and decodes the head file at name, refusing files over maxHeadLen.
func (s *Store) readHead(name string) (*head, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxHeadLen {
		return nil, fmt.Errorf("%w: %d bytes", errHeadFile, fi.Size())
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%w: %w", errHeadFile, err)
	}
	return s.decodeHead(b)
}

// writeFile writes b to a new file at name and, unless syncing is off, fsyncs it.
func (s *Store) writeFile(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && !s.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// syncDir fsyncs a directory so the renames and creations in it are durable.
func (s *Store) syncDir(dir string) error {
	if s.opts.NoSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileCRC returns the CRC-32C of the file at name and its length.
func (s *Store) fileCRC(name string) (uint32, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := crc32.New(s.crc)
	n, err := io.Copy(h, f)
	return h.Sum32(), n, err
}
