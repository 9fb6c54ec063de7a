# clamrest -- build, run and test. `make run` and `make test` are the two commands a newcomer needs.

CC        ?= cc
PKGS       = libclamav libmicrohttpd libcares libcrypto
WARN       = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wconversion -Werror
CFLAGS    ?= -O2 -g
# LIBCLAMAV=patched (the default): libclamav 1.4.6 built from Debian's source with
# third_party/libclamav/*.patch by scripts/build-libclamav, once (7-20 minutes), into
# build/libclamav-<hash>/; see third_party/libclamav/README.md. LIBCLAMAV=system: Debian's
# libclamav-dev, objects in build/system/. LIBCLAMAV_PREFIX=DIR: a library built before (the image).
LIBCLAMAV ?= patched
# The library is built (or found) when a recipe first needs it, so that `make clean` or `make down`
# never build it; once per make process.
libclamav_prefix = $(if $(_lcp),,$(eval _lcp := $(shell sh scripts/build-libclamav))$(if $(_lcp),,$(error scripts/build-libclamav failed)))$(_lcp)
ifeq ($(LIBCLAMAV),patched)
LIBCLAMAV_PREFIX ?= $(libclamav_prefix)
PKGS       = libmicrohttpd libcares libcrypto
CLAMAV_CFLAGS = -I$(LIBCLAMAV_PREFIX)/include
# Installed (make install): the library is in ../lib/clamrest next to bin/; in the tree: the build.
CLAMAV_LIBS   = -L$(LIBCLAMAV_PREFIX)/lib -Wl,-rpath,'$$ORIGIN/../lib/clamrest' -Wl,-rpath,$(LIBCLAMAV_PREFIX)/lib -lclamav
LIBCLAMAV_ID  = $(LIBCLAMAV_PREFIX)
else ifeq ($(LIBCLAMAV),system)
BUILD     ?= build/system
LIBCLAMAV_ID  = system
else
$(error LIBCLAMAV is patched or system)
endif
# Always applied, also when CFLAGS is given on the command line (as asan-test does).
BASE       = -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CLAMAV_CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS     = $(CLAMAV_LIBS) $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lresolv -pthread
BUILD     ?= build
PYTHON     = /usr/bin/python3

LIB_SRC    = $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ    = $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/%)
FUZZ_SRC   = $(wildcard fuzz/fuzz_*.c)
FUZZ_NAMES = $(FUZZ_SRC:fuzz/%.c=%)
REPLAY_BIN = $(FUZZ_NAMES:%=$(BUILD)/replay/%)
FUZZ_BIN   = $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)

.PHONY: FORCE all install deps run up down logs perf-screenshots test unit e2e replay asan-test perf-smoke perf perf-distributed bench bench-real soak valgrind fuzz clean \
	libclamav libclamav-diff libclamav-diff-long libclamav-asan \
	image image-save image-test compose-test k8s-schema

all: $(BUILD)/clamrest

deps:
	@sh scripts/install-deps

# The binary, the man page and (LIBCLAMAV=patched) the library, stripped, in $(PREFIX)/lib/clamrest/,
# where the binary looks first. DESTDIR for packaging.
PREFIX ?= /usr/local
install: all
	install -D -m 0755 $(BUILD)/clamrest $(DESTDIR)$(PREFIX)/bin/clamrest
	install -D -m 0644 docs/clamrest.8 $(DESTDIR)$(PREFIX)/share/man/man8/clamrest.8
	@if [ "$(LIBCLAMAV)" = patched ]; then set -e; d=$(DESTDIR)$(PREFIX)/lib/clamrest; \
	  lib=$$(readlink -f $(LIBCLAMAV_PREFIX)/lib/libclamav.so.12); mkdir -p $$d; \
	  echo "install $$lib -> $$d/"; \
	  strip --strip-unneeded -o $$d/$$(basename $$lib).tmp $$lib && chmod 0644 $$d/$$(basename $$lib).tmp && \
	  mv $$d/$$(basename $$lib).tmp $$d/$$(basename $$lib) && ln -sfn $$(basename $$lib) $$d/libclamav.so.12; fi

