# ufo — build, test, bench, demo, install, deps.
# make [DEBUG=1] [SANITIZE=1] [CUDA=auto|0|1]
SHELL      := /bin/bash
MAKEFLAGS  += --jobs=$(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local
BUILD      ?= build
CUDA       ?= auto
CXX        ?= g++
NVCC       ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))

# Packages are resolved lazily (=) so that `make deps` can install them first.
HDF5_CFLAGS = $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS   = $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)

CXXFLAGS   ?=
OPT        := -O3 -mavx2 -mfma -DNDEBUG
ifeq ($(DEBUG),1)
OPT        := -O0 -g3
endif
ifeq ($(SANITIZE),1)
OPT        += -g -fsanitize=address,undefined -fno-omit-frame-pointer
LDSAN      := -fsanitize=address,undefined
endif
# OpenBLAS's OpenMP build shares libgomp's thread pool with our own parallel loops; the
# default pthread build would keep a second set of spinning threads on the same cores.
BLAS_DIR   := /usr/lib/x86_64-linux-gnu/openblas-openmp
CPPFLAGS   := -Ilib -Ikernels -I/usr/include/x86_64-linux-gnu/openblas-openmp $(HDF5_CFLAGS)
CXXFLAGS   += -std=c++17 -Wall -Wextra -Wno-unused-parameter -fopenmp -MMD -MP $(OPT)
LDLIBS     = $(HDF5_LIBS) -lboost_program_options -lboost_filesystem -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -llapacke \
             -lzstd -lpng -ljpeg -lz -lpthread
LDFLAGS    += -fopenmp $(LDSAN)

# CUDA=auto builds kernels/*.cu when nvcc exists; CUDA=1 insists; CUDA=0 never.
ifeq ($(CUDA),auto)
USE_CUDA   := $(if $(NVCC),1,0)
else
USE_CUDA   := $(CUDA)
endif
ifeq ($(USE_CUDA),1)
ifeq ($(NVCC),)
$(error CUDA=1 but nvcc was not found)
endif
CUDA_HOME  := $(patsubst %/bin/nvcc,%,$(NVCC))
CPPFLAGS   += -DUFO_CUDA=1 -I$(CUDA_HOME)/include
LDLIBS     += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart
CU_SRC     := $(wildcard kernels/*.cu)
endif

# Rebuild everything when the build mode changes (DEBUG, SANITIZE, CUDA).
FLAGS_STAMP := $(BUILD)/.mode
MODE_LINE  := $(CXX) $(OPT) cuda=$(USE_CUDA) blas=openmp
$(shell mkdir -p $(BUILD); [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" = "$(MODE_LINE)" ] || echo "$(MODE_LINE)" > $(FLAGS_STAMP))

LIB_SRC    := $(wildcard lib/*.cpp) $(wildcard kernels/*.cpp)
LIB_OBJ    := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o) $(CU_SRC:%.cu=$(BUILD)/obj/%.cu.o)
TOOL_SRC   := $(wildcard tools/ufo-*.cpp)
TOOLS      := $(TOOL_SRC:tools/%.cpp=$(BUILD)/%)
TEST_SRC   := $(wildcard tests/unit/*.cpp)
TEST_OBJ   := $(TEST_SRC:%.cpp=$(BUILD)/obj/%.o)
MAN        := $(wildcard man/*.1 man/*.7)
DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all test unit cli bench demo install deps check-deps clean man-check
all: $(TOOLS)

# --- dependencies -----------------------------------------------------------
DEB_PKGS := g++ make pkg-config libboost-program-options-dev libboost-filesystem-dev \
            libhdf5-dev hdf5-tools libopenblas-dev libopenblas-openmp-dev liblapacke-dev libzstd-dev zlib1g-dev \
            libpng-dev libjpeg-dev nlohmann-json3-dev libgtest-dev bats bats-support bats-assert \
            groff-base gnuplot-nox dataset-fashion-mnist python3
deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEB_PKGS)

check-deps:
	@scripts/check-deps

$(DEPS_STAMP):
	@mkdir -p $(BUILD)
	@scripts/check-deps >/dev/null 2>&1 || $(MAKE) --no-print-directory deps
	@scripts/check-deps
	@touch $@

# --- build ------------------------------------------------------------------
$(BUILD)/obj/%.o: %.cpp $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(NVCC) -O3 -std=c++17 -Ilib -Ikernels -DUFO_CUDA=1 -c $< -o $@

$(BUILD)/libufo.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ufo-%: $(BUILD)/obj/tools/ufo-%.o $(BUILD)/libufo.a
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/unit-tests: $(TEST_OBJ) $(BUILD)/libufo.a
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lgtest -lgtest_main

# --- test -------------------------------------------------------------------
test: unit cli man-check

unit: $(BUILD)/unit-tests
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 $(BUILD)/unit-tests --gtest_brief=1

cli: $(TOOLS)
	UFO_BIN=$(abspath $(BUILD)) bats tests/cli

man-check: | $(DEPS_STAMP)
	@for m in $(MAN); do \
	  out=$$(LC_ALL=C.UTF-8 groff -man -ww -z $$m 2>&1); \
	  if [ -n "$$out" ]; then echo "$$m: $$out"; exit 1; fi; \
	done; echo "man pages: $(words $(MAN)) clean"

# --- bench / demo -----------------------------------------------------------
bench: $(TOOLS)
	scripts/bench-compare

demo: $(TOOLS)
	examples/demo.sh

# --- install ----------------------------------------------------------------
install: $(TOOLS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(wildcard man/*.7) $(DESTDIR)$(PREFIX)/share/man/man7/

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(TOOL_SRC:tools/%.cpp=$(BUILD)/obj/tools/%.d)

# Keep object files of the tools (they are intermediates of a pattern chain).
.SECONDARY:
