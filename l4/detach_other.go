//go:build !linux

package l4

// Connections detach from the runtime's poller on Linux only (see detach_linux.go);
// here no connection parks.

func (f *flow) detachable() bool { return false }
func (f *flow) detach()          {}
func (f *flow) attach() error    { return nil }
func (f *flow) closeSockets()    {}
