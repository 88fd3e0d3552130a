# Shopfront. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The database: DATABASE_URL when set, else localhost:5432, else a
# project-local cluster under .data/ (see cmd/devdb). Evaluated only by the
# targets that need it.
DB = $(shell go run ./cmd/devdb)

GO_TEST_FLAGS ?= -race -count=1 -timeout 30m

.PHONY: help
help: ## help: list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## [a-z-]+: /  \1\t/' | expand -t 14

.PHONY: run
run: build ## run: set up the database, migrate, seed and serve on http://localhost:3000
	@url="$(DB)" && [ -n "$$url" ] && \
	DATABASE_URL="$$url" ./bin/shopfront migrate && \
	DATABASE_URL="$$url" ./bin/shopfront seed && \
	DATABASE_URL="$$url" ./bin/shopfront serve

.PHONY: test
test: ## test: the whole suite (real PostgreSQL, SMTP and Chromium) with the race detector
	@url="$(DB)" && [ -n "$$url" ] && \
	DATABASE_URL="$$url" go test $(GO_TEST_FLAGS) ./...

FUZZTIME ?= 10s
FUZZ_PKGS ?= ./models ./handlers

.PHONY: fuzz
fuzz: ## fuzz: a short run of every fuzz target, FUZZTIME (10s) each; crashers land in testdata/fuzz
	@url="$(DB)" && [ -n "$$url" ] && export DATABASE_URL="$$url" && \
	for pkg in $(FUZZ_PKGS); do \
		for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			dir=$$pkg/testdata/fuzz/$$target; before=$$(ls $$dir 2>/dev/null); \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			if ! out=$$(go test $$pkg -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s 2>&1); then \
				if [ "$$(ls $$dir 2>/dev/null)" = "$$before" ] && [ "$$(grep -c -- '^--- FAIL' <<<"$$out")" = 1 ] && \
					grep -qx '    context deadline exceeded' <<<"$$out"; then \
					echo "  ignored: 'context deadline exceeded' as -fuzztime ends, no crasher (go.dev/issue/75804)"; \
				else \
					echo "$$out"; exit 1; \
				fi; \
			fi; \
		done; \
	done

.PHONY: build
build: ## build: compile bin/shopfront
	go build -o bin/shopfront ./cmd/shopfront

.PHONY: generate
generate: ## generate: regenerate the templ components
	go tool templ generate

.PHONY: fmt
fmt: ## fmt: format Go and templ sources
	gofmt -w $$(git ls-files '*.go' | grep -v '_templ.go$$')
	go tool templ fmt views

.PHONY: lint
lint: ## lint: gofmt, go vet, and generated templ code up to date
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed: $$out"; exit 1; }
	go vet ./...
	go tool templ generate -check

.PHONY: bench
bench: build ## bench: load the real server with wrk (see README, Performance)
	@url="$(DB)" && [ -n "$$url" ] && DATABASE_URL="$$url" go run ./cmd/bench

.PHONY: assets
assets: ## assets: re-vendor htmx and Pico CSS from npm into static/
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent htmx.org@2.0.11 @picocss/pico@2.1.1 >/dev/null && \
	tar xzf htmx.org-2.0.11.tgz && cp package/dist/htmx.min.js $(CURDIR)/static/js/htmx.min.js && rm -rf package && \
	tar xzf picocss-pico-2.1.1.tgz && cp package/css/pico.min.css $(CURDIR)/static/css/pico.min.css && rm -rf $$tmp
