package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/gotthard-proxy/gotthard/limit"
	"github.com/gotthard-proxy/gotthard/limit/httplimit"
	"github.com/gotthard-proxy/gotthard/modules/compress"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// modFlags are the flags of the modules the gateway can run around its phases.
type modFlags struct {
	compress  bool
	rateLimit string
}

func addModFlags(fs *flag.FlagSet) *modFlags {
	f := &modFlags{}
	fs.BoolVar(&f.compress, "compress", false, "compress responses with zstd, br or gzip by the client's Accept-Encoding (text, JSON, JavaScript, XML, SVG, WebAssembly; see docs/modules-compress.md)")
	fs.StringVar(&f.rateLimit, "rate-limit", "", "limit each client address to N requests a second, as N/s (a burst of N); past it the client gets 429 with Retry-After (empty: no limit)")
	return f
}

// modules returns the modules the flags ask for, in the order they run: the limit
// first, so that refused requests cost nothing more, and compression last, as it makes
// the bytes that go to the client.
func (f *modFlags) modules() ([]proxy.Module, error) {
	var mods []proxy.Module
	if f.rateLimit != "" {
		n, err := parseRate(f.rateLimit)
		if err != nil {
			return nil, fmt.Errorf("-rate-limit: %w", err)
		}
		tb, err := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: float64(n), Burst: n})
		if err != nil {
			return nil, fmt.Errorf("-rate-limit: %w", err)
		}
		lim, err := httplimit.New(httplimit.Options{Limiter: tb})
		if err != nil {
			return nil, fmt.Errorf("-rate-limit: %w", err)
		}
		mods = append(mods, lim)
	}
	if f.compress {
		c, err := compress.New(compress.Options{})
		if err != nil {
			return nil, fmt.Errorf("-compress: %w", err)
		}
		mods = append(mods, c)
	}
	return mods, nil
}

// parseRate parses "N/s", N a positive whole number.
func parseRate(s string) (int, error) {
	num, ok := strings.CutSuffix(s, "/s")
	if !ok {
		return 0, fmt.Errorf("%q is not N/s (requests a second)", s)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0, errors.New("the rate in " + strconv.Quote(s) + " is not a positive whole number")
	}
	return n, nil
}
