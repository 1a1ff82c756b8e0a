# mica - miniature certificate authority.  Plain GNU make.
#
#   make            build bin/micad, bin/mica, bin/mica-admin
#   make check      install missing packages, build, run every test
#   make check SANITIZE=1   the same under ASan+UBSan (build-san/)
#   make demo       the lost-certificate story end to end
#   make bench      benchmarks (bench-ocsp, bench-crl, bench-issue, bench-start,
#                   bench-varnish); not part of check
#   make fuzz       libFuzzer targets (clang), FUZZ_SECONDS each
#   make install PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
DESTDIR	?=
CC	?= cc
FUZZ_CC	?= clang
FUZZ_SECONDS ?= 60
SANITIZE ?= 0

PKGS	 = openssl libevent libevent_openssl libevent_pthreads lmdb libsodium
# libqrencode: `mica enroll --qr` (built without it when it is missing)
QR_PKG	:= $(shell pkg-config --exists libqrencode 2>/dev/null && echo libqrencode)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(QR_PKG) 2>/dev/null) \
	   $(if $(QR_PKG),-DMICA_QRENCODE)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) $(QR_PKG) 2>/dev/null)

WARN	 = -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
	   -Wsign-compare -Werror
CPPFLAGS += -I. -D_GNU_SOURCE -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
CFLAGS	?= -O2 -g
CFLAGS	+= -std=c11 $(WARN) -pthread $(PKG_CFLAGS)
LDLIBS	+= $(PKG_LIBS) -pthread

ifeq ($(SANITIZE),1)
BUILD	?= build-san
CFLAGS	+= -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
LDFLAGS	+= -fsanitize=address,undefined
else
BUILD	?= build
endif
BIN	?= bin
ifeq ($(SANITIZE),1)
BIN	 = $(BUILD)/bin
endif

