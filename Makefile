# ufo — build, test, bench, demo, install, deps.
# make [DEBUG=1] [SANITIZE=1] [CUDA=auto|0|1] [MPI=auto|0|1]
SHELL      := /bin/bash
MAKEFLAGS  += --jobs=$(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local
BUILD      ?= build
CUDA       ?= auto
MPI        ?= auto
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
# SANITIZE=1: ASan + UBSan at -O2 (SAN_OPT). Measured on the 2-core build machine: the Bats
# suite takes the same time at -O1 and -O2 (844 s vs 877 s; unit tests 12 s either way), but at
# -O1 the "-t 2 differs from -t 1 by rounding" test fails (other rounding than the -O3 build);
# -O2 passes it. Any UB aborts (-fno-sanitize-recover), whatever UBSAN_OPTIONS says.
SAN_OPT    ?= -O2
ifeq ($(SANITIZE),1)
ifneq ($(DEBUG),1)
OPT        := $(SAN_OPT) -g -mavx2 -mfma -DNDEBUG
endif
OPT        += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDSAN      := -fsanitize=address,undefined
endif
# Runtime options for sanitized binaries: any report fails (UBSan halts, LSan at exit).
# SAN_ENV (unit tests, Bats) adds LeakSanitizer suppressions for libhdf5's process-lifetime
# buffers (tests/sanitize/lsan.supp) and UFO_SANITIZE=1, which tells tests that the binaries
# are sanitized (ASan reserves terabytes of address space: `ulimit -v` cannot be used with them).
# The fuzzers run with SAN_RUNTIME only: libFuzzer checks leaks after every input.
SAN_RUNTIME := ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1 \
               UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
SAN_ENV    := $(SAN_RUNTIME) LSAN_OPTIONS=suppressions=$(abspath tests/sanitize/lsan.supp):print_suppressions=0 \
              UFO_SANITIZE=1
# OpenBLAS's OpenMP build shares libgomp's thread pool with our own parallel loops; the
# default pthread build would keep a second set of spinning threads on the same cores.
BLAS_DIR   := /usr/lib/x86_64-linux-gnu/openblas-openmp
CPPFLAGS   := -Ilib -Ikernels -I/usr/include/x86_64-linux-gnu/openblas-openmp $(HDF5_CFLAGS)
CXXFLAGS   += -std=c++17 -Wall -Wextra -Wno-unused-parameter -fopenmp -MMD -MP $(OPT)
LDLIBS     = $(HDF5_LIBS) -lboost_program_options -lboost_filesystem -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -llapacke \
             -ldnnl -lzstd -lpng -ljpeg -lz -lpthread
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

# MPI=auto builds multi-process training (lib/dist) when mpicxx exists; MPI=1 insists; MPI=0
# never. Evaluated when used, not when the Makefile is read, so that `make test` on a fresh
# machine builds with the Open MPI that its own `make deps` has just installed. Only
# lib/dist/process_group.cpp sees -DUFO_MPI; the tools and unit tests link libmpi.
MPICXX      = $(shell command -v mpicxx 2>/dev/null)
USE_MPI     = $(if $(filter 0,$(MPI)),0,$(if $(or $(filter 1,$(MPI)),$(MPICXX)),1,0))
# The C API only: OMPI_SKIP_MPICXX keeps the deprecated C++ bindings (and libmpi_cxx) out.
MPI_CPPFLAGS = $(if $(filter 1,$(USE_MPI)),-DUFO_MPI=1 -DOMPI_SKIP_MPICXX=1 -DMPICH_SKIP_MPICXX=1 $(shell mpicxx --showme:compile))
MPI_LIBS    = $(if $(filter 1,$(USE_MPI)),$(filter-out -lmpi_cxx,$(shell mpicxx --showme:link)))
TOOL_LDLIBS = $(LDLIBS) $(MPI_LIBS)
# ONNX export (lib/export): the ONNX protobuf classes and ONNX's model checker.
ONNX_LIBS   = -lonnx -lonnx_proto -lprotobuf

# Rebuild everything when the build mode changes (DEBUG, SANITIZE, CUDA).
FLAGS_STAMP := $(BUILD)/.mode
MODE_LINE  := $(CXX) $(OPT) cuda=$(USE_CUDA) blas=openmp
$(shell mkdir -p $(BUILD); [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" = "$(MODE_LINE)" ] || echo "$(MODE_LINE)" > $(FLAGS_STAMP))

LIB_SRC    := $(wildcard lib/*/*.cpp) $(wildcard kernels/*.cpp)
LIB_OBJ    := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o) $(CU_SRC:%.cu=$(BUILD)/obj/%.cu.o)
TOOL_SRC   := $(wildcard tools/ufo-*.cpp)
TOOLS      := $(TOOL_SRC:tools/%.cpp=$(BUILD)/%)
TEST_SRC   := $(wildcard tests/unit/*.cpp)
TEST_OBJ   := $(TEST_SRC:%.cpp=$(BUILD)/obj/%.o)
MAN        := $(wildcard man/*.1 man/*.7)
DEPS_STAMP := $(BUILD)/.deps-ok

# The HDF5 filter plugin for zstd (id 32015): HDF5_PLUGIN_PATH=$(BUILD)/plugins lets h5dump,
# h5py and every other HDF5 program read ufo's compressed files; `make install` puts it in the
# directory HDF5 searches by default (H5_DEFAULT_PLUGINDIR of the installed HDF5).
PLUGIN     := $(BUILD)/plugins/libufo_h5zstd.so
HDF5_PUBCONF = $(firstword $(wildcard /usr/include/hdf5/serial/H5pubconf.h /usr/include/H5pubconf.h))
HDF5_PLUGIN_DIR ?= $(or $(shell sed -n 's/^\#define H5_DEFAULT_PLUGINDIR "\(.*\)"/\1/p' $(HDF5_PUBCONF) 2>/dev/null),/usr/local/hdf5/lib/plugin)

.PHONY: all test unit cli bench demo install install-plugin deps check-deps clean man-check FORCE
all: $(TOOLS) $(PLUGIN)

# --- dependencies -----------------------------------------------------------
# clang, libclang-rt-14-dev (libFuzzer and the sanitizer runtimes) and libomp-14-dev (omp.h for
# clang) are for `make fuzz` only.
DEB_PKGS := g++ make pkg-config clang libclang-rt-14-dev libomp-14-dev libboost-program-options-dev libboost-filesystem-dev \
            libhdf5-dev hdf5-tools libopenblas-dev libopenblas-openmp-dev liblapacke-dev libzstd-dev zlib1g-dev \
            libpng-dev libjpeg-dev nlohmann-json3-dev libgtest-dev bats bats-support bats-assert \
            groff-base gnuplot-nox dataset-fashion-mnist python3 perl libjpeg-turbo-progs libopenmpi-dev openmpi-bin \
            libonnx-dev libprotobuf-dev python3-onnx python3-h5py libdnnl-dev
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
	$(CXX) $(CPPFLAGS) $(EXTRA_CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# The MPI mode is kept in a stamp that changes only when the mode does, so that switching
# MPI rebuilds the one file that depends on it (and relinks).
$(BUILD)/obj/lib/dist/process_group.o: EXTRA_CPPFLAGS = $(MPI_CPPFLAGS)
$(BUILD)/obj/lib/dist/process_group.o: $(BUILD)/.mpi
$(BUILD)/.mpi: FORCE | $(DEPS_STAMP)
	@if [ "$(MPI)" = 1 ] && [ -z "$(MPICXX)" ]; then echo "MPI=1 but mpicxx was not found (apt-get install libopenmpi-dev)" >&2; exit 1; fi
	@m="mpi=$(USE_MPI)"; [ "$$(cat $@ 2>/dev/null)" = "$$m" ] || echo "$$m" > $@

$(BUILD)/obj/%.cu.o: %.cu $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(NVCC) -O3 -std=c++17 -Ilib -Ikernels -DUFO_CUDA=1 -c $< -o $@

$(BUILD)/libufo.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ufo-%: $(BUILD)/obj/tools/ufo-%.o $(BUILD)/libufo.a
	$(CXX) $(LDFLAGS) $^ -o $@ $(TOOL_LDLIBS)
$(BUILD)/ufo-export: TOOL_LDLIBS += $(ONNX_LIBS)

# Only the two H5PLget_* entry points are exported: the filter's own symbols stay inside the
# plugin, whatever program (libufo included) loads it. Built for any x86-64 (no AVX2) and never
# sanitized, since it is loaded by programs that are not (h5dump, python3).
$(PLUGIN): plugins/h5z_zstd.cpp lib/io/zstd_filter.cpp lib/io/zstd_filter.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) -Ilib $(HDF5_CFLAGS) -std=c++17 -Wall -Wextra -O2 -DNDEBUG -fPIC -shared -fvisibility=hidden \
	  plugins/h5z_zstd.cpp lib/io/zstd_filter.cpp -o $@ $(HDF5_LIBS) -lzstd

# Test-only tool that crafts bad HDF5 files for the Bats suite (plain HDF5 C API).
$(BUILD)/h5edit: $(BUILD)/obj/tests/tools/h5edit.o
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/unit-tests: $(TEST_OBJ) $(BUILD)/libufo.a
	$(CXX) $(LDFLAGS) $^ -o $@ $(TOOL_LDLIBS) $(ONNX_LIBS) -lgtest -lgtest_main

# --- test -------------------------------------------------------------------
test: unit cli man-check

unit: $(BUILD)/unit-tests
	$(if $(filter 1,$(SANITIZE)),$(SAN_ENV)) OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 $(BUILD)/unit-tests --gtest_brief=1

# ONNX Runtime (npm, into build/ort) checks the ONNX files ufo-export writes.
cli: $(TOOLS) $(PLUGIN) $(BUILD)/h5edit
	@scripts/ort-setup >/dev/null
	$(if $(filter 1,$(SANITIZE)),$(SAN_ENV)) UFO_BIN=$(abspath $(BUILD)) bats tests/cli

man-check: | $(DEPS_STAMP)
	@for m in $(MAN); do \
	  out=$$(LC_ALL=C.UTF-8 groff -man -ww -z $$m 2>&1); \
	  if [ -n "$$out" ]; then echo "$$m: $$out"; exit 1; fi; \
	done; echo "man pages: $(words $(MAN)) clean"

# --- fuzz -------------------------------------------------------------------
# make fuzz [FUZZ_SECONDS=20] [FUZZ_TARGETS="fuzz_png ..."] [FUZZ_OUT=DIR]: libFuzzer targets
# (tests/fuzz/README.md), each run for FUZZ_SECONDS with fresh seeds; crash/leak/oom/timeout
# inputs go to FUZZ_OUT (outside the repository), and any of them makes the run fail.
# Everything, libufo included, is compiled again with clang++ and ASan + UBSan + coverage: one
# sanitizer runtime per process. CUDA stays out (the readers never touch it).
FUZZ_BUILD   ?= $(BUILD)-fuzz
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 20
FUZZ_OUT     ?= $(or $(TMPDIR),/tmp)/ufo-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# No -fopenmp: clang's would add LLVM's libomp as a second OpenMP runtime next to OpenBLAS's
# libgomp, and libomp leaves a /dev/shm/__KMP_REGISTERED_LIB_<pid> file behind every crashed
# input. The readers are serial; the omp_* calls in lib/ bind to GCC's libgomp, named by file
# because clang's -lgomp finds LLVM's libgomp.so alias of libomp. omp.h is clang's (libomp-14-dev).
FUZZ_CXXFLAGS := -std=c++17 -O1 -g -mavx2 -mfma -DNDEBUG -fno-omit-frame-pointer -Wall -Wextra \
                -Wno-unused-parameter -Wno-unknown-pragmas -Wno-source-uses-openmp -MMD -MP $(FUZZ_SAN)
FUZZ_CPPFLAGS = -Ilib -Ikernels -I/usr/include/x86_64-linux-gnu/openblas-openmp $(HDF5_CFLAGS)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.cpp)
FUZZ_ALL     := $(FUZZ_SRC:tests/fuzz/%.cpp=%)
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS    := $(FUZZ_ALL:%=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%=$(FUZZ_BUILD)/obj/%.o)
FUZZ_STAMP   := $(FUZZ_BUILD)/.deps-ok
FUZZ_MODE    := $(FUZZ_BUILD)/.mode
# Rebuild the fuzz objects when the compiler or flags change.
FUZZ_MODE_LINE := $(FUZZ_CXX) $(FUZZ_CXXFLAGS) link: -l:libgomp.so.1
ifneq ($(filter fuzz fuzz-build,$(MAKECMDGOALS)),)
$(shell mkdir -p $(FUZZ_BUILD); [ "$$(cat $(FUZZ_MODE) 2>/dev/null)" = "$(FUZZ_MODE_LINE)" ] || echo "$(FUZZ_MODE_LINE)" > $(FUZZ_MODE))
endif
$(FUZZ_MODE):
	@mkdir -p $(@D)
	@echo "$(FUZZ_MODE_LINE)" > $@

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS) $(FUZZ_BUILD)/seed_images

fuzz: fuzz-build
	$(SAN_RUNTIME) tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_OUT) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(FUZZ_STAMP):
	@mkdir -p $(@D)
	@scripts/check-deps --fuzz >/dev/null 2>&1 || $(MAKE) --no-print-directory deps
	@scripts/check-deps --fuzz
	@touch $@

$(FUZZ_BUILD)/obj/%.cpp.o: %.cpp $(FUZZ_MODE) | $(FUZZ_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libufo.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

FUZZ_LDLIBS   = $(LDLIBS) -l:libgomp.so.1
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.cpp.o $(FUZZ_BUILD)/libufo.a $(FUZZ_MODE)
	$(FUZZ_CXX) -fsanitize=fuzzer $(FUZZ_SAN) $(filter %.o %.a,$^) -o $@ $(FUZZ_LDLIBS)

# The seed writer is an ordinary program (no sanitizer, no coverage).
$(FUZZ_BUILD)/seed_images: tests/fuzz/seed_images.cpp | $(FUZZ_STAMP)
	$(FUZZ_CXX) -std=c++17 -O1 -Wall $< -o $@ -lpng -ljpeg

# --- bench / demo -----------------------------------------------------------
bench: $(TOOLS)
	scripts/bench-compare $(BENCH_ARGS)

demo: $(TOOLS) $(PLUGIN)
	examples/demo.sh

# --- install ----------------------------------------------------------------
install: $(TOOLS) install-plugin
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(wildcard man/*.7) $(DESTDIR)$(PREFIX)/share/man/man7/

# The plugin goes where HDF5 looks without HDF5_PLUGIN_PATH (override with HDF5_PLUGIN_DIR=).
install-plugin: $(PLUGIN)
	install -d $(DESTDIR)$(HDF5_PLUGIN_DIR)
	install -m 644 $(PLUGIN) $(DESTDIR)$(HDF5_PLUGIN_DIR)/

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(TOOL_SRC:tools/%.cpp=$(BUILD)/obj/tools/%.d)
-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_SRC:%=$(FUZZ_BUILD)/obj/%.d)

# Keep object files of the tools (they are intermediates of a pattern chain).
.SECONDARY:
