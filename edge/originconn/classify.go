package originconn

import (
	"context"
	"errors"
	"io"
	"net/textproto"
	"strings"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// Kind is how the edge classifies a failed origin fetch, after CloudFront's
// detailed result types (DESIGN §4).
type Kind int

// The kinds of origin failure.
const (
	KindNone            Kind = iota // no failure
	KindDNS                         // the origin's name does not resolve
	KindConnect                     // TCP refused, or the TLS handshake or certificate check failed
	KindTimeout                     // connection attempts timed out, or the origin was silent past ResponseTimeout
	KindRead                        // the origin reset or broke the response midway
	KindInvalidResponse             // the response is not valid HTTP
	KindHeaderTooBig                // the response headers exceed MaxResponseHeaderBytes
	KindCanceled                    // the viewer's request was canceled before a response
)

// Result is the CloudFront x-edge-detailed-result-type for the kind ("" for
// KindNone: a success has its own result type). Its status, side and
// advice are in the accesslog result table.
func (k Kind) Result() accesslog.ResultType {
	switch k {
	case KindDNS:
		return accesslog.ResultOriginDnsError
	case KindConnect:
		return accesslog.ResultOriginConnectError
	case KindTimeout:
		return accesslog.ResultOriginCommError
	case KindRead:
		return accesslog.ResultOriginReadError
	case KindInvalidResponse:
		return accesslog.ResultOriginInvalidResponseError
	case KindHeaderTooBig:
		return accesslog.ResultOriginHeaderTooBigError
	case KindCanceled:
		return accesslog.ResultClientHungUpRequest
	}
	return ""
}

// String is Result as a string.
func (k Kind) String() string { return string(k.Result()) }

// Status is the status the viewer gets, from the result table: 504 for a
// timeout, 502 for the other origin failures, 0 ("000" in the log: nothing
// was sent) for KindCanceled and for KindNone.
func (k Kind) Status() int {
	if k == KindNone {
		return 0
	}
	return k.Result().Info().Status
}

// Classify classifies an error returned by the transport's RoundTrip, that
// is before a response. Errors while reading a response body belong to
// ClassifyBodyError.
//
// The dialer and the response timeout return *Error with the Kind set;
// the rest is recognised from net/http's errors, some of which are only
// text (the header limit, malformed responses).
func Classify(err error) Kind {
	if err == nil {
		return KindNone
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	switch {
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server response headers exceeded"):
		return KindHeaderTooBig
	case isRemoteAlert(err):
		// An alert right after the handshake: with TLS 1.3 the origin
		// rejects a client certificate only once the client has finished.
		return KindConnect
	case isTimeout(err):
		return KindTimeout
	case isMalformed(err, msg):
		return KindInvalidResponse
	}
	return KindRead
}

// isMalformed recognises net/http's complaints about a response that is
// not HTTP.
func isMalformed(err error, msg string) bool {
	var pe textproto.ProtocolError
	if errors.As(err, &pe) {
		return true
	}
	for _, s := range []string{
		"malformed HTTP", "malformed MIME header", "unsupported transfer encoding",
		"bad Content-Length", "invalid empty Content-Length", "multiple Content-Length",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// ClassifyBodyError classifies an error from reading a response body: the
// headers came, so any failure is the origin breaking the response
// (KindRead), except a gap longer than ResponseTimeout (KindTimeout) and a
// canceled request (KindCanceled; the edge logs ClientCommError if the
// viewer left mid-body). io.EOF and nil are KindNone.
func ClassifyBodyError(err error) Kind {
	if err == nil || errors.Is(err, io.EOF) {
		return KindNone
	}
	var e *Error
	switch {
	case errors.As(err, &e) && e.Kind == KindTimeout:
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case isTimeout(err):
		return KindTimeout
	}
	return KindRead
}
