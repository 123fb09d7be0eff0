# CloudServer Lab — one Makefile for the shared library, the programs, the
# tests and the benchmarks.
#
# Every C file in lib/ goes into one static library that all programs link.
# A program is a folder with a main.c (mockcloud/, operator/,
# scenarios/runner/); its other .c files are private to it. Object files
# live under build/<variant>/ so a sanitizer build never mixes with a plain
# one: `make SANITIZE=address,undefined` builds into build/san/.

.DEFAULT_GOAL := all
SHELL := /bin/bash

V ?= 0
Q := $(if $(filter 1,$(V)),,@)
say = $(if $(filter 1,$(V)),,@printf '  %-7s %s\n' $(1) $(2);)

ifeq ($(origin CC),default)
CC := gcc
endif

SANITIZE ?=
ifneq ($(SANITIZE),)
VARIANT := san
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT ?= -O1
else
VARIANT := default
SAN_FLAGS :=
OPT ?= -O2
endif

BUILD := build/$(VARIANT)
# Plain builds put programs where people expect them; sanitizer builds keep
# theirs apart so `bin/` always holds the release flavour.
BIN := $(if $(SANITIZE),$(BUILD)/bin,bin)

PKGS := libcurl libcjson yaml-0.1 libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(or $(shell pkg-config --libs $(PKGS) 2>/dev/null),-lcurl -lcjson -lyaml -lmicrohttpd)

CFLAGS ?= $(OPT) -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
	-fno-strict-aliasing -pthread -MMD -MP -Iinclude $(PKG_CFLAGS) $(SAN_FLAGS)
override LDFLAGS += -pthread $(SAN_FLAGS)
LDLIBS := $(PKG_LIBS) -lm

# ---------------------------------------------------------------- sources

LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIBCSL := $(BUILD)/libcsl.a

