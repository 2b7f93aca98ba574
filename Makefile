# dengon - GNU Makefile.
#
#   make                      build dengon (the CLI) and dengond (the daemon)
#   make check                install missing packages, build, run every test,
#                             then the sanitizer pass (ASan + UBSan)
#   make check SANITIZE=address,undefined
#                             only the instrumented pass
#   make demo                 run the relay locally on a demo configuration
#   make install PREFIX=/usr/local DESTDIR=
#   make docs                 regenerate docs/configuration.md from the key tables
#
# The user's CFLAGS/LDFLAGS are kept; ours are appended.  CI=true adds -Werror.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
DESTDIR    ?=
PKG_CONFIG ?= pkg-config
CC         ?= cc
CFLAGS     ?= -O2 -g
SANITIZE   ?=

# Every library the project builds against (issue: core).  Programs link
# only what they use; `make` checks that all of them are present.
PKGS      := sqlite3 libesmtp-1.0 libetpan libserialport libssl libcrypto inih cmocka \
	freetype2 libtiff-4 libpng16 spandsp
CORE_PKGS := sqlite3 libssl libcrypto inih libserialport freetype2 libtiff-4 libpng16

ifneq ($(SANITIZE),)
BUILD     ?= build-san
SANFLAGS  := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD     ?= build
SANFLAGS  :=
endif

WARN := -std=c11 -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
	-Wformat=2 -Wpointer-arith -Wcast-qual -Wvla -Wno-unused-parameter
ifeq ($(CI),true)
WARN += -Werror
endif

