package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Respond builds the viewer response for a cached entry: the stored status,
// header (with Age) and body, or
//   - 304 when the viewer's If-None-Match (weak comparison) or
//     If-Modified-Since says it has the object already (RFC 9110 §13.1);
//   - 206 with Content-Range for a single satisfiable byte range of a cached
//     200, honouring If-Range; 416 when the range cannot be satisfied;
//     several ranges get the whole object with 200, which RFC 9110 §14.2
//     allows (a server may ignore Range);
//   - no body for HEAD (headers as for GET, Content-Length included).
func Respond(e *Entry, r *http.Request, now time.Time) (status int, h http.Header, body []byte) {
	return respond(e, e.ResponseHeader(now), r, nil)
}

// respondOwn is Respond for an entry whose Header is the caller's alone
// (ownHeader): that map becomes the response's header, saving a copy on
// the hit path, and the entry's Header is the response's afterwards.
func respondOwn(e *Entry, r *http.Request, now time.Time) (status int, h http.Header, body []byte) {
	if !e.ownHeader {
		return Respond(e, r, now)
	}
	e.ownHeader = false
	h = e.Header
	// Age, Accept-Ranges and Content-Length share one array on a hit.
	spare := make([]string, 3)
	put(h, &spare, "Age", strconv.FormatInt(int64(e.Age(now)/time.Second), 10))
	return respond(e, h, r, spare)
}

// put sets the canonical field k to v, in the next slot of spare while one
// is left (capped, so that an Add cannot spill into the next field), else
// in a slice of its own as Header.Set does.
func put(h http.Header, spare *[]string, k, v string) {
	s := *spare
	if len(s) == 0 {
		h[k] = []string{v}
		return
	}
	s[0] = v
	h[k] = s[0:1:1]
	*spare = s[1:]
}

// respond builds the response in h, the stored header with Age set; it
// reads e.Header only for validators, which it never changes in h. The
// fields it sets take their values from spare while it lasts (see put).
func respond(e *Entry, h http.Header, r *http.Request, spare []string) (status int, _ http.Header, body []byte) {
	h.Del(OwnTargetedField) // it speaks to this edge only
	status, body = e.Status, e.Body
	if e.Status == http.StatusOK || e.Status == http.StatusNoContent {
		if notModified(e, r) {
			for _, f := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Content-Range"} {
				h.Del(f)
			}
			return http.StatusNotModified, h, nil
		}
	}
	if e.Status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		put(h, &spare, "Accept-Ranges", "bytes")
		if rg := r.Header.Get("Range"); rg != "" && ifRangeHolds(e, r.Header.Get("If-Range")) {
			start, end, ok, multi := parseRange(rg, int64(len(e.Body)))
			switch {
			case multi:
			case !ok:
				h.Set("Content-Range", "bytes */"+strconv.Itoa(len(e.Body)))
				h.Set("Content-Length", "0")
				h.Del("Content-Type")
				return http.StatusRequestedRangeNotSatisfiable, h, nil
			default:
				h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.Itoa(len(e.Body)))
				status, body = http.StatusPartialContent, e.Body[start:end+1]
			}
		}
	}
	if e.Status != http.StatusNoContent && e.Status != http.StatusNotModified {
		put(h, &spare, "Content-Length", strconv.Itoa(len(body)))
	}
	if r.Method == http.MethodHead {
		body = nil
	}
	return status, h, body
}

// notModified evaluates If-None-Match, else If-Modified-Since.
func notModified(e *Entry, r *http.Request) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		et := e.Header.Get("ETag")
		if et == "" {
			return false
		}
		for c := range strings.SplitSeq(inm, ",") {
			c = strings.TrimSpace(c)
			if c == "*" || strings.TrimPrefix(c, "W/") == strings.TrimPrefix(et, "W/") {
				return true
			}
		}
		return false
	}
	ims, ok := httpDate(r.Header.Get("If-Modified-Since"))
	if !ok {
		return false
	}
	lm, ok := httpDate(e.Header.Get("Last-Modified"))
	return ok && !lm.After(ims)
}

// ifRangeHolds reports whether a Range may be honoured under If-Range: its
// validator must match strongly (RFC 9110 §13.1.5), else the full object.
func ifRangeHolds(e *Entry, ifRange string) bool {
	if ifRange == "" {
		return true
	}
	if strings.HasPrefix(ifRange, `"`) {
		return ifRange == e.Header.Get("ETag")
	}
	lm := e.Header.Get("Last-Modified")
	return lm != "" && ifRange == lm
}

// parseRange reads one "bytes=" range against a size. multi is true for a
// list of ranges (or anything but bytes), which we answer with the whole
// object; ok is false when the single range is unsatisfiable.
func parseRange(v string, size int64) (start, end int64, ok, multi bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, true
	}
	if first == "" { // suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, true
		}
		if n == 0 || size == 0 {
			return 0, 0, false, false
		}
		return max(size-n, 0), size - 1, true, false
	}
	s, err := strconv.ParseInt(first, 10, 64)
	if err != nil || s < 0 {
		return 0, 0, false, true
	}
	e := size - 1
	if last != "" {
		if e, err = strconv.ParseInt(last, 10, 64); err != nil || e < s {
			return 0, 0, false, true
		}
	}
	if s >= size {
		return 0, 0, false, false
	}
	return s, min(e, size-1), true, false
}