# name:folder for each program; a program is built once its main.c exists.
PROGRAM_DIRS := mockcloud:mockcloud cloudserver-operator:operator scenario-runner:scenarios/runner
PROGRAMS := $(foreach p,$(PROGRAM_DIRS),$(if $(wildcard $(word 2,$(subst :, ,$(p)))/main.c),$(word 1,$(subst :, ,$(p)))))
prog_dir = $(word 2,$(subst :, ,$(filter $(1):%,$(PROGRAM_DIRS))))
# SRCS_<program> overrides a program's sources (work in progress beside
# other people's half-written files: make SRCS_scenario-runner="a.c b.c").
prog_objs = $(patsubst %.c,$(BUILD)/%.o,$(or $(SRCS_$(1)),$(wildcard $(call prog_dir,$(1))/*.c)))
# A program's objects other than main.o, for unit tests that exercise them.
prog_lib_objs = $(filter-out %/main.o,$(call prog_objs,$(1)))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
# tests/integration/test_kube_*.c need a Kubernetes API server: they run
# against a local control plane of their own (scripts/with-local-plane.sh).
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
KUBE_INTEG_SRCS := $(filter tests/integration/test_kube_%,$(INTEG_SRCS))
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(filter-out $(KUBE_INTEG_SRCS),$(INTEG_SRCS)))
KUBE_INTEG_BINS := $(KUBE_INTEG_SRCS:tests/integration/%.c=$(BUILD)/tests/integration/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

# Unit tests may test a program's internals: tests/unit/test_mockcloud_*.c
# link mockcloud's objects (less main.o), and so on.
unit_prog_objs = $(if $(findstring test_mockcloud_,$(1)),$(call prog_lib_objs,mockcloud)) \
	$(if $(findstring test_operator_,$(1)),$(call prog_lib_objs,cloudserver-operator)) \
	$(if $(findstring test_runner_,$(1)),$(call prog_lib_objs,scenario-runner))

##@ Build

.SECONDEXPANSION:

.PHONY: all
all: $(PROGRAMS:%=$(BIN)/%) ## Build every program into bin/

$(BUILD)/%.o: %.c
	$(call say,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIBCSL): $(LIB_OBJS)
	$(call say,AR,$@)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

define program_rule
$(BIN)/$(1): $(call prog_objs,$(1)) $(LIBCSL)
	$$(call say,LINK,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIBCSL) $$(call unit_prog_objs,$$*)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(call unit_prog_objs,$*) $(LIBCSL) $(LDLIBS) -lcunit

# tests/integration/test_kube_runner_*.c drive the runner's parts directly.
integ_prog_objs = $(if $(findstring test_kube_runner_,$(1)),$(call prog_lib_objs,scenario-runner))

$(BUILD)/tests/integration/%: $(BUILD)/tests/integration/%.o $(LIBCSL) $$(call integ_prog_objs,$$*)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(call integ_prog_objs,$*) $(LIBCSL) $(LDLIBS) -lcunit

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBCSL)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: deps
deps: ## Install the Debian packages the project needs (idempotent)
	$(Q)scripts/deps.sh

.PHONY: clean
clean: ## Remove build outputs (bin/, build/)
	$(Q)rm -rf bin build

.PHONY: format
format: ## Format C sources with the project's .clang-format
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

##@ Test

.PHONY: test
test: deps ## All tests: unit + integration (plain and under ASan/UBSan), local-plane tests, the scenario library and its mutation runs
	$(Q)$(MAKE) --no-print-directory check
	$(Q)$(MAKE) --no-print-directory check SANITIZE=address,undefined
	$(Q)$(MAKE) --no-print-directory cluster-test
	$(Q)$(MAKE) --no-print-directory scenarios SCENARIO_ARGS="--report-dir build/reports"
	$(Q)$(MAKE) --no-print-directory scenarios-mutations

.PHONY: check
check: unit integration kube-integration ## Unit and integration tests of this build variant (no deps step)

.PHONY: unit
unit: $(UNIT_BINS) ## CUnit tests of the library and the programs' internals
	$(Q)scripts/run-tests.sh unit $(UNIT_BINS)

.PHONY: integration
integration: all $(INTEG_BINS) ## Real binaries over real loopback sockets
	$(Q)CSL_BIN_DIR=$(abspath $(BIN)) scripts/run-tests.sh integration $(INTEG_BINS)

.PHONY: kube-integration
# The valgrind test of the operator needs a plain (not ASan) operator: in a
# sanitizer run it takes bin/'s, which `make test` builds first.
kube-integration: all $(KUBE_INTEG_BINS) ## Kubernetes client and operator tests against a local control plane of their own
	$(Q)CSL_BIN_DIR=$(abspath $(BIN)) CSL_VALGRIND_BIN_DIR=$(abspath bin) \
		scripts/with-local-plane.sh scripts/run-tests.sh kube-integration $(KUBE_INTEG_BINS)

.PHONY: test-sanitize
test-sanitize: ## Unit and integration tests under AddressSanitizer + UBSan
	$(Q)$(MAKE) --no-print-directory check SANITIZE=address,undefined

##@ Benchmarks

.PHONY: bench
bench: deps all $(BENCH_BINS) ## Run the benchmarks under bench/ and print their figures
	$(Q)CSL_BIN_DIR=$(abspath $(BIN)) CSL_BENCH_DIR=$(abspath $(BUILD)/bench) bench/run.sh
	$(Q)CSL_BENCH_DIR=$(abspath $(BUILD)/bench) bench/run-kube.sh
	$(Q)BENCH_ROUNDS=$${BENCH_ROUNDS:-3} CSL_BIN_DIR=$(abspath $(BIN)) CSL_BENCH_DIR=$(abspath $(BUILD)/bench) bench/run-operator.sh

##@ Scenarios

# `make scenarios SCENARIO_ARGS="--tag failover"` passes options to the run;
# SCENARIO_SUITES picks other folders or files.
SCENARIO_PARALLEL ?= 4
SCENARIO_SUITES ?= scenarios/suites/smoke scenarios/suites/chaos
SCENARIO_ARGS ?=

.PHONY: scenarios
scenarios: deps all ## The main job: smoke + chaos suites on a local plane; reports in reports/<run-id>/
	$(Q)$(BIN)/scenario-runner run --local --parallel $(SCENARIO_PARALLEL) $(SCENARIO_ARGS) $(SCENARIO_SUITES)

.PHONY: scenarios-scale
scenarios-scale: deps all ## The 1,000-object scale suite (outside the default run)
	$(Q)$(BIN)/scenario-runner run --local $(SCENARIO_ARGS) scenarios/suites/scale

.PHONY: scenarios-mutations
scenarios-mutations: deps all ## Mutation runs: a deliberately broken operator must fail the matching scenarios
	$(Q)CSL_BIN_DIR=$(abspath $(BIN)) scripts/scenario-mutations.sh

.PHONY: demo
demo: deps all ## A two-minute tour of mockcloud with curl
	$(Q)scripts/demo.sh

include kind/cluster.mk

##@ Help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