CORE_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(CORE_PKGS) 2>/dev/null)
CORE_LIBS   := $(shell $(PKG_CONFIG) --libs $(CORE_PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)
# The programs reach every channel driver (channel_driver_find).
ESMTP_LIBS  := $(shell $(PKG_CONFIG) --libs libesmtp-1.0 2>/dev/null)
# ---- libetpan (the inbox drivers, channels/inbox*.c; issue 4) ------------
# Only -letpan (and its -L): `pkg-config --libs libetpan` also lists what
# libetpan itself links (gnutls, db, sasl2, lockfile), which a shared
# libetpan brings along, and -specs=no-pie-link.specs, which would make our
# programs non-PIE.  Its --cflags are empty on Debian; kept for others.
ETPAN_LIBS  := $(filter -L% -letpan,$(shell $(PKG_CONFIG) --libs libetpan 2>/dev/null))
CORE_CFLAGS += $(shell $(PKG_CONFIG) --cflags libetpan 2>/dev/null)
# ---- end of libetpan ------------------------------------------------------
PROG_LIBS    = $(CORE_LIBS) $(ESMTP_LIBS) $(ETPAN_LIBS)

ALL_CFLAGS  = $(WARN) -D_GNU_SOURCE -I. $(CORE_CFLAGS) $(SANFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)

# The library: every .c in conf/ queue/ channels/ and relay/ except the
# programs' main files.
CLI_SRCS := relay/dengon.c $(sort $(wildcard relay/cli_*.c))
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
MAINS    := $(CLI_SRCS) relay/dengond.c
LIB_SRCS := $(sort $(wildcard conf/*.c queue/*.c channels/*.c) \
	$(filter-out $(MAINS),$(wildcard relay/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libdengon.a

PROGS := $(BUILD)/bin/dengon
ifneq ($(wildcard relay/dengond.c),)
PROGS += $(BUILD)/bin/dengond
endif

UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps check check-run tests demo install uninstall docs clean pkgcheck

all: pkgcheck $(PROGS)

pkgcheck:
	@$(PKG_CONFIG) --exists $(PKGS) || { \
	  echo "dengon: missing libraries: $$(for p in $(PKGS); do $(PKG_CONFIG) --exists $$p || printf '%s ' $$p; done)"; \
	  echo "dengon: run 'make deps' (as root) to install them"; exit 1; }

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/dengon: $(CLI_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJS) $(LIB) $(PROG_LIBS)

$(BUILD)/bin/dengond: $(BUILD)/relay/dengond.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PROG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PROG_LIBS) $(CMOCKA_LIBS)

tests: all $(UNIT_TESTS)

# Test tools: small programs the integration tests drive directly.
TOOLS      := $(BUILD)/tools/smtp_send $(BUILD)/tools/inbox_dump $(BUILD)/tools/sms_pdu
$(BUILD)/tools/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PROG_LIBS)
tests: $(TOOLS)
-include $(TOOLS:=.d)

# The virtual Class 1 fax modem (spandsp's T.31 on a pty; issue 7).
SPANDSP_LIBS := $(shell $(PKG_CONFIG) --libs spandsp 2>/dev/null)
FAX_TOOLS := $(patsubst tests/fax/%.c,$(BUILD)/tools/%,$(wildcard tests/fax/fax_*.c))
$(BUILD)/tools/fax_vmodem: tests/fax/fax_vmodem.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell $(PKG_CONFIG) --cflags spandsp 2>/dev/null) \
	    $(ALL_LDFLAGS) -o $@ $< $(SPANDSP_LIBS) $(CORE_LIBS) -lm
$(BUILD)/tools/fax_compare: tests/fax/fax_compare.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PROG_LIBS)
tests: $(FAX_TOOLS)
-include $(FAX_TOOLS:=.d)

# ---- fuzzing (tests/fuzz/; issue 8) --------------------------------------
#   make fuzz [FUZZ_SECONDS=N]  build the libFuzzer targets with clang into
#                               build-fuzz/ and run each for N s (default 60)
#   make fuzz-smoke             10 s each (what CI runs: integration/90-fuzz)
# The library is compiled again with -fsanitize=fuzzer-no-link,address,
# undefined; each tests/fuzz/fuzz_NAME.c links with -fsanitize=fuzzer.
# The inbound mail target needs channels/inbox.h.  No -Werror here: clang
# warns where gcc does not, and a fuzz run is not the place to lint.
FUZZ_SECONDS ?= 60
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
ifeq ($(wildcard channels/inbox.h),)
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz_inbox.c,$(FUZZ_SRCS))
endif
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
.PHONY: fuzz fuzz-smoke fuzz-build fuzz-bins fuzz-clean
fuzz-build:
	@$(MAKE) --no-print-directory CC=clang CI= BUILD=build-fuzz \
	    SANITIZE=fuzzer-no-link,address,undefined fuzz-bins
fuzz-bins: $(FUZZ_BINS)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) \
	    $(PROG_LIBS)
fuzz: fuzz-build
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10
clean: fuzz-clean
fuzz-clean:
	rm -rf build-fuzz
-include $(FUZZ_BINS:=.d)
# ---- end of fuzzing ------------------------------------------------------

# ---- benchmarks (bench/; issue 8) ----------------------------------------
#   make bench    run bench/{fanout,latency,accept,scale}.sh on this build:
#                 figures beside Postfix and smtp-source (bench/README.md).
# A benchmark never fails on a number; make bench fails only when one of
# them could not measure at all.
BENCHES := fanout latency accept scale sms
.PHONY: bench
bench: deps all
	@st=0; for b in $(BENCHES); do echo "== bench/$$b.sh"; \
	  DENGON_BIN=$(CURDIR)/$(BUILD)/bin bench/$$b.sh || { st=1; \
	  echo "bench/$$b.sh could not measure"; }; echo; done; exit $$st
# ---- end of benchmarks ---------------------------------------------------

# deps: install what is missing (apt-get as root; otherwise print the line).
deps:
	@contrib/deps.sh

# make check: the plain build's tests, then the sanitizer pass over the
# unit tests and the core integration tests.  One summary line at the end.
ifeq ($(SANITIZE),)
check: deps
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory SANITIZE=address,undefined tests
	@tests/run.sh build build-san
else
check: deps
	@$(MAKE) --no-print-directory tests
	@tests/run.sh - $(BUILD)
endif

demo: deps all $(FAX_TOOLS)
	@contrib/demo.sh $(BUILD)/bin

# torture: the crash test with 100 SIGKILLs instead of the 10 make check
# uses (tests/integration/14-crash.sh).
.PHONY: torture
torture: deps tests
	@DENGON_CRASH_KILLS=100 DENGON_BIN=$(CURDIR)/$(BUILD)/bin \
	    bash tests/integration/14-crash.sh

docs: $(BUILD)/bin/dengon
	$(BUILD)/bin/dengon config-reference > docs/configuration.md

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR)
	install -m 0755 $(BUILD)/bin/dengon $(DESTDIR)$(BINDIR)/dengon
	if [ -f $(BUILD)/bin/dengond ]; then \
	  install -m 0755 $(BUILD)/bin/dengond $(DESTDIR)$(SBINDIR)/dengond; fi
	install -d $(DESTDIR)$(SYSCONFDIR)/dengon
	install -m 0644 contrib/dengon.conf.example $(DESTDIR)$(SYSCONFDIR)/dengon/dengon.conf.example
	install -m 0644 contrib/contacts.csv.example $(DESTDIR)$(SYSCONFDIR)/dengon/contacts.csv.example

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/dengon $(DESTDIR)$(SBINDIR)/dengond

clean:
	rm -rf build build-san

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(BUILD)/relay/dengond.d
