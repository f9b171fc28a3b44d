package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// phaseCtx records the response phases one request ran, with their arguments.
type phaseCtx struct {
	events []string
	bodyU  []byte // the pieces UpstreamResponseBodyFilter saw, joined
	bodyR  []byte // the pieces ResponseBodyFilter saw, joined
}

// phaseRecorder proxies to peer and records the response phases of each request; the
// record of a finished request comes out of done (Logging runs last).
type phaseRecorder struct {
	Phases[*phaseCtx]
	peer *Peer
	done chan *phaseCtx
}

func (phaseRecorder) NewCtx() *phaseCtx { return &phaseCtx{} }

func (p phaseRecorder) UpstreamPeer(context.Context, *Session, *phaseCtx) (*Peer, error) {
	return p.peer, nil
}

func (phaseRecorder) UpstreamResponseFilter(_ context.Context, _ *Session, c *phaseCtx, resp *message.ResponseHeader) error {
	c.events = append(c.events, fmt.Sprintf("UpstreamResponseFilter %d len=%s", resp.Status, resp.Header.Get("Content-Length")))
	return nil
}

func (phaseRecorder) ResponseFilter(_ context.Context, _ *Session, c *phaseCtx, resp *message.ResponseHeader) error {
	c.events = append(c.events, fmt.Sprintf("ResponseFilter %d", resp.Status))
	resp.Header.Add("X-Phase", "head")
	return nil
}

func (phaseRecorder) UpstreamResponseBodyFilter(_ context.Context, _ *Session, c *phaseCtx, chunk []byte, end bool) ([]byte, error) {
	c.bodyU = append(c.bodyU, chunk...)
	c.body("UpstreamResponseBodyFilter", end)
	return chunk, nil
}

func (phaseRecorder) ResponseBodyFilter(_ context.Context, _ *Session, c *phaseCtx, chunk []byte, end bool) ([]byte, error) {
	c.bodyR = append(c.bodyR, chunk...)
	c.body("ResponseBodyFilter", end)
	return chunk, nil
}

// body records a body phase.
func (c *phaseCtx) body(phase string, end bool) {
	ev := phase + " piece"
	if end {
		ev = phase + " end"
	}
	c.events = append(c.events, ev)
}

// collapsePieces drops the repeats of a pair of events that follows the same pair:
// the number of body pieces depends on how the bytes arrive, their order does not.
func collapsePieces(ev []string) []string {
	out := make([]string, 0, len(ev))
	for i := 0; i < len(ev); i++ {
		if n := len(out); n >= 2 && i+1 < len(ev) && out[n-2] == ev[i] && out[n-1] == ev[i+1] {
			i++
			continue
		}
		out = append(out, ev[i])
	}
	return out
}

func (phaseRecorder) ResponseTrailerFilter(_ context.Context, _ *Session, c *phaseCtx, trailers *message.Header) error {
	c.events = append(c.events, "ResponseTrailerFilter X-Digest="+trailers.Get("X-Digest"))
	trailers.Add("X-Phase-Trailer", "seen")
	return nil
}

func (p phaseRecorder) Logging(_ context.Context, _ *Session, c *phaseCtx, err error) {
	c.events = append(c.events, fmt.Sprintf("Logging %v", err))
	p.done <- c
}

// The response phases run in the same order, with the same arguments, whatever the
// response's source: an HTTP/1.x peer, an h2c peer or an HTTP/2 peer over TLS, to an
// HTTP/1.1 or an h2c client. (respond is the one place that runs them; a source that
// ran its own copy would drift from it.)
func TestResponsePhasesSameForEverySource(t *testing.T) {
	h2c, _ := startH2Origin(t, false)
	h2tls, roots := startH2Origin(t, true)
	peers := []struct {
		name string
		peer *Peer
	}{
		{"h1", &Peer{Address: trailerOrigin(t)}},
		{"h2c", &Peer{Address: h2c, Protocol: ProtoHTTP2}},
		{"h2", &Peer{Address: h2tls, Protocol: ProtoHTTP2, TLS: &PeerTLS{ServerName: "example.com", RootCAs: roots}}},
	}
	const size = 100 << 10 // several pieces whatever the protocol
	digest := patternSum(size)
	want := []string{
		"UpstreamResponseFilter 200 len=",
		"ResponseFilter 200",
		"UpstreamResponseBodyFilter piece",
		"ResponseBodyFilter piece",
		"UpstreamResponseBodyFilter end",
		"ResponseBodyFilter end",
		"ResponseTrailerFilter X-Digest=" + digest,
		"Logging <nil>",
	}
	for _, p := range peers {
		app := phaseRecorder{peer: p.peer, done: make(chan *phaseCtx, 1)}
		svc, logs := newTestService[*phaseCtx](t, app, ServiceOptions{})
		base := "http://" + startProxy(t, svc)
		clients := []struct {
			name string
			cl   *http.Client
		}{{"h1", testClient(t)}, {"h2c", h2cClient(t)}}
		for _, cl := range clients {
			t.Run(cl.name+"→"+p.name, func(t *testing.T) {
				resp, err := cl.cl.Get(base + fmt.Sprintf("/x?size=%d", size))
				if err != nil {
					t.Fatalf("%v\n%s", err, logs.String())
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				var rec *phaseCtx
				select {
				case rec = <-app.done:
				case <-time.After(10 * time.Second):
					t.Fatalf("no Logging\n%s", logs.String())
				}
				if got := collapsePieces(rec.events); !slices.Equal(got, want) {
					t.Errorf("phases:\n  %s\nwant:\n  %s", strings.Join(rec.events, "\n  "), strings.Join(want, "\n  "))
				}
				if len(rec.bodyU) != size || string(rec.bodyR) != string(rec.bodyU) || string(body) != string(rec.bodyU) {
					t.Errorf("body: upstream filter saw %d bytes, response filter %d, client got %d", len(rec.bodyU), len(rec.bodyR), len(body))
				}
				if resp.StatusCode != 200 || resp.Header.Get("X-Phase") != "head" {
					t.Errorf("client got %d, X-Phase %q", resp.StatusCode, resp.Header.Get("X-Phase"))
				}
				if resp.Trailer.Get("X-Digest") != digest || resp.Trailer.Get("X-Phase-Trailer") != "seen" {
					t.Errorf("client got trailers %v", resp.Trailer)
				}
			})
		}
	}
}