# One static library per module; programs link them all as a group.
# A unit test links only the modules it names in TESTLIBS_<name>, so a
# module that is half-written does not break the others' tests.
MODULES	 = common store conf ca ocsp crl admin
ALL_SRCS = $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_SRCS = $(filter-out %_main.c,$(ALL_SRCS))
MAIN_SRCS = $(filter %_main.c,$(ALL_SRCS))
modlib	 = $(BUILD)/lib$(1).a
modobjs	 = $(patsubst %.c,$(BUILD)/%.o,$(filter-out %_main.c,$(wildcard $(1)/*.c)))
ALL_LIBS = $(foreach m,$(MODULES),$(call modlib,$(m)))
group	 = -Wl,--start-group $(1) -Wl,--end-group
LIB	 = $(ALL_LIBS)

TESTLIBS_common	= common
TESTLIBS_hwm	= common
TESTLIBS_store	= store common
TESTLIBS_journal = store common
TESTLIBS_repl	= ca store common
TESTLIBS_conf	= conf common
TESTLIBS_ocsp	= ocsp store common
TESTLIBS_crl	= crl ocsp store common
TESTLIBS_http_parse = ocsp common
TESTLIBS_proto	= ca store conf common
TESTLIBS_auth	= ca store conf common
TESTLIBS_ban	= ca conf common
testlibs = $(foreach m,$(or $(TESTLIBS_$(1)),$(MODULES)),$(call modlib,$(m)))

PROGS	 = $(BIN)/micad $(BIN)/mica $(BIN)/mica-admin

UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BINS = $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=$(BUILD)/fuzz/replay_%)
FUZZ_BINS = $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=build-fuzz/fuzz_%)
HELPER_SRCS = $(wildcard tests/helpers/*.c)
HELPER_BINS = $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/%)

.PHONY: all check check-valgrind test deps demo bench bench-ocsp bench-crl bench-issue bench-start \
	fuzz soak soak-varnish soak-replica bench-varnish install clean tests prev

all: $(PROGS)

# -MMD: each object also depends on the headers it really includes.
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(LIB_SRCS:%.c=$(BUILD)/%.d) $(MAIN_SRCS:%.c=$(BUILD)/%.d)

define MODLIB_RULE
$(call modlib,$(1)): $(call modobjs,$(1))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	$$(AR) rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call MODLIB_RULE,$(m))))

$(BIN)/micad: $(BUILD)/ca/micad_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(call group,$(ALL_LIBS)) $(LDLIBS)

$(BIN)/mica: $(BUILD)/ca/mica_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(call group,$(ALL_LIBS)) $(LDLIBS)

$(BIN)/mica-admin: $(BUILD)/admin/mica_admin_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(call group,$(ALL_LIBS)) $(LDLIBS)

# Secondary expansion lets each test depend on just its own modules.
.SECONDEXPANSION:
$(BUILD)/tests/test_%: tests/unit/test_%.c $$(call testlibs,$$*)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(call group,$(call testlibs,$*)) $(LDLIBS) -lcmocka

$(BUILD)/tests/%: tests/helpers/%.c $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(call group,$(ALL_LIBS)) $(LDLIBS)

# Corpus replayer: the fuzz target linked with a plain main() that feeds
# every file of the corpus to it, so make check replays corpora under
# the sanitizers without clang.
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay.c \
	    $(call group,$(ALL_LIBS)) $(LDLIBS)

tests: $(PROGS) $(UNIT_BINS) $(REPLAY_BINS) $(HELPER_BINS)

# The release before the TOTP secrets were sealed (store schema 3), built
# from git into $(BUILD)/prev/bin: tests/e2e/t_totp_migrate.sh makes an
# old store with it and lets the new micad upgrade it.  Only micad and
# mica-admin, without sanitizers.
PREV_REV ?= 0d4b2f7c4373e89a2170ed630bb79916b21ba357
prev: $(BUILD)/prev/bin/micad
$(BUILD)/prev/bin/micad:
	rm -rf $(BUILD)/prev
	mkdir -p $(BUILD)/prev/src
	git archive --format=tar $(PREV_REV) | tar -x -C $(BUILD)/prev/src
	$(MAKE) --no-print-directory -C $(BUILD)/prev/src SANITIZE=0 \
	    BUILD=obj BIN=../bin ../bin/micad ../bin/mica-admin

deps:
	@sh tests/deps.sh

check: deps
	@$(MAKE) --no-print-directory tests
	@sh tests/run.sh $(BUILD) $(BIN)

test: check

# The end-to-end tests with every micad under valgrind memcheck: errors or
# leaks at a clean shutdown fail the test.
VALGRIND_TESTS ?= t_foundation t_reissue t_ocsp t_crl t_check t_admin_access t_secrets t_ops \
	t_reload t_metrics t_content t_restore t_subscriber t_faststart t_listscan
check-valgrind: deps
	@$(MAKE) --no-print-directory tests
	@for t in $(VALGRIND_TESTS); do \
	    MICA_VALGRIND=1 sh tests/run.sh $(BUILD) $(BIN) $$t || exit 1; \
	done

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tests/demo.sh $(BIN)

# ---- fuzzing (clang libFuzzer), not part of check ----
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 \
	-pthread $(PKG_CFLAGS)
FUZZ_LIB_OBJS = $(LIB_SRCS:%.c=build-fuzz/%.o)

build-fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
	    -std=c11 -pthread $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

-include $(LIB_SRCS:%.c=build-fuzz/%.d)

build-fuzz/libmica.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libmica.a
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< build-fuzz/libmica.a \
	    $(LDLIBS)

fuzz: deps $(FUZZ_BINS)
	@sh tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

soak: all
	@sh tests/soak.sh $(BIN)

# 1,000 reissues through Varnish (make check runs t_varnish with 200)
soak-varnish: all
	@sh tests/soak.sh $(BIN) t_varnish

# the warm standby's lag over 1000 reissues (t_replica runs 200)
soak-replica: all $(HELPER_BINS)
	@MICA_REPL_N=1000 sh tests/run.sh $(BUILD) $(BIN) t_replica

bench: bench-ocsp bench-crl bench-issue bench-start bench-varnish

bench-varnish: deps all
	@sh tests/bench/varnish.sh $(BIN) $(BUILD)

bench-ocsp: deps all $(HELPER_BINS)
	@sh tests/bench/ocsp.sh $(BIN) $(BUILD)

bench-crl: deps all $(HELPER_BINS)
	@sh tests/bench/crl.sh $(BIN) $(BUILD)

bench-issue: deps all $(HELPER_BINS)
	@sh tests/bench/issue.sh $(BIN) $(BUILD)

bench-start: deps all $(HELPER_BINS)
	@sh tests/bench/start.sh $(BIN) $(BUILD)

# Paths the installed unit names are those of this PREFIX: the unit in
# conf/ says /usr/local; install rewrites it.
BINDIR	 = $(PREFIX)/bin
DATADIR	 = $(PREFIX)/share/mica
DOCDIR	 = $(PREFIX)/share/doc/mica
MANDIR	 = $(PREFIX)/share/man
UNITDIR	 = $(PREFIX)/lib/systemd/system
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
MAN1	 = man/mica.1
MAN5	 = man/mica.conf.5
MAN8	 = man/micad.8 man/mica-admin.8

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR) \
	    $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(PROGS) $(DESTDIR)$(BINDIR)/
	install -m 0644 conf/mica.conf.sample $(DESTDIR)$(DATADIR)/
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' \
	    -e 's|/usr/local/share/doc/mica/|$(DOCDIR)/|g' \
	    conf/micad.service >$(DESTDIR)$(UNITDIR)/micad.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/micad.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/micad.service.tmp \
	    $(DESTDIR)$(UNITDIR)/micad.service
	install -m 0644 README.md docs/PROTOCOL.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 conf/mica.bash-completion \
	    $(DESTDIR)$(BASHCOMPDIR)/mica
	ln -sf mica $(DESTDIR)$(BASHCOMPDIR)/micad
	ln -sf mica $(DESTDIR)$(BASHCOMPDIR)/mica-admin

clean:
	rm -rf build build-san build-fuzz bin
