package l4

import "github.com/gotthard-proxy/gotthard/server"

// A Service plugs into a server.Server by its method set.
var (
	_ server.ListeningService = (*Service[*testCtx])(nil)
	_ server.StreamCloser     = (*Service[*testCtx])(nil)
	_ server.Checker          = (*Service[*testCtx])(nil)
)
