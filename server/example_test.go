package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gotthard-proxy/gotthard/server"
)

func ExampleParseConfig() {
	conf := "version: 1\npid_file: /run/gotthard.pid\npid_fle: typo\n"
	_, err := server.ParseConfig(strings.NewReader(conf), "conf.yaml")
	fmt.Println(err)
	// Output: server: conf.yaml:3: unknown key "pid_fle"
}

// ticker is a BackgroundService.
type ticker struct{}

func (ticker) Name() string { return "ticker" }

func (ticker) Run(ctx context.Context) error {
	fmt.Println("ticker running")
	<-ctx.Done()
	fmt.Println("ticker stopped")
	return nil
}

func ExampleServer() {
	srv, err := server.New(server.Options{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		NoSignals: true, // stopped below with Shutdown instead
	})
	if err != nil {
		panic(err)
	}
	if err := srv.Add(ticker{}); err != nil {
		panic(err)
	}
	go func() {
		<-srv.Ready()
		srv.Shutdown(context.Background())
	}()
	fmt.Println("Run:", srv.Run())
	// Output:
	// ticker running
	// ticker stopped
	// Run: <nil>
}

// The application's own keys live in the server's file; a key neither knows is an
// error with its line.
func ExampleParseConfigWithApp() {
	type App struct {
		Listen  string `yaml:"listen"`
		Origins []struct {
			Address string `yaml:"address"`
			Weight  int    `yaml:"weight"`
		} `yaml:"origins"`
	}
	conf := `version: 1
grace_period_seconds: 5
listen: 127.0.0.1:6188
origins:
  - address: 10.0.0.7:8080
    weight: 2
`
	app := App{Listen: "127.0.0.1:80"} // the file overrides it
	cfg, err := server.ParseConfigWithApp(strings.NewReader(conf), "conf.yaml", &app)
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.GracePeriodSeconds, app.Listen, app.Origins[0].Address, app.Origins[0].Weight)

	_, err = server.ParseConfigWithApp(strings.NewReader("listen: x\norigins:\n  - address: y\n    weight: heavy\nlisen: z\n"), "conf.yaml", &app)
	fmt.Println(err)
	// Output:
	// 5 127.0.0.1:6188 10.0.0.7:8080 2
	// server: conf.yaml:4: key "origins[0].weight": want int, got !!str `heavy`
	// server: conf.yaml:5: unknown key "lisen"
}

// checked is a BackgroundService that checks its settings when asked (a server.Checker).
type checked struct{ file string }

func (checked) Name() string                  { return "checked" }
func (checked) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (c checked) Check() error {
	if c.file == "" {
		return errors.New("no file configured")
	}
	return nil
}

// With -t, Run checks the services instead of running them.
func ExampleServer_testMode() {
	for _, svc := range []checked{{file: "/etc/app.conf"}, {}} {
		srv, err := server.NewFromArgs([]string{"-t"}, server.Options{})
		if err != nil {
			panic(err)
		}
		if err := srv.Add(svc); err != nil {
			panic(err)
		}
		err = srv.Run()
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			continue
		}
		fmt.Println(err)
	}
	// Output:
	// configuration OK
	// server: service "checked": no file configured
}
