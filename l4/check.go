package l4

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Check reports what would keep the service from working, without listening or
// connecting (its options were validated by [NewService]): no endpoints, an address
// that is not host:port, an empty socket path, a TLS endpoint's certificate that is not
// valid now. It makes the Service a server.Checker, so a server.Server in test mode
// (-t) calls it. The problems are joined with [errors.Join]; nil means none was found.
func (s *Service[C]) Check() error {
	var errs []error
	eps := s.Endpoints()
	if len(eps) == 0 {
		errs = append(errs, errors.New("l4: no endpoints (AddTCP, AddTLS or AddUnix)"))
	}
	now := time.Now()
	for _, ep := range eps {
		switch ep.Network() {
		case "unix":
			if ep.String() == "" {
				errs = append(errs, errors.New("l4: endpoint unix: empty socket path"))
			}
		default:
			if _, _, err := net.SplitHostPort(ep.String()); err != nil {
				errs = append(errs, fmt.Errorf("l4: endpoint %q: %w", ep.String(), err))
			}
		}
		e, ok := ep.(endpoint)
		if !ok || e.tls == nil {
			continue
		}
		if err := e.tls.CheckCertificates(now); err != nil {
			errs = append(errs, fmt.Errorf("l4: TLS endpoint %s: %w", e.address, err))
		}
	}
	return errors.Join(errs...)
}
