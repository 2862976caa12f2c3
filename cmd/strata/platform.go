package main

import (
	"runtime"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func defaultPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}
