// Preloaded (node --require) into the http-cache-tests origin server by
// bench/cache-conformance.sh: the server calls listen(port), which would listen on every
// interface; this makes such a call listen on 127.0.0.1 only.
'use strict'

const net = require('net')

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const port = args[0]
  const portOnly = typeof port === 'number' || (typeof port === 'string' && /^[0-9]+$/.test(port))
  if (portOnly && typeof args[1] !== 'string') {
    args[0] = Number(port)
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}
