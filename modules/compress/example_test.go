package compress_test

import (
	"fmt"

	"github.com/gotthard-proxy/gotthard/modules/compress"
)

func ExampleParseAcceptEncoding() {
	prefs := []compress.Coding{compress.Zstd, compress.Brotli, compress.Gzip}
	for _, ae := range []string{
		"gzip, deflate, br, zstd", // a browser: the server's order breaks the tie
		"gzip;q=1.0, br;q=0.5",    // the client's weights come first
		"*;q=0.1, zstd;q=0",       // "*" stands for the codings not named
		"gzip;q=0.5, identity",    // the body as it is, preferably
	} {
		fmt.Printf("%-26q %v\n", ae, compress.ParseAcceptEncoding(ae).Negotiate(prefs))
	}
	// Output:
	// "gzip, deflate, br, zstd"  zstd
	// "gzip;q=1.0, br;q=0.5"     gzip
	// "*;q=0.1, zstd;q=0"        br
	// "gzip;q=0.5, identity"     identity
}
