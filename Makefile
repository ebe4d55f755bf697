# eventlog: Apache Kafka's event log inside PostgreSQL (PGXS build)

EXTENSION    = eventlog
# The version lives in META.json; eventlog.control must agree (checked below).
EXTVERSION   = $(shell grep -m1 '"version"' META.json | sed -e 's/[^0-9.]//g')

MODULE_big   = eventlog
# src/ has one folder per subsystem (doc/architecture.md); the module entry
# point and the settings sit at its top.
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))
# The first version's full script and the upgrade scripts since.
DATA         = sql/eventlog--0.1.0.sql $(wildcard sql/eventlog--*--*.sql)
PGFILEDESC   = "eventlog - Kafka's event log inside PostgreSQL"

PG_CPPFLAGS  = -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir)
# Mirrors pull topics from other servers through libpq; the Kafka listener
# inflates record batches with zlib, snappy, lz4 and zstd.
SHLIB_LINK   = -lpq -lz -lsnappy -llz4 -lzstd
PG_CFLAGS    = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers

# pg_regress inputs live in sql/ (PostgreSQL 15 has no --expecteddir), named
# test_* so that they cannot be mistaken for install scripts.
REGRESS      = test_topics test_produce test_fetch test_tableam test_retention test_groups test_capture test_catalog_tap test_privileges_tap
REGRESS_OPTS = --inputdir=. --temp-instance=./tmp_check_regress \
               --temp-config=./test/eventlog.conf --load-extension=plpgsql
# Perl TAP tests: crash, standby, freezing and concurrency.
PROVE_TESTS  = test/t/*.pl

EXTRA_CLEAN  = tmp_check tmp_check_regress results regression.diffs regression.out log

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object is rebuilt when a header changes (PGXS tracks no dependencies).
$(OBJS): $(wildcard src/*.h src/*/*.h)

# Refuse to build when the control file and META.json disagree on the version.
all: check-version
.PHONY: check-version
check-version:
	@grep -q "default_version = '$(EXTVERSION)'" eventlog.control || \
	  { echo "eventlog.control default_version differs from META.json ($(EXTVERSION))"; exit 1; }

# The whole suite: the layering check, then against throwaway servers
# pg_regress (which starts its own instance with test/eventlog.conf) and the
# Perl TAP tests (one cluster each).
.PHONY: test tap check-layers
test: check-layers installcheck tap
# Calls between src/'s folders run one way, and no files call each other in
# a circle (doc/architecture.md, "The map").
check-layers: all
	python3 $(srcdir)/test/layers.py $(srcdir)/src
tap:
	$(prove_installcheck)

# A release archive for PGXN: the committed tree at HEAD.
.PHONY: dist
dist:
	git archive --format zip --prefix=eventlog-$(EXTVERSION)/ -o eventlog-$(EXTVERSION).zip HEAD
