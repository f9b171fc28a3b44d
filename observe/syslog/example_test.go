package syslog_test

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/gotthard-proxy/gotthard/observe/syslog"
)

func Example() {
	// A receiver of the example's own; a program names its syslog server or leaves
	// Network and Addr empty for /dev/log.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pc.Close()

	h, err := syslog.New(syslog.Options{
		Network:  "udp",
		Addr:     pc.LocalAddr().String(),
		Hostname: "edge1",
		AppName:  "gateway",
		ProcID:   "4711",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	logger := slog.New(h) // for server.Options.Logger and proxy.ServiceOptions.Logger
	logger.Error("upstream failed", "peer", "10.0.0.7:8080", "status", 502)

	buf := make([]byte, 2048)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	f := strings.SplitN(string(buf[:n]), " ", 3) // PRI and VERSION, TIMESTAMP, the rest
	fmt.Println(f[0], "TIMESTAMP", f[2])
	// Output:
	// <27>1 TIMESTAMP edge1 gateway 4711 - [gotthard@32473 peer="10.0.0.7:8080" status="502"] upstream failed
}
