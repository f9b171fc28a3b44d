package tlspeek_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/tlspeek"
)

func ExamplePeek() {
	client, server := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		cfg := &tls.Config{ServerName: "Shop.Example", NextProtos: []string{"h2", "http/1.1"}}
		_ = tls.Client(client, cfg).Handshake() // ends when server closes
		client.Close()
	})
	defer wg.Wait()

	hello, conn, err := tlspeek.Peek(server, 0, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %q %#x\n", hello.ServerName, hello.ALPN, hello.Versions)
	conn.Close() // a proxy would copy conn to the upstream chosen for hello.ServerName
	// Output: shop.example ["h2" "http/1.1"] [0x304 0x303]
}
