# idp-sync: two commands matter. `make demo` runs the main job on local demo servers;
# `make test` runs every test (Swift unit, integration and end-to-end tests, fixture tests).
SWIFT ?= swift

.PHONY: deps build demo test test-swift test-fixtures clean bench-journal bench-scale

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

demo: build
	scripts/demo

test: deps
	$(SWIFT) build --build-tests
	$(MAKE) test-fixtures
	$(MAKE) test-swift

test-swift:
	$(SWIFT) test --skip-build

test-fixtures:
	IDP_SYNC_BIN=$(CURDIR)/.build/debug/idp-sync python3 -m pytest -q -p no:cacheprovider Fixtures deploy

clean:
	rm -rf .build demo

# Benchmarks print figures; they are not tests.
bench-journal:
	scripts/bench-journal

bench-scale:
	scripts/bench-scale
