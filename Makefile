# clamrest -- build, run and test. `make run` and `make test` are the two commands a newcomer needs.

CC        ?= cc
PKGS       = libclamav libmicrohttpd libcares libcrypto libarchive zlib libbrotlidec
WARN       = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wconversion -Werror
CFLAGS    ?= -O2 -g
# LIBCLAMAV=patched (the default): libclamav built from Debian's source with
# third_party/libclamav/*.patch by scripts/build-libclamav, once (7-20 minutes), into
# build/libclamav-<hash>/ (kept by `make clean`); see third_party/libclamav/README.md. When it
# cannot be had (no source reachable, a failed build, Debian's installed libclamav12 newer than
# what can be patched), Debian's libclamav12 is linked instead with one warning, and clamrest says
# so at start, in /version and in clamrest_build_info. LIBCLAMAV=system: Debian's libclamav-dev,
# objects in build/system/. LIBCLAMAV_PREFIX=DIR: a library built before (the image).
LIBCLAMAV ?= patched
LIBCLAMAV_CACHE ?= $(CURDIR)/build
# The library is built (or found) only for goals that compile clamrest, so that `make clean` or
# `make down` never build it; once per make: sub-makes get the answer through the environment.
NOLIB_GOALS = clean distclean down logs deps libclamav image image-save image-test image-from-source \
	compose-test k8s-schema build-test
ifeq ($(LIBCLAMAV)$(LIBCLAMAV_PREFIX)$(LIBCLAMAV_FALLBACK),patched)
ifneq ($(filter-out $(NOLIB_GOALS),$(or $(MAKECMDGOALS),all)),)
_lcp := $(shell LIBCLAMAV_CACHE=$(LIBCLAMAV_CACHE) sh scripts/build-libclamav)
ifeq ($(_lcp),)
export LIBCLAMAV_FALLBACK := $(LIBCLAMAV_CACHE)/libclamav-status
$(info )
$(info WARNING: clamrest is built with Debian's UNPATCHED libclamav12 (slower on small files):)
$(info $(shell cat $(LIBCLAMAV_FALLBACK)))
$(info For the patched engine: fix that and run make again (`make libclamav` shows the build).)
$(info )
else
export LIBCLAMAV_PREFIX := $(_lcp)
endif
endif
endif
# A fallback stays one for the sub-makes of `make test` (even with LIBCLAMAV=patched given).
ifneq ($(LIBCLAMAV_FALLBACK),)
override LIBCLAMAV := system
LIBCLAMAV_NOTE_FILE ?= $(LIBCLAMAV_FALLBACK)
endif
LIBCLAMAV_NOTE_FILE ?= /dev/null
ifeq ($(LIBCLAMAV),patched)
PKGS       = libmicrohttpd libcares libcrypto libarchive zlib libbrotlidec
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
BASE       = -std=c11 -D_GNU_SOURCE -pthread $(WARN) -I$(BUILD)/gen $(CLAMAV_CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS     = $(CLAMAV_LIBS) $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lresolv -pthread
BUILD     ?= build
PYTHON     = /usr/bin/python3
comma     := ,

LIB_SRC    = $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ    = $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/%)
FUZZ_SRC   = $(wildcard fuzz/fuzz_*.c)
FUZZ_NAMES = $(FUZZ_SRC:fuzz/%.c=%)
REPLAY_BIN = $(FUZZ_NAMES:%=$(BUILD)/replay/%)
FUZZ_BIN   = $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)

.PHONY: FORCE all install deps run up down logs perf-screenshots test unit e2e replay asan-test perf-smoke perf perf-distributed bench bench-real bench-icap soak valgrind fuzz clean \
	distclean disagree-long member-cache-long false-alarms libclamav libclamav-diff libclamav-diff-long libclamav-asan build-test \
	image image-save image-test image-from-source image-from-source-test compose-test k8s-schema

all: $(BUILD)/clamrest

deps:
	@sh scripts/install-deps