# Which libclamav the objects in $(BUILD) were built against: another one (another patch is another
# prefix, and the binaries' rpath names it) rebuilds them.
$(BUILD)/libclamav.id: FORCE
	@mkdir -p $(dir $@)
	@[ "$$(cat $@ 2>/dev/null)" = '$(LIBCLAMAV_ID)' ] || echo '$(LIBCLAMAV_ID)' >$@

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) $(BUILD)/libclamav.id
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -c -o $@ $<

$(BUILD)/clamrest: $(BUILD)/obj/main.o $(LIB_OBJ)
	$(CC) $(BASE) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test_%: tests/unit/test_%.c $(LIB_OBJ)
	$(CC) $(BASE) $(CFLAGS) -Isrc -Wno-missing-prototypes -o $@ $^ $(LDLIBS) -lcmocka

# Fuzz targets replayed over their corpus and regression inputs with a plain driver (any compiler).
$(BUILD)/replay/%: fuzz/%.c fuzz/replay.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -Isrc -Wno-missing-prototypes -o $@ $^ $(LDLIBS)

# Real libFuzzer builds (clang).
$(BUILD)/fuzz/%: fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
	  $(CLAMAV_CFLAGS) $(shell pkg-config --cflags $(PKGS)) -o $@ $^ $(LDLIBS)

run: deps all client-examples/5MiB.bin
	@CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest sh scripts/run-demo

# The same demo service in the background (HOST=0.0.0.0 to open it), with a loopback dnsmasq for
# /check_version; state and logs in build/up/. See scripts/demo-service.
up: deps all client-examples/5MiB.bin
	@CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest sh scripts/demo-service up

down:
	@sh scripts/demo-service down

logs:
	@sh scripts/demo-service logs

client-examples/5MiB.bin: scripts/make-sample-file
	sh scripts/make-sample-file $@ 5242880

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; ./$$t; done

replay: $(REPLAY_BIN)
	@set -e; for n in $(FUZZ_NAMES); do \
	  echo "== replay $$n"; ./$(BUILD)/replay/$$n fuzz/corpus/$$n fuzz/regression/$$n; done

E2E_MARKS ?= not slow
e2e: all client-examples/5MiB.bin
	timeout 1500 env CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest $(PYTHON) -m pytest -q -p no:cacheprovider -m "$(E2E_MARKS)" tests/e2e

perf-smoke: all client-examples/5MiB.bin
	@CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest sh perf/run-perf smoke

perf: deps all client-examples/5MiB.bin
	@CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest sh perf/run-perf single

perf-distributed: deps all client-examples/5MiB.bin
	@CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest sh perf/run-perf distributed

# perf/landing.png, stats.png, charts.png from a real run of the browser test (tests/e2e/test_locust_ui.py).
perf-screenshots: deps all client-examples/5MiB.bin
	LOCUST_UI_SCREENSHOTS=$(CURDIR)/perf CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e/test_locust_ui.py -k six_names

bench: deps all
	@LIBCLAMAV_PREFIX=$(if $(filter patched,$(LIBCLAMAV)),$(LIBCLAMAV_PREFIX)) CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest sh bench/run-bench

# The same against a real-size synthetic database (bench/gen-real-db, 7.55M signatures, ~2 GB per
# engine; generated once into build/bench/db-real): < 15 minutes.
bench-real: deps all
	@LIBCLAMAV_PREFIX=$(if $(filter patched,$(LIBCLAMAV)),$(LIBCLAMAV_PREFIX)) CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest BENCH_DB=real nice sh bench/run-bench

# libclamav built with third_party/libclamav/*.patch (cached in build/libclamav-<hash>/), and the
# differential test: the speed patches answer as the fix patches alone (LIBCLAMAV_FIXES, built in the
# same tree on the way), which answer as Debian's but on the fix cases (tests/libclamav/fix_cases.py).
libclamav:
	@sh scripts/build-libclamav

# The fixes-only prefix (the default build above makes it on its way), for the recipes below.
libclamav_fixes = fixes=$$(sh scripts/build-libclamav --fixes)

libclamav-diff:
	$(libclamav_fixes) && LIBCLAMAV_PATCHED=$(libclamav_prefix) LIBCLAMAV_FIXES=$$fixes \
	  timeout 1500 $(PYTHON) -m pytest -q -p no:cacheprovider tests/libclamav

