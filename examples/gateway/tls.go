package main

import (
	"errors"
	"log/slog"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// newTLS checks the TLS flags and loads the certificate for -tls-listen. ticketKeys, if
// not empty, is a file of session ticket keys (tls.Options.TicketKeyFile): shared by the
// processes of a graceful upgrade, it lets clients resume their sessions on the new one.
func newTLS(addr, cert, key, ticketKeys string, logger *slog.Logger) (*gtls.Config, error) {
	if addr == "" || cert == "" || key == "" {
		return nil, errors.New("-tls-listen, -cert and -key go together")
	}
	return gtls.New(gtls.Options{
		Logger:        logger,
		Certificates:  []gtls.CertFile{{CertFile: cert, KeyFile: key}},
		TicketKeyFile: ticketKeys,
	})
}