# The binary (stripped, relinked without the build tree's rpath), the man page, the licence and
# notice, and (LIBCLAMAV=patched) the library, stripped, in $(PREFIX)/lib/clamrest/, where the
# binary looks, with its corresponding source (share/doc/clamrest/libclamav-source/). DESTDIR for
# packaging.
PREFIX ?= /usr/local
DOCDIR  = $(DESTDIR)$(PREFIX)/share/doc/clamrest
install: all $(BUILD)/clamrest.install
	install -D -m 0755 -s $(BUILD)/clamrest.install $(DESTDIR)$(PREFIX)/bin/clamrest
	install -D -m 0644 docs/clamrest.8 $(DESTDIR)$(PREFIX)/share/man/man8/clamrest.8
	install -D -m 0644 LICENSE $(DOCDIR)/LICENSE
	install -D -m 0644 NOTICE $(DOCDIR)/NOTICE
	@if [ "$(LIBCLAMAV)" = patched ]; then set -e; d=$(DESTDIR)$(PREFIX)/lib/clamrest; \
	  lib=$$(readlink -f $(LIBCLAMAV_PREFIX)/lib/libclamav.so.12); mkdir -p $$d; \
	  echo "install $$lib -> $$d/"; \
	  strip --strip-unneeded -o $$d/$$(basename $$lib).tmp $$lib && chmod 0644 $$d/$$(basename $$lib).tmp && \
	  mv $$d/$$(basename $$lib).tmp $$d/$$(basename $$lib) && ln -sfn $$(basename $$lib) $$d/libclamav.so.12; \
	  if [ -f $(LIBCLAMAV_PREFIX)/lib/clamrest-libclamav.txt ]; then \
	    install -m 0644 $(LIBCLAMAV_PREFIX)/lib/clamrest-libclamav.txt $$d/; \
	    rm -rf $(DOCDIR)/libclamav-source; cp -R $(LIBCLAMAV_PREFIX)/share/doc/libclamav-source $(DOCDIR)/; fi; fi

# The installed binary: the same objects, linked with the installed library's rpath only.
$(BUILD)/clamrest.install: $(BUILD)/obj/main.o $(LIB_OBJ)
	$(CC) $(BASE) $(CFLAGS) -o $@ $^ $(subst -Wl$(comma)-rpath$(comma)$(LIBCLAMAV_PREFIX)/lib,,$(LDLIBS))

# Which libclamav the objects in $(BUILD) were built against: another one (another patch is another
# prefix, and the binaries' rpath names it) rebuilds them.
# With it, gen/libclamav_note.h: why it is not the patched one (LIBCLAMAV_NOTE_FILE), said at start.
$(BUILD)/libclamav.id: FORCE
	@mkdir -p $(dir $@)gen
	@{ echo '$(LIBCLAMAV_ID)'; cat $(LIBCLAMAV_NOTE_FILE) 2>/dev/null || true; } >$@.new; \
	if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; \
	  printf '#define LIBCLAMAV_NOTE "%s"\n' "$$(sed 's/[\\"]/\\&/g' $(LIBCLAMAV_NOTE_FILE) 2>/dev/null | tr -d '\n')" \
	    >$(dir $@)gen/libclamav_note.h; fi

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
	timeout 1500 env CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest $(PYTHON) -m pytest -q -p no:cacheprovider --durations=15 -m "$(E2E_MARKS)" tests/e2e

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

# clamrest's ICAP service beside c-icap + libc-icap-mod-virus-scan on the same database (root: c-icap
# runs in a mount namespace); ICAP_BENCH_DB=real for the real-size database (bench/README.md).
ICAP_BENCH_DB ?= test
bench-icap: deps all
	@if [ "$(ICAP_BENCH_DB)" = real ] && [ ! -d build/bench/db-real ]; then \
	  mkdir -p build/bench && $(PYTHON) bench/gen-real-db build/bench/db-real; fi
	CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest timeout 3600 $(PYTHON) bench/icap-vs-cicap \
	  $(if $(filter real,$(ICAP_BENCH_DB)),--db build/bench/db-real) --conns 1,4

