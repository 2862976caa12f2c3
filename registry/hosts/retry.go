package hosts

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Retry is the policy for a request that failed in a way a later try may
// not: an answer with status 408, 429, 500, 502, 503 or 504, or the
// connection dropped before the answer (EOF, reset, broken pipe). Nothing
// else is retried: not 4xx answers, not refused connections, and not
// timeouts, so a registry that stops answering fails after one
// Timeouts-bounded try. The n-th retry waits Backoff·3^(n-1), plus up to
// 10% jitter. go-containerregistry applies the same policy to whole blob
// uploads.
type Retry struct {
	// Attempts bounds the tries of one request, the first included; 0
	// means 3, 1 turns retries off.
	Attempts int
	// Backoff is the wait before the first retry; 0 means 1s.
	Backoff time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 3
	}
	if r.Backoff <= 0 {
		r.Backoff = time.Second
	}
	return r
}

// retryStatusCodes are the answers retried.
var retryStatusCodes = []int{
	http.StatusRequestTimeout,
	http.StatusTooManyRequests,
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

func (r Retry) backoff() remote.Backoff {
	return remote.Backoff{Duration: r.Backoff, Factor: 3, Jitter: 0.1, Steps: r.Attempts}
}

// remoteOptions sets go-containerregistry's retry policy to r.
func (r Retry) remoteOptions() []remote.Option {
	return []remote.Option{
		remote.WithRetryBackoff(r.backoff()),
		remote.WithRetryPredicate(retryable),
		remote.WithRetryStatusCodes(retryStatusCodes...),
	}
}

// wrap is rt retrying by r, for requests made outside package remote.
func (r Retry) wrap(rt http.RoundTripper) http.RoundTripper {
	return transport.NewRetry(rt,
		transport.WithRetryBackoff(r.backoff()),
		transport.WithRetryPredicate(retryable),
		transport.WithRetryStatusCodes(retryStatusCodes...))
}

// retryable reports whether a failed try is worth another.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return slices.Contains(retryStatusCodes, te.StatusCode)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}
