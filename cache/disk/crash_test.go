//go:build unix

package disk

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
)

// The kill test runs its filler as a child process: this test binary, re-executed with
// the environment variables below.
const (
	crashDirEnv   = "GOTTHARD_DISK_CRASH_DIR"
	crashRoundEnv = "GOTTHARD_DISK_CRASH_ROUND"
	crashKeys     = 48
	crashMaxBody  = 1 << 20
)

func crashOptions() Options {
	// Large enough that nothing is evicted, so every reported commit must survive.
	return Options{
		MaxBytes:       2 * crashKeys * (crashMaxBody + 4096),
		MaxObjectBytes: crashMaxBody,
		Logger:         slog.New(slog.DiscardHandler),
	}
}

// crashPurgeable reports whether the child may purge key number i; the parent checks
// durability only for the others.
func crashPurgeable(i int) bool { return i%6 == 0 }

// TestCrashChild is the filler of TestKillDuringFill. It writes, updates and purges
// objects in a loop until it is killed, printing each step to stdout after it happens:
//
//	S key v    a write of version v starts
//	H key v    half its body is written
//	B key v    all of it is written, Commit is next
//	C key v    Commit returned
//	u key      an UpdateMeta starts;   U key   it returned
//	P key      a Purge returned
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestKillDuringFill")
	}
	round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
	s, err := Open(dir, crashOptions())
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriterSize(os.Stdout, 256)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	r := rand.New(rand.NewPCG(uint64(round), 99))
	for i := 0; ; i++ {
		k := r.IntN(crashKeys)
		key := fmt.Sprintf("https://example.com/k%d", k)
		v := round<<20 | i // versions grow across rounds
		switch op := r.IntN(10); {
		case op < 7:
			n := r.IntN(crashMaxBody + 1)
			w, err := s.Create(key, metaFor(key, v, n))
			if err != nil {
				t.Fatal(err)
			}
			say("S %s %d", key, v)
			b := body(key, v, n)
			for off := 0; off < n; off += 4096 {
				if _, err := w.Write(b[off:min(off+4096, n)]); err != nil {
					t.Fatal(err)
				}
				if off < n/2 && off+4096 >= n/2 {
					say("H %s %d", key, v)
				}
			}
			say("B %s %d", key, v)
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			say("C %s %d", key, v)
		case op < 9:
			obj, err := s.Lookup(key)
			if errors.Is(err, cache.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			m := obj.Meta().Clone()
			obj.Close()
			m.Response.Header.Set("X-Updated", strconv.Itoa(i))
			say("u %s", key)
			if err := s.UpdateMeta(key, m); err != nil {
				t.Fatal(err)
			}
			say("U %s", key)
		default:
			if !crashPurgeable(k) {
				continue
			}
			if _, err := s.Purge(key); err != nil {
				t.Fatal(err)
			}
			say("P %s", key)
		}
	}
}

// TestKillDuringFill kills a filling child with SIGKILL at a random step, several
// rounds on one directory, and checks after each that the store reopens, serves only
// complete and correct objects, and kept every commit the child reported.
func TestKillDuringFill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	committed := make(map[string]int) // key → the highest version reported committed
	var discarded int64
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const rounds = 8
	for round := 1; round <= rounds; round++ {
		// Kill right after the child reports the killAt'th step of one kind: at the
		// start of a write, halfway through a body, before or after a Commit, or at the
		// start of an UpdateMeta.
		kind := "SHBCu"[r.IntN(5)]
		killAt := 1 + r.IntN(12)
		killDelay := time.Duration(r.IntN(4000)) * time.Microsecond
		steps, last := runChild(t, dir, round, kind, killAt, killDelay, committed)
		t.Logf("round %d: killed %v after step %d of kind %c; the last step read: %d, %q", round, killDelay, killAt, kind, steps, last)

		s, err := Open(dir, crashOptions())
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		st := s.Stats()
		discarded += st.Discarded
		found := 0
		for k := range crashKeys {
			key := fmt.Sprintf("https://example.com/k%d", k)
			obj, err := s.Lookup(key)
			if errors.Is(err, cache.ErrNotFound) {
				if v, ok := committed[key]; ok && !crashPurgeable(k) {
					t.Errorf("round %d: %s v%d was committed and is lost", round, key, v)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			v, err := check(obj, key)
			obj.Close()
			if err != nil {
				t.Errorf("round %d: a torn object: %v", round, err)
				continue
			}
			found++
			if want, ok := committed[key]; ok && v < want && !crashPurgeable(k) {
				t.Errorf("round %d: %s is v%d, older than the committed v%d", round, key, v, want)
			}
			// An unreported commit (killed before it printed) may be newer: it counts.
			committed[key] = max(committed[key], v)
		}
		fs, total := files(t, dir)
		for name := range fs {
			if strings.HasSuffix(name, tmpSuffix) {
				t.Errorf("round %d: leftover %s after Open", round, name)
			}
		}
		if st.Bytes != total || st.Objects != int64(found) {
			t.Errorf("round %d: Stats %+v, files hold %d bytes, %d objects found", round, st, total, found)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if discarded == 0 {
		t.Errorf("no round left a partial write to clean up: the kills missed the writes")
	}
	t.Logf("%d files of interrupted writes removed over %d rounds", discarded, rounds)
}

// runChild runs the filler on dir until it has reported killAt steps of the given kind,
// kills it with SIGKILL killDelay later, and records in committed the commits it reported. It returns
// the number of steps read and the last one.
func runChild(t *testing.T, dir string, round int, kind byte, killAt int, killDelay time.Duration, committed map[string]int) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A child that stops making progress is killed, which ends the read below.
	timedOut := make(chan struct{})
	watchdog := time.AfterFunc(2*time.Minute, func() {
		close(timedOut)
		cmd.Process.Kill()
	})
	defer watchdog.Stop()

	sc := bufio.NewScanner(stdout)
	steps, seen, last, killed := 0, 0, "", false
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 || len(f[0]) != 1 {
			continue // the test framework's own output
		}
		steps++
		last = line
		if f[0] == "C" && len(f) == 3 {
			v, _ := strconv.Atoi(f[2])
			committed[f[1]] = max(committed[f[1]], v)
		}
		if f[0][0] == kind {
			seen++
		}
		if seen == killAt && !killed {
			// The kill lands a random moment after the step, anywhere in the work
			// that follows it (an fsync takes milliseconds).
			time.AfterFunc(killDelay, func() { cmd.Process.Signal(syscall.SIGKILL) })
			killed = true
		}
	}
	err = cmd.Wait()
	select {
	case <-timedOut:
		t.Fatalf("round %d: the child made no progress for 2 minutes (%d steps)", round, steps)
	default:
	}
	var exit *exec.ExitError
	if !killed || !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: the child ended with %v after %d steps, before it was killed", round, err, steps)
	}
	return steps, last
}
