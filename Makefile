# strata — see README.md.
GO      ?= go
BIN     := bin/strata
OUT     := out
STORE   := $(OUT)/store

.PHONY: build test demo lint bench docs clean

build:
	$(GO) build -o $(BIN) ./cmd/strata

# The test command (CI runs it as root: mounts, namespaces, overlayfs).
test:
	$(GO) test -race -count=1 -timeout 30m ./...
	@# Allocation bounds, which the race detector would skew.
	$(GO) test -count=1 -run 'AllocatesLittle|AllocatesNoBuffer' ./builder/ ./internal/bufcopy/

# Builds examples/hello on a busybox base made from Debian's busybox-static
# and writes an OCI archive.
demo: build
	mkdir -p $(OUT)
	@# The base image is imported once: a second demo is all cached.
	$(BIN) --root $(STORE) inspect busybox >/dev/null 2>&1 || { \
		scripts/busybox-rootfs.sh $(OUT)/busybox.tar && \
		$(BIN) --root $(STORE) import $(OUT)/busybox.tar busybox; }
	$(BIN) --root $(STORE) build -t hello -o type=oci,dest=$(OUT)/hello.oci.tar examples/hello

# docs/reference.md, the command reference, from the commands (their
# --help); a test fails while the committed one is out of date.
docs:
	$(GO) test -count=1 -run '^TestReferenceDocs$$' ./cmd/strata -update-docs

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin $(OUT)