# libclamav built with third_party/libclamav/*.patch (cached in build/libclamav-<hash>/), and the
# differential test: the speed patches answer as the fix patches alone (LIBCLAMAV_FIXES, built in the
# same tree on the way), which answer as Debian's but on the fix cases (tests/libclamav/fix_cases.py).
libclamav:
	@sh scripts/build-libclamav

# The build of the library and its fallbacks (tests/engine; nothing there builds libclamav).
build-test:
	timeout 1200 $(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/engine

# The fixes-only prefix (the default build makes it on its way), for the recipes below.
libclamav_fixes = fixes=$$(LIBCLAMAV_CACHE=$(LIBCLAMAV_CACHE) sh scripts/build-libclamav --fixes)

# The differential test: the speed patches answer as the fix patches alone (LIBCLAMAV_FIXES), which
# answer as Debian's but on the fix cases (tests/libclamav/fix_cases.py). Without the patched library
# (LIBCLAMAV=system or the fallback) its tests are skipped, counted and the reason said.
libclamav-diff:
	@if [ "$(LIBCLAMAV)" != patched ]; then \
	  echo "libclamav-diff: the patch series' tests are SKIPPED: clamrest is built with Debian's libclamav12" \
	    "($$(cat $(LIBCLAMAV_NOTE_FILE) 2>/dev/null || true))"; fi
	$(if $(filter patched,$(LIBCLAMAV)),$(libclamav_fixes),fixes=) && \
	  LIBCLAMAV_PATCHED=$(if $(filter patched,$(LIBCLAMAV)),$(LIBCLAMAV_PREFIX)) LIBCLAMAV_FIXES=$$fixes timeout 1500 \
	  $(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/libclamav

# The same with other seeds of every generated file and database (DIFF_SEEDS), outside make test.
DIFF_SEEDS ?= 1 2 3 4 5 6 7 8
libclamav-diff-long:
	$(libclamav_fixes) && for s in $(DIFF_SEEDS); do DIFF_LONG=1 DIFF_SEED=$$s LIBCLAMAV_PATCHED=$(LIBCLAMAV_PREFIX) \
	  LIBCLAMAV_FIXES=$$fixes timeout 3000 $(PYTHON) -m pytest -q -p no:cacheprovider \
	  tests/libclamav -k "same_answers or fix_case or issue20" || exit 1; done

# The same patched library built with ASan+UBSan (another ~10-35 minutes, once) scanning the corpora.
libclamav-asan:
	$(libclamav_fixes) && asan=$$(LIBCLAMAV_CACHE=$(LIBCLAMAV_CACHE) sh scripts/build-libclamav --asan) && \
	  LIBCLAMAV_PATCHED=$(LIBCLAMAV_PREFIX) LIBCLAMAV_ASAN=$$asan LIBCLAMAV_FIXES=$$fixes timeout 3000 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/libclamav -k sanitized

# The whole suite, then again under AddressSanitizer + UndefinedBehaviorSanitizer; with the patched
# libclamav (the default) also its differential test against Debian's (libclamav-diff).
test: deps
	$(MAKE) all unit replay k8s-schema
	$(MAKE) libclamav-diff build-test
	$(MAKE) e2e
	$(MAKE) perf-smoke
	$(MAKE) asan-test

asan-test: export ASAN_OPTIONS = abort_on_error=0:detect_leaks=1
asan-test: export LSAN_OPTIONS = suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
asan-test: export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
asan-test:
	$(MAKE) BUILD=build/asan CC=gcc \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  E2E_MARKS="not slow and not client_side and not corpus and not timing" all unit replay e2e

# The member cache's warm verdict-integrity run over every limit group (make test warms one).
member-cache-long: all
	MEMBER_CACHE_GROUPS=dec,mib,split CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest timeout 3600 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e/test_member_cache.py -k verdict_integrity_warm

# Reader disagreement (issue 20): more samples of tests/e2e/disagree.py's generator than make test's
# 44 (seed 20), cached under build/disagree/; e.g. make disagree-long SEED=7 COUNT=1000.
SEED ?= 20
COUNT ?= 400
disagree-long: all
	DISAGREE_SEED=$(SEED) DISAGREE_COUNT=$(COUNT) CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest timeout 7200 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e/test_reader_disagreement.py -k "generated or yield"

# The false-alarm guard (issue 20): 2,000 files (bench's mix, clamav-testfiles, debs, jars, PDFs,
# ELF) of at most 32 MiB that Debian's clamscan calls clean with an EICAR-only database are never
# Unscanned, malware or an error (tests/e2e/test_false_alarms.py; make test runs 200 of at most
# 2 MiB); and FALSE_ALARMS_N system files with the test database answer clean or a real signature,
# never Heuristics.* (tests/e2e/test_reader_false_alarms.py, whose smoke runs in make test). About
# 25-40 minutes on 2 busy cores.
FALSE_ALARMS_N ?= 2000
false-alarms: all
	FALSE_ALARM_COUNT=2000 FALSE_ALARM_MAX_FILE=33554432 CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest timeout 7200 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e/test_false_alarms.py
	timeout 3600 env CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest FALSE_ALARMS_N=$(FALSE_ALARMS_N) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider -m slow tests/e2e/test_reader_false_alarms.py

SOAK_TIME ?= 600
soak: deps all
	SOAK_TIME=$(SOAK_TIME) CLAMREST_BIN=$(CURDIR)/$(BUILD)/clamrest $(PYTHON) tests/soak.py

# The end-to-end suite with the server under valgrind (slow: scans are about 50x slower);
# tests/valgrind-wrapper says how valgrind is run.
valgrind: deps all
	CLAMREST_REAL_BIN=$(CURDIR)/$(BUILD)/clamrest CLAMREST_BIN=$(CURDIR)/tests/valgrind-wrapper \
	  CLAMREST_SLOW=1 $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow" tests/e2e

FUZZ_TIME ?= 60
# -malloc_limit_mb: liblzma (under libarchive, fuzz_reader) reserves the dictionary a header asks
# for, up to 2 GiB, untouched; the resident set stays bounded by -rss_limit_mb.
fuzz: $(FUZZ_BIN)
	@set -e; for n in $(FUZZ_NAMES); do mkdir -p build/fuzz-corpus/$$n; \
	  echo "== fuzz $$n for $(FUZZ_TIME)s"; \
	  ./$(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_TIME) -malloc_limit_mb=4096 \
	    -artifact_prefix=fuzz/regression/$$n/ build/fuzz-corpus/$$n fuzz/corpus/$$n; done

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

# The image as a plain `podman build -f deploy/docker/Dockerfile .` of the repository makes it: the
# patched libclamav built in the Dockerfile's own stage (7-20+ minutes the first time, then cached
# until scripts/build-libclamav or third_party/libclamav/ change), not the host's.
image-from-source:
	@sh scripts/image deps
	@LIBCLAMAV=source sh scripts/image build

image-from-source-test: image-from-source
	timeout 900 $(PYTHON) -m pytest -v -p no:cacheprovider tests/container/test_image.py

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
# `make clean` keeps the libclamav builds (build/libclamav-*, 7-20 minutes each); distclean not.
clean:
	@if [ -f build/up/clamrest.pid ] || [ -f build/up/dnsmasq.pid ]; then sh scripts/demo-service down; fi
	@[ ! -d build ] || find build -mindepth 1 -maxdepth 1 ! -name 'libclamav-*' ! -name .libclamav.lock \
	  -exec rm -rf {} +
	@ls -d build/libclamav-*/ 2>/dev/null | sed 's/^/clean: kept /' || true

distclean: clean
	rm -rf build
