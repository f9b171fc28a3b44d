package server_test

import (
	"context"
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