# The same with other seeds of every generated file and database (DIFF_SEEDS), outside make test.
DIFF_SEEDS ?= 1 2 3 4 5 6 7 8
libclamav-diff-long:
	$(libclamav_fixes) && for s in $(DIFF_SEEDS); do DIFF_SEED=$$s LIBCLAMAV_PATCHED=$(libclamav_prefix) \
	  LIBCLAMAV_FIXES=$$fixes timeout 3000 $(PYTHON) -m pytest -q -p no:cacheprovider \
	  tests/libclamav -k "same_answers or fix_case or issue20" || exit 1; done

# The same patched library built with ASan+UBSan (another ~10-35 minutes, once) scanning the corpora.
libclamav-asan:
	$(libclamav_fixes) && asan=$$(sh scripts/build-libclamav --asan) && LIBCLAMAV_PATCHED=$(libclamav_prefix) \
	  LIBCLAMAV_ASAN=$$asan LIBCLAMAV_FIXES=$$fixes timeout 3000 $(PYTHON) -m pytest -q -p no:cacheprovider \
	  tests/libclamav -k sanitized

# The whole suite, then again under AddressSanitizer + UndefinedBehaviorSanitizer; with the patched
# libclamav (the default) also its differential test against Debian's (libclamav-diff).
test: deps
	$(MAKE) all unit replay k8s-schema
	@if [ "$(LIBCLAMAV)" = patched ]; then $(MAKE) libclamav-diff; fi
	$(MAKE) e2e
	$(MAKE) perf-smoke
	$(MAKE) asan-test

asan-test: export ASAN_OPTIONS = abort_on_error=0:detect_leaks=1
asan-test: export LSAN_OPTIONS = suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
asan-test: export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
asan-test:
	$(MAKE) BUILD=build/asan CC=gcc \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  E2E_MARKS="not slow and not client_side" all unit replay e2e

SOAK_TIME ?= 600
soak: deps all
	SOAK_TIME=$(SOAK_TIME) CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest $(PYTHON) tests/soak.py

# The end-to-end suite with the server under valgrind (slow: scans are about 50x slower);
# tests/valgrind-wrapper says how valgrind is run.
valgrind: deps all
	CLAMREST_REAL_BIN=$(CURDIR)/$(BUILD)/clamrest CLAMREST_BIN=$(CURDIR)/tests/valgrind-wrapper \
	  CLAMREST_SLOW=1 $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow" tests/e2e

FUZZ_TIME ?= 60
fuzz: $(FUZZ_BIN)
	@set -e; for n in $(FUZZ_NAMES); do mkdir -p build/fuzz-corpus/$$n; \
	  echo "== fuzz $$n for $(FUZZ_TIME)s"; \
	  ./$(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_TIME) -artifact_prefix=fuzz/regression/$$n/ \
	    build/fuzz-corpus/$$n fuzz/corpus/$$n; done

# Kubernetes manifests against the API models, unknown fields refused (tests/k8s). npm install
# once (into build/, nothing in git but package.json and its lock), offline after that.
K8S_CHECK = $(BUILD)/k8s-check
$(K8S_CHECK)/node_modules/.installed: tests/k8s/package.json tests/k8s/package-lock.json
	@mkdir -p $(K8S_CHECK)
	cp tests/k8s/package.json tests/k8s/package-lock.json $(K8S_CHECK)/
	cd $(K8S_CHECK) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

k8s-schema: $(K8S_CHECK)/node_modules/.installed
	K8S_CHECK_MODULES=$(CURDIR)/$(K8S_CHECK)/node_modules $(PYTHON) -m pytest -q -p no:cacheprovider tests/k8s

# Containers, with podman (scripts/image: base image by debootstrap when there is none, Docker format
# so HEALTHCHECK stays). See deploy/README.md.
image:
	@sh scripts/image deps
	@sh scripts/image build

image-save: image
	@sh scripts/image save

image-test: image
	timeout 900 $(PYTHON) -m pytest -v -p no:cacheprovider tests/container/test_image.py
	@sh scripts/image size

compose-test:
	@sh scripts/image deps
	@WITH_FRESHCLAM=1 sh scripts/image build
	timeout 900 $(PYTHON) -m pytest -v -s -p no:cacheprovider tests/container/test_compose.py

# A service of `make up` is stopped first: its pid files are in build/.
clean:
	@if [ -f build/up/clamrest.pid ] || [ -f build/up/dnsmasq.pid ]; then sh scripts/demo-service down; fi
	rm -rf build
