package cache

import (
	"time"

	digest "github.com/opencontainers/go-digest"
)

var bucketHTTP = []byte("http")

// HTTPRecord is what the last download of a URL returned: the validators to
// send back on the next request (If-None-Match, If-Modified-Since), and the
// blob in the content store that holds the body, so an unchanged file (an
// HTTP 304) is neither downloaded nor read again to key a step.
type HTTPRecord struct {
	ETag         string `json:",omitempty"`
	LastModified string `json:",omitempty"` // the header as sent, RFC 1123
	// Digest and Size name the body's blob in the content store.
	Digest digest.Digest
	Size   int64
	// Filename is the name from a Content-Disposition header, if any.
	Filename string    `json:",omitempty"`
	Fetched  time.Time `json:",omitzero"`
}

// HTTP returns the record of url, or nil.
func (r *Records) HTTP(url string) (*HTTPRecord, error) {
	return get[HTTPRecord](r.db, bucketHTTP, url)
}

// SaveHTTP records the last download of url.
func (r *Records) SaveHTTP(url string, rec HTTPRecord) error {
	return put(r.db, bucketHTTP, url, rec)
}
