package testnet

import (
	"io"
	"testing"
)

func TestPair(t *testing.T) {
	client, server := Pair(t)
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "ping" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if client.RemoteAddr().String() != server.LocalAddr().String() {
		t.Fatalf("not the two ends of one connection: %v and %v", client.RemoteAddr(), server.LocalAddr())
	}
}
