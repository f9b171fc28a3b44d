//go:build !linux

package proxy

// closeWatcher is not available here: pooled connections are checked with isAlive.
type closeWatcher struct{}

func newCloseWatcher() *closeWatcher     { return nil }
func (w *closeWatcher) add(*upConn) bool { return false }
func (w *closeWatcher) remove(*upConn)   {}
func (w *closeWatcher) run()             {}
func (w *closeWatcher) stop()            {}
func (w *closeWatcher) release()         {}
