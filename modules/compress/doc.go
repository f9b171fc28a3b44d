// Package compress is a proxy module that compresses responses with zstd, Brotli or
// gzip for the clients that accept them, and a second module, [Decoder], that decodes an
// upstream's coded responses for modules that need plain bytes.
//
// # Compressing
//
// [New] returns a [Module] to list in [proxy.ServiceOptions.Modules]:
//
//	zip, err := compress.New(compress.Options{}) // zstd, br, gzip; text, JSON, JS, XML...
//	if err != nil {
//		return err
//	}
//	svc, err := proxy.NewService("web", app, proxy.ServiceOptions{
//		Modules: []proxy.Module{zip},
//	})
//
// The coding is chosen from the request's Accept-Encoding with its q-values (RFC 9110
// §12.5.3): the client's highest weight wins, ties go to the server's order
// ([Options.Codings]), "q=0" refuses a coding, "*" stands for those not named, and a
// client that weighs identity above every coding gets the body as it is. A request with
// no Accept-Encoding gets no coding.
//
// A response is compressed when its Content-Type is listed ([Options.ContentTypes]),
// its Content-Length, if known, is at least [Options.MinSize], and none of these holds:
// it has a Content-Encoding other than identity, Cache-Control: no-transform, it is the
// answer to a HEAD request or to one with Range, its status is 1xx, 204, 206 or 304, or
// it has no body (Content-Length: 0). A compressed response loses Content-Length (its
// body is framed by chunked encoding or HTTP/2 frames) and Accept-Ranges, and a strong
// ETag becomes weak (W/"..."). Every response whose own properties allow compression
// gets Vary: Accept-Encoding, merged into an existing Vary, whether or not this request
// got it compressed, so a shared cache keys its copies on Accept-Encoding.
//
// Compression streams: each piece of the body is compressed as it arrives and the
// encoder is flushed at its end, so what the client has received decodes up to there;
// server-sent events arrive one by one, as the origin sent them (so do gRPC-web
// messages, whose types are not in the default list: add them to ContentTypes).
// Flushing costs a few bytes per piece.
//
// # Memory and CPU
//
// Encoders are pooled per coding (one pool per Module, at its levels), reset for each
// response and given back when the request is done, with the buffer their output goes
// to. While a response is being compressed it holds one encoder: at the default levels
// about 0.36 MiB for gzip (level 6: the module's own writer's window, hash table, chain
// links and block of tokens),
// 1.3 MiB for Brotli (quality 5, 256 KiB window) and 1.9 MiB for zstd (level 3 with a
// 256 KiB window and the smaller tables; its hash tables are most of it), as measured
// by BenchmarkStreamMemory. [Options.MaxStreams] bounds how many are held at once (256
// by default); a response beyond it goes uncompressed. docs/modules-compress.md has the
// figures, the CPU cost and how they were measured.
// The pools keep idle encoders until the garbage collector clears them.
//
// # Decoding
//
// [NewDecoder] returns a [Decoder] that decodes gzip, br and zstd responses so that the
// modules after it see plain bytes; list a [Module] after those to compress again for
// the client:
//
//	Modules: []proxy.Module{unzip, rewriteHTML, zip}
//
// A body that decodes to more than [DecoderOptions.MaxDecodedSize] fails the request
// with an error wrapping [ErrTooLarge]: a decompression bomb is refused as it inflates,
// never buffered. A user's own phase that needs plain bytes (the user's response phases
// run before modules) can use a [DecodeStream] from [Decoder.NewStream] directly.
//
// Do not use this package in front of clients that cannot decode what they claim to
// accept, or for bodies already compressed (images, video, archives): the default
// ContentTypes leave those out.
package compress
