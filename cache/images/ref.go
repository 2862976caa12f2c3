package images

import (
	"fmt"
	"regexp"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

const (
	defaultDomain = "docker.io"
	officialRepo  = "library/"
	defaultTag    = "latest"
	maxNameLength = 255
)

var (
	pathComponentRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	domainRe        = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	tagRe           = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	hex64Re         = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// Normalize turns a reference as a user types it into the full name the
// store keys images by: a domain (docker.io by default, with "library/" for
// single-component names), a path, and a tag (latest unless the reference has
// a tag or a digest). Examples:
//
//	busybox                  -> docker.io/library/busybox:latest
//	x/y:1                    -> docker.io/x/y:1
//	localhost:5000/a         -> localhost:5000/a:latest
//	alpine@sha256:<hex>      -> docker.io/library/alpine@sha256:<hex>
func Normalize(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("invalid reference \"\": empty")
	}
	if hex64Re.MatchString(ref) {
		return "", fmt.Errorf("invalid reference %q: cannot be a 64-character hexadecimal string", ref)
	}
	rest, dgst, hasDigest := strings.Cut(ref, "@")
	if hasDigest {
		if err := digest.Digest(dgst).Validate(); err != nil {
			return "", fmt.Errorf("invalid reference %q: digest: %w", ref, err)
		}
	}
	name, tag := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		name, tag = rest[:i], rest[i+1:]
		if !tagRe.MatchString(tag) {
			return "", fmt.Errorf("invalid reference %q: invalid tag %q", ref, tag)
		}
	}
	domain, path, err := splitDomain(name)
	if err != nil {
		return "", fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	full := domain + "/" + path
	if len(full) > maxNameLength {
		return "", fmt.Errorf("invalid reference %q: name longer than %d characters", ref, maxNameLength)
	}
	if tag == "" && !hasDigest {
		tag = defaultTag
	}
	if tag != "" {
		full += ":" + tag
	}
	if hasDigest {
		full += "@" + dgst
	}
	return full, nil
}

// splitDomain separates and checks the domain and path of a name without tag
// or digest.
func splitDomain(name string) (domain, path string, err error) {
	first, remainder, ok := strings.Cut(name, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		domain, path = first, remainder
		if !domainRe.MatchString(domain) {
			return "", "", fmt.Errorf("invalid domain %q", domain)
		}
	} else {
		domain, path = defaultDomain, name
	}
	if domain == "index.docker.io" {
		domain = defaultDomain
	}
	if domain == defaultDomain && !strings.Contains(path, "/") {
		path = officialRepo + path
	}
	for c := range strings.SplitSeq(path, "/") {
		if !pathComponentRe.MatchString(c) {
			if strings.ToLower(c) != c {
				return "", "", fmt.Errorf("repository name must be lowercase")
			}
			return "", "", fmt.Errorf("invalid repository path component %q", c)
		}
	}
	return domain, path, nil
}

// Familiar is the short form of a normalized name, as docker displays it:
// "docker.io/library/busybox:latest" -> "busybox:latest",
// "docker.io/x/y:1" -> "x/y:1". Other domains are kept, and so is
// docker.io when the rest would read as a domain ("docker.io/a.b/c").
func Familiar(name string) string {
	rest, ok := strings.CutPrefix(name, defaultDomain+"/")
	if !ok {
		return name
	}
	// A first component that looks like a registry ("0.0/x", "host:5000/x",
	// "localhost/x") would be read back as one: keep the domain then.
	if first, _, found := strings.Cut(rest, "/"); found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return name
	}
	if short, ok := strings.CutPrefix(rest, officialRepo); ok {
		if repo, _, _ := strings.Cut(short, "@"); !strings.Contains(strings.SplitN(repo, ":", 2)[0], "/") {
			return short
		}
	}
	return rest
}

// splitTag returns the repository and tag of a normalized name; tag is empty
// when the name has none (a digest-only reference).
func splitTag(name string) (repo, tag string) {
	rest, _, _ := strings.Cut(name, "@")
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		return rest[:i], rest[i+1:]
	}
	return rest, ""
}

// Tag is the tag of a normalized name ("latest" for
// "docker.io/library/busybox:latest"), or "" if it has only a digest.
func Tag(name string) string {
	_, tag := splitTag(name)
	return tag
}
