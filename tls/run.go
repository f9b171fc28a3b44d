package tls

import (
	"context"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

// Run reloads the files when they change on disk (checked every
// [Options.WatchInterval]) and on SIGHUP (unless [Options.NoSIGHUP]), until ctx ends;
// then it returns nil. A file replaced in several steps (certificate, then key) may be
// read half-way: that reload fails, the old files stay in use, and the next check
// retries. Run has the method set of a server.Server background service, so
// srv.Add(cfg) runs it for the life of the server.
func (c *Config) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if iv := c.opts.WatchInterval; iv >= 0 {
		if iv == 0 {
			iv = 2 * time.Second
		}
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	var hup chan os.Signal
	if !c.opts.NoSIGHUP {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	var failed []fileStamp // the files of the last failed attempt, not to log it again
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			c.log.Info("tls: SIGHUP: reloading")
			c.Reload()
		case <-tick:
			s := c.snap.Load()
			if !changed(s.stamp) {
				continue
			}
			cur := currentStamps(s.stamp)
			if failed != nil && slices.Equal(cur, failed) {
				continue
			}
			if c.Reload() != nil {
				failed = cur
			} else {
				failed = nil
			}
		}
	}
}

func currentStamps(old []fileStamp) []fileStamp {
	out := make([]fileStamp, len(old))
	for i, s := range old {
		out[i], _ = stampOf(s.path)
		out[i].path = s.path
	}
	return out
}
