package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h2"
)

type contextT = context.Context

func anyString(v any) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(v)
}

func statusLine(status int, text string) string {
	return strconv.Itoa(status) + " " + text + "\n"
}

// levelFor picks the log level of a failed request: client-side trouble is common and
// not the operator's fault, so it logs at Info; the rest at Warn or Error.
func levelFor(e *Error) slog.Level {
	switch e.Source {
	case Downstream:
		var re *h2.ResetError
		if e.Type == ConnectionClosed || errors.As(e, &re) {
			return slog.LevelDebug // a client that went away or cancelled: its right
		}
		return slog.LevelInfo
	case Upstream:
		return slog.LevelWarn
	}
	if e.Type == HTTPStatus {
		return slog.LevelDebug
	}
	if errors.Is(e, ErrShutdown) {
		return slog.LevelWarn // cut by a forced close: expected, and counted
	}
	return slog.LevelError
}

// aLongTimeAgo is a deadline in the past, which wakes a blocked read at once. It is
// never changed.
var aLongTimeAgo = time.Unix(1, 0)
