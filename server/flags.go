package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ErrConfigTested is returned by [Server.Run] in test mode (-t/--test, [Options.Test])
// once the configuration has been loaded and every service that implements [Checker] has
// passed its check; main should print "configuration OK" and exit 0.
var ErrConfigTested = errors.New("server: configuration tested")

// FlagUsage describes the flags [ParseFlags] accepts, for a program's -h output.
const FlagUsage = `  -c, --conf FILE   load the YAML configuration from FILE
  -d, --daemon      run in the background
  -u, --upgrade     take the listening sockets from the running process (graceful upgrade)
  -t, --test        check the configuration and the services, then exit
`

// Flags holds the command-line flags of a Gotthard program.
type Flags struct {
	// Conf is the configuration file (-c, --conf); empty means none.
	Conf string
	// Daemon asks to run in the background (-d, --daemon).
	Daemon bool
	// Upgrade asks to take over from a running process (-u, --upgrade).
	Upgrade bool
	// Test asks to check the configuration and the services and exit (-t, --test): it
	// sets [Options.Test].
	Test bool
}

// ParseFlags parses args (without the program name) into Flags. Each flag has a short and
// a long form, given with one or two dashes. Positional arguments are an error; -h and
// --help return an error wrapping [flag.ErrHelp], after which main should print
// [FlagUsage]. ParseFlags prints nothing.
func ParseFlags(args []string) (Flags, error) {
	fs := flag.NewFlagSet("gotthard", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Flags{}, fmt.Errorf("server: flags: %w", err)
	}
	if fs.NArg() > 0 {
		return Flags{}, fmt.Errorf("server: flags: unexpected argument %q", fs.Arg(0))
	}
	return *f, nil
}

// AddFlags defines the server flags (-c/--conf, -d/--daemon, -u/--upgrade, -t/--test) on
// fs, for programs that have flags of their own; the returned Flags is filled in when fs
// is parsed. Pass it to [NewFromFlags].
func AddFlags(fs *flag.FlagSet) *Flags {
	f := new(Flags)
	for _, name := range []string{"c", "conf"} {
		fs.StringVar(&f.Conf, name, "", "configuration file")
	}
	for _, name := range []string{"d", "daemon"} {
		fs.BoolVar(&f.Daemon, name, false, "run in the background")
	}
	for _, name := range []string{"u", "upgrade"} {
		fs.BoolVar(&f.Upgrade, name, false, "graceful upgrade")
	}
	for _, name := range []string{"t", "test"} {
		fs.BoolVar(&f.Test, name, false, "test the configuration and exit")
	}
	return f
}

// NewFromArgs is [New] driven by the command line: it parses args with [ParseFlags]; with
// -c it reads the file over opts.Config (or over [DefaultConfig] if that is nil), so the
// file's keys override the code's, and over opts.App if set (see [Options.App]); -d sets
// Config.Daemon, -u sets Options.Upgrade and -t sets Options.Test. A configuration
// problem is returned here, with or without -t.
//
// With -t the program goes on as usual: it builds its services (reading their files, so
// a missing certificate is found), adds them, and calls Run, which checks them and
// returns [ErrConfigTested] without listening:
//
//	srv, err := server.NewFromArgs(os.Args[1:], server.Options{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	// ... build the services and srv.Add them ...
//	err = srv.Run()
//	if errors.Is(err, server.ErrConfigTested) {
//		fmt.Println("configuration OK")
//		return
//	}
//	if err != nil {
//		log.Fatal(err)
//	}
func NewFromArgs(args []string, opts Options) (*Server, error) {
	f, err := ParseFlags(args)
	if err != nil {
		return nil, err
	}
	return NewFromFlags(f, opts)
}

// NewFromFlags is [NewFromArgs] for flags already parsed (see [AddFlags]).
func NewFromFlags(f Flags, opts Options) (*Server, error) {
	cfg := DefaultConfig()
	if opts.Config != nil {
		cfg = opts.Config.clone()
	}
	if opts.App != nil {
		if err := checkApp(opts.App); err != nil {
			return nil, err
		}
	}
	if f.Conf != "" {
		var err error
		cfg, err = loadConfigOver(cfg, f.Conf, opts.App)
		if err != nil {
			return nil, err
		}
	}
	if f.Daemon {
		cfg.Daemon = true
	}
	opts.Config = cfg
	opts.Upgrade = opts.Upgrade || f.Upgrade
	opts.Test = opts.Test || f.Test
	return New(opts)
}
