# lwm2m-gw: small tools for an LwM2M gateway to a device shadow and a LoRaWAN Join Server.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/lwm2m-gw
DESTDIR ?=

# BUILD holds objects and unit-test programs, BIN the tools; check-asan uses its own pair.
BUILD ?= build
BIN   ?= bin

PKGS    = libcoap-3-gnutls gnutls nettle hogweed libcurl yaml-0.1 libmicrohttpd libmosquitto expat
JQ_LIBS ?= -ljq

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Ilib $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
override LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(JQ_LIBS) -lm -lpthread

CMDS     = $(sort $(basename $(notdir $(wildcard cmd/*.c))))
LIB_SRC  = $(wildcard lib/*.c)
LIB_OBJ  = $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
UNIT_SRC = $(wildcard tests/unit/*.c)
UNITS    = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
MANS     = $(wildcard man/*.[0-9])

all: $(CMDS:%=$(BIN)/%) $(UNITS)

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h) | $(BUILD)/lib
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libcommon.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(BIN)/%: cmd/%.c $(BUILD)/libcommon.a $(wildcard lib/*.h) | $(BIN)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcommon.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcommon.a $(wildcard lib/*.h tests/unit/*.h) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcommon.a $(LDLIBS)

$(BIN) $(BUILD)/lib $(BUILD)/tests:
	mkdir -p $@

deps:
	@sh .ci/deps

# The test suite: every tool driven over real sockets by bats, plus the unit programs.
test: deps
	@$(MAKE) --no-print-directory all
	@sh .ci/deps node
	@$(MAKE) --no-print-directory lint-man
	LWM2M_GW_BIN=$(CURDIR)/$(BIN) LWM2M_GW_UNIT=$(CURDIR)/$(BUILD)/tests \
	  tests/run $(BATSFLAGS)
check: test

# The same suite with AddressSanitizer and UndefinedBehaviorSanitizer in every binary.
check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" all
	@sh .ci/deps node
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LWM2M_GW_BIN=$(CURDIR)/build-asan/bin LWM2M_GW_UNIT=$(CURDIR)/build-asan/tests \
	  tests/run $(BATSFLAGS)

# The long-running tools under valgrind (no memory error, no definite leak), on the plain build.
check-valgrind: deps
	@$(MAKE) --no-print-directory all
	@sh .ci/deps node
	LWM2M_GW_BIN=$(CURDIR)/$(BIN) LWM2M_GW_UNIT=$(CURDIR)/$(BUILD)/tests \
	  tests/run $(BATSFLAGS) tests/valgrind.bats

lint-man:
	@for m in $(MANS); do mandoc -Tlint -Wwarning $$m || exit 1; done

# Build, then start the device-to-shadow pipeline on 127.0.0.1:5683 with a local store in ./var.
run: deps
	@$(MAKE) --no-print-directory all
	@PATH=$(CURDIR)/$(BIN):$$PATH sh examples/gateway.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(DOCDIR)
	install -m 755 $(CMDS:%=$(BIN)/%) $(DESTDIR)$(BINDIR)
	for m in $(MANS); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}; done
	cp -R examples $(DESTDIR)$(DOCDIR)/
	chmod 600 $(DESTDIR)$(DOCDIR)/examples/etc/lwm2m-gw/credentials.yml $(DESTDIR)$(DOCDIR)/examples/etc/lwm2m-gw/kms/keyring.yml

clean:
	rm -rf build build-asan bin

# Benchmark programs (tests/bench/*.c, next to the unit programs so every build flavour has them)
# are built with the tools; `make bench` runs the harness, never part of `make test`.
BENCH_SRC   = $(wildcard tests/bench/*.c)
BENCH_PROGS = $(BENCH_SRC:tests/bench/%.c=$(BUILD)/tests/%)
all: $(BENCH_PROGS)
$(BENCH_PROGS): $(BUILD)/tests/%: tests/bench/%.c $(BUILD)/libcommon.a $(wildcard lib/*.h tests/bench/*.h) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcommon.a $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory all
	LWM2M_GW_BIN=$(CURDIR)/$(BIN) LWM2M_GW_UNIT=$(CURDIR)/$(BUILD)/tests sh tests/bench/run.sh

.PHONY: bench
.PHONY: all deps test check check-asan check-valgrind lint-man run install clean
.SECONDARY:

# libFuzzer targets (tests/fuzz/*.c) against the lib sources built with clang, ASan and UBSan in
# build-fuzz/; `make fuzz` runs each for FUZZ_SECONDS from its seeds in tests/fuzz/corpus/<target>
# (new inputs go to build-fuzz/corpus/<target>, crashes to build-fuzz/crash-<target>-*), with the
# libFuzzer dictionary tests/fuzz/<target>.dict where there is one. The targets' scratch files go
# to one directory (FUZZ_SCRATCH) removed at the end, also after a crash.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build-fuzz
FUZZ_FLAGS   = -std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Ilib \
  $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC     = $(wildcard tests/fuzz/*.c)
FUZZ_TARGETS = $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ = $(LIB_SRC:lib/%.c=$(FUZZ_BUILD)/lib/%.o)

$(FUZZ_BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h) | $(FUZZ_BUILD)/lib
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_BUILD)/libcommon.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^
$(FUZZ_TARGETS): $(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_BUILD)/libcommon.a $(wildcard lib/*.h tests/fuzz/*.h tests/unit/*.h)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Werror -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libcommon.a $(LDLIBS)
$(FUZZ_BUILD)/lib:
	mkdir -p $@

fuzz-build: $(FUZZ_TARGETS)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@scratch=$$(mktemp -d /dev/shm/lwm2m-fuzz.XXXXXX 2>/dev/null || mktemp -d) || exit 1; \
	trap 'rm -rf "$$scratch"' EXIT INT TERM; export FUZZ_SCRATCH=$$scratch; \
	for t in $(notdir $(FUZZ_TARGETS)); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
	    $$(test -f tests/fuzz/$$t.dict && echo -dict=tests/fuzz/$$t.dict) \
	    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

clean: clean-fuzz
clean-fuzz:
	rm -rf $(FUZZ_BUILD)

.PHONY: fuzz fuzz-build clean-fuzz
