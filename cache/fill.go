package cache

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Errors of a [Fill]'s readers.
var (
	// ErrAbandoned: the fill will not be stored (the response was not cacheable, too
	// large, or its transfer failed). A reader that has sent nothing to its client yet
	// goes upstream itself; one that has must end its response as cut.
	ErrAbandoned = errors.New("cache: the response being filled was abandoned")
	// ErrLockTimeout: the fill's head did not come within the cache's LockTimeout.
	ErrLockTimeout = errors.New("cache: timed out waiting for another request's fill")
)

// Fill is one response on its way into the cache: written by the request that went
// upstream for it (the writer), and read while it grows by the requests for the same
// key that came meanwhile (the readers), so that a cold key costs one upstream request
// however many ask for it, and no reader waits for the end of the body to get its
// start. A fill that fails or is cut is never stored, and its readers are told.
//
// The writer's methods are called from its request's goroutine only; readers may be
// many, on their own goroutines.
type Fill struct {
	c       *Cache
	primary string
	joined  bool // registered in c.fills (false when the lock is off)

	mu      sync.Mutex
	changed chan struct{} // closed at each change, then replaced
	meta    *Meta         // the head, set by Start; then read-only
	vary    string        // the Vary field names of the response, "" if it does not vary
	variant string        // the writer's variance (for vary)
	body    []byte        // what was written so far; bytes below len never change
	done    bool          // committed: body is whole
	err     error         // abandoned, and why

	w Writer // the store's write; the writer's
}

// Join returns the fill in progress for primary, to read (writer false), or a new fill
// that the caller must write: Start, Write, then Commit or Abandon (writer true).
func (c *Cache) Join(primary string) (f *Fill, writer bool) {
	f = &Fill{c: c, primary: primary, changed: make(chan struct{})}
	if c.lockTimeout < 0 {
		return f, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.fills[primary]; old != nil {
		return old, false
	}
	f.joined = true
	c.fills[primary] = f
	return f, true
}

// Fills returns the number of fills in progress.
func (c *Cache) Fills() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fills)
}

// leave removes f from the fills in progress (a new request for its key starts a new
// fill or finds the stored object).
func (f *Fill) leave() {
	if !f.joined {
		return
	}
	f.c.mu.Lock()
	if f.c.fills[f.primary] == f {
		delete(f.c.fills, f.primary)
	}
	f.c.mu.Unlock()
}

// broadcast wakes the readers; f.mu is held.
func (f *Fill) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Start opens the store's write of the response with the head meta (its Size the
// Content-Length, or -1); vary is its Vary field names ("" if it does not vary) and
// variance the writer's request's variance for them. A response the store cannot take
// abandons the fill, and Start returns why.
func (f *Fill) Start(meta *Meta, vary, variance string) error {
	if meta.Size > f.c.maxObject {
		err := fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, meta.Size, f.c.maxObject)
		f.Abandon(err)
		return err
	}
	key, err := f.c.storeKey(f.primary, vary, variance)
	if err == nil {
		f.w, err = f.c.store.Create(key, meta)
	}
	if err != nil {
		f.Abandon(err)
		return err
	}
	m := meta.Clone()
	f.mu.Lock()
	f.meta, f.vary, f.variant = m, vary, variance
	f.broadcast()
	f.mu.Unlock()
	return nil
}

// Write appends body bytes. Past the cache's MaxObjectBytes it abandons the fill and
// returns an error wrapping ErrTooLarge; the writer's own response goes on.
func (f *Fill) Write(p []byte) error {
	if len(p) == 0 || f.w == nil {
		return nil
	}
	f.mu.Lock()
	if f.err != nil || f.done {
		f.mu.Unlock()
		return f.err
	}
	if int64(len(f.body))+int64(len(p)) > f.c.maxObject {
		f.mu.Unlock()
		err := fmt.Errorf("%w: over %d bytes", ErrTooLarge, f.c.maxObject)
		f.Abandon(err)
		return err
	}
	f.mu.Unlock()
	if _, err := f.w.Write(p); err != nil {
		f.Abandon(err)
		return err
	}
	f.mu.Lock()
	f.body = append(f.body, p...)
	f.broadcast()
	f.mu.Unlock()
	return nil
}

// Commit stores the response, whole: the fill's readers read to its end, and new
// requests find it in the store.
func (f *Fill) Commit() error {
	if f.w == nil {
		f.Abandon(errors.New("cache: commit of a fill that was not started"))
		return ErrAbandoned
	}
	f.mu.Lock()
	if f.err != nil {
		f.mu.Unlock()
		return f.err
	}
	f.mu.Unlock()
	if err := f.w.Commit(); err != nil {
		f.Abandon(err)
		return err
	}
	f.mu.Lock()
	f.done = true
	f.broadcast()
	f.mu.Unlock()
	f.leave()
	return nil
}

// Abandon gives the fill up (err says why, for the log): nothing is stored, and readers
// get ErrAbandoned. It does nothing after Commit, and may be called more than once.
func (f *Fill) Abandon(err error) {
	f.mu.Lock()
	if f.done || f.err != nil {
		f.mu.Unlock()
		return
	}
	if err == nil {
		err = ErrAbandoned
	}
	f.err = fmt.Errorf("%w: %w", ErrAbandoned, err)
	f.broadcast()
	f.mu.Unlock()
	if f.w != nil {
		f.w.Abort()
	}
	f.leave()
}

// Head waits, up to the cache's LockTimeout, for the response's head, and returns it
// (read-only) with the Vary field names and the variance the writer's request had. It
// returns an error wrapping ErrAbandoned or ErrLockTimeout if the head does not come, or
// done's error if done closes first.
func (f *Fill) Head(done <-chan struct{}) (m *Meta, vary, variance string, err error) {
	timer := time.NewTimer(f.c.lockTimeout)
	defer timer.Stop()
	for {
		f.mu.Lock()
		m, vary, variance, err, ch := f.meta, f.vary, f.variant, f.err, f.changed
		f.mu.Unlock()
		if m != nil {
			return m, vary, variance, nil
		}
		if err != nil {
			return nil, "", "", err
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, "", "", fmt.Errorf("%w (%v)", ErrLockTimeout, f.c.lockTimeout)
		case <-done:
			return nil, "", "", errors.New("cache: the request ended while waiting for a fill")
		}
	}
}

// Read returns the body bytes from off on as they are written, waiting for some if
// there are none yet: a slice that stays valid and unchanged. At the end of a committed
// body it returns io.EOF. It returns an error wrapping ErrAbandoned if the fill is
// given up, and a timeout error when nothing is written for wait.
func (f *Fill) Read(off int, wait time.Duration, done <-chan struct{}) ([]byte, error) {
	var timer *time.Timer
	for {
		f.mu.Lock()
		body, ended, err, ch := f.body, f.done, f.err, f.changed
		f.mu.Unlock()
		if off < len(body) {
			if timer != nil {
				timer.Stop()
			}
			return body[off:len(body):len(body)], nil
		}
		if err != nil {
			return nil, err
		}
		if ended {
			return nil, io.EOF
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, fmt.Errorf("cache: no body bytes from the fill for %v", wait)
		case <-done:
			return nil, errors.New("cache: the request ended while reading a fill")
		}
	}
}
