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
PKGS      := sqlite3 libesmtp-1.0 libetpan libserialport libssl libcrypto inih cmocka
CORE_PKGS := sqlite3 libssl libcrypto inih

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
PROG_LIBS    = $(CORE_LIBS) $(ESMTP_LIBS)

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
TOOLS      := $(BUILD)/tools/smtp_send
$(BUILD)/tools/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PROG_LIBS)
tests: $(TOOLS)
-include $(TOOLS:=.d)

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

demo: deps all
	@contrib/demo.sh $(BUILD)/bin

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
