package privacypass_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/gotthard-proxy/gotthard/modules/privacypass"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// A proxy that asks for tokens from issuer.example before it lets requests through to
// its origin.
func Example() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer origin.Close()

	// In production the key comes from the issuer's directory, through ParsePublicKey.
	issuerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tokens, err := privacypass.New(privacypass.Options{
		IssuerName: "issuer.example",
		IssuerKeys: []*rsa.PublicKey{&issuerKey.PublicKey},
		OriginInfo: []string{"origin.example"},
	})
	if err != nil {
		panic(err)
	}
	peer, err := proxy.NewPeer(strings.TrimPrefix(origin.URL, "http://"))
	if err != nil {
		panic(err)
	}
	svc, err := proxy.NewService("edge", fixed{peer: peer}, proxy.ServiceOptions{
		Modules: []proxy.Module{tokens},
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{ln}) }()

	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	tr.CloseIdleConnections()

	// What a client reads from the challenge.
	m := regexp.MustCompile(`challenge="([^"]+)"`).FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	raw, _ := base64.URLEncoding.DecodeString(m[1])
	c, err := privacypass.ParseChallenge(raw)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, c.IssuerName, c.OriginInfo, len(c.RedemptionContext))

	svc.Close()
	fmt.Println("Serve:", <-served)
	// Output:
	// 401 issuer.example [origin.example] 32
	// Serve: <nil>
}

// fixed sends every request to one peer.
type fixed struct {
	proxy.Phases[struct{}]
	peer *proxy.Peer
}

func (fixed) NewCtx() struct{} { return struct{}{} }

func (f fixed) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return f.peer, nil
}
