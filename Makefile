# The two commands of the README: `make run` and `make test`. Everything else
# is CMake (CMakePresets.json); this file only strings the steps together.
.PHONY: run test build release bench fmt lint clean deps

JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./attune-data
# The compile_commands.json that lint's clang-tidy reads (the dev preset's).
TIDY_BUILD ?= build/dev

run: release
	@echo "attune: serving on http://$(LISTEN)/  (data in $(DATA_DIR); Ctrl-C to stop)"
	@echo "  try:  curl -s localhost:8080/healthz"
	@echo "        curl -s -XPOST localhost:8080/v1/events -d '{\"type\":\"view_item\",\"user_id\":\"42\",\"item_id\":\"987\"}'"
	@echo "        curl -s localhost:8080/metrics | head"
	./build/release/attune serve --listen $(LISTEN) --data-dir $(DATA_DIR)

release:
	@scripts/deps.sh build
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

build:
	@scripts/deps.sh build
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev -j $(JOBS)

test:
	@scripts/deps.sh test
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev -j $(JOBS)
	@cd build/asan && ctest --output-on-failure -j 2 --timeout 600

bench: release
	@scripts/deps.sh bench
	@bench/run.sh

fmt:
	@scripts/deps.sh lint
	@find src include tests bench -name '*.[ch]' | xargs clang-format -i

lint: build
	@scripts/deps.sh lint
	@find src include tests -name '*.[ch]' | xargs clang-format --dry-run -Werror
	@run-clang-tidy -quiet -p $(TIDY_BUILD) 'src/.*' >$(TIDY_BUILD)/tidy.log 2>&1 || { \
	  sed 's/\x1b\[[0-9;]*m//g; s|^$(CURDIR)/||; s/,-warnings-as-errors\]/]/' $(TIDY_BUILD)/tidy.log | \
	    grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error): ' | sort -u | grep . || \
	    sed 's/\x1b\[[0-9;]*m//g' $(TIDY_BUILD)/tidy.log; \
	  echo "clang-tidy failed: findings above (FILE:LINE:COL: ... [CHECK]); full output in $(TIDY_BUILD)/tidy.log" >&2; \
	  exit 1; }
	@cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
	  -I include -I src/core src include

clean:
	rm -rf build
