# idp-sync: two commands matter. `make demo` runs the main job on local demo servers;
# `make test` runs every test (Swift unit, integration and end-to-end tests, fixture tests).
# `make release` writes the Debian package and the tarball to dist/ (docs/install.md).
SWIFT ?= swift

.PHONY: deps deps-demo deps-release build demo test test-swift test-fixtures release release-check clean \
	bench-journal bench-scale bench-watch

# Everything the tests need.
deps:
	@scripts/install-deps test

# Only what building and the demo need.
deps-demo:
	@scripts/install-deps demo

deps-release:
	@scripts/install-deps release

build: deps-demo
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

# An optimised, static-Swift-runtime build in .build-release, packaged into dist/.
release: deps-release
	scripts/release

# The package checks (dpkg-deb, lintian, contents) against what `make release` wrote. `make test`
# runs the same tests but skips them when dist/ holds no package of this version.
release-check: release
	IDP_SYNC_DIST=$(CURDIR)/dist python3 -m pytest -q -p no:cacheprovider Fixtures/packaging

clean:
	rm -rf .build .build-release demo dist

# Benchmarks print figures; they are not tests.
bench-journal:
	scripts/bench-journal

bench-scale:
	scripts/bench-scale

bench-watch:
	scripts/bench-watch
