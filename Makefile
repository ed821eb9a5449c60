# jobq: background jobs run by PostgreSQL background workers (PGXS build)

EXTENSION = jobq
MODULE_big = jobq
# every C file of src/ (one concern per file: see src/README.md)
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
# The version is written once, in jobq.control; the C code gets it as
# JOBQ_VERSION.  The install script of that version is built from the SQL
# sources of src/sql/, concatenated in name order: 00_install (its
# header), 10_tables (tables, indexes, sequences, built-in kinds: created
# once), the re-creatable files 20 to 89 (CREATE OR REPLACE of functions
# and views, their comments and rights: the API, views, network,
# scheduling, kinds), 90_install (its last statement).  0.1.0 is the first
# release, its script kept as shipped; every later change ships as an
# upgrade script jobq--A--B.sql, built from the fragments of upgrade/A--B/
# (ALTER TABLE, DROP FUNCTION of a signature that changes or of what goes,
# data changes; in name order) followed by the re-creatable sources, so a
# function or view is written once, in src/sql/.  An updated install and
# a fresh one are the same objects (test/t/015_upgrade.pl).
EXTVERSION := $(shell sed -n "s/^default_version = '\(.*\)'$$/\1/p" jobq.control)
SQL_SOURCES = $(sort $(wildcard src/sql/*.sql))
SQL_RECREATABLE = $(filter-out src/sql/00_% src/sql/10_% src/sql/90_%,$(SQL_SOURCES))
UPGRADES = jobq--0.1.0--0.2.0.sql
DATA = jobq--0.1.0.sql
DATA_built = jobq--$(EXTVERSION).sql $(UPGRADES)
PGFILEDESC = "jobq - background jobs inside PostgreSQL"

# Warnings: PGXS gives PostgreSQL's own set (-Wall and more, pg_config
# --cflags); jobq adds -Wextra, and the project's own tools (tools/common.sh
# sets JOBQ_WERROR=1: tests, lint, CI) make every warning an error, which a
# user's plain `make` on another compiler is not forced into.  Two parts
# of -Wextra are turned off, for PostgreSQL's idioms rather than jobq's code:
#  -Wno-unused-parameter: PostgreSQL's inline header functions have unused
#    parameters (ilist.h dlist_next_node, bufpage.h), and callbacks keep the
#    signature their caller fixes (PG_FUNCTION_ARGS, bgworker main, on_*_exit,
#    Xact and syscache callbacks, libcurl callbacks).
#  -Wno-clobbered: GCC warns of every local kept in a register across the
#    sigsetjmp of PG_TRY, changed inside the PG_TRY block or not, and the set
#    changes with inlining and -O level.  The rule that matters (a local
#    changed inside PG_TRY and read after an error is volatile) is kept by
#    hand: see elog.h.
# tools/lint.sh runs cppcheck and clang-tidy on top of this build.
PG_CFLAGS = -Wextra -Wno-unused-parameter -Wno-clobbered
ifeq ($(JOBQ_WERROR),1)
PG_CFLAGS += -Werror
endif
# libcurl: network jobs (src/http*.c, src/net.c)
SHLIB_LINK += -lcurl
# libpq: jobq.schedule reaching pg_cron in another database (src/schedule.c)
PG_CPPFLAGS = -I$(libpq_srcdir) -DJOBQ_VERSION=\"$(EXTVERSION)\"
SHLIB_LINK_INTERNAL = $(libpq)

# pg_regress and isolation tests get a temporary instance that preloads jobq
# (with no workers: they test the SQL surface and the claim step)
REGRESS = 01_enqueue 02_kinds 03_cancel_retry 04_views 06_net 07_schedule 08_bulk 09_key_mode
REGRESS_OPTS = --temp-instance=tmp_check --temp-config=test/jobq.conf
ISOLATION = claim job_key
ISOLATION_OPTS = --temp-instance=tmp_check_iso --temp-config=test/jobq.conf --inputdir=test
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = tmp_check tmp_check_iso output_iso results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object is rebuilt when a header
# changes (a struct in shared memory must have one layout in all of them).
$(OBJS): $(wildcard src/*.h)

jobq--$(EXTVERSION).sql: $(SQL_SOURCES)
	cat $^ > $@

# an upgrade: its fragments, then the re-creatable sources
jobq--0.1.0--0.2.0.sql: $(sort $(wildcard upgrade/0.1.0--0.2.0/*.sql)) $(SQL_RECREATABLE)
	cat $^ > $@
