// gemm_candidates — times single-precision GEMM at ufo's ViT shapes with each candidate CPU
// library, so that the library of the inference path can be chosen by measurement (not built by
// the Makefile, not installed; scripts/gemm-candidates builds and runs it).
//
// Build (the same command is in scripts/gemm-candidates; needs libdnnl-dev and libxsmm-dev):
//   g++ -std=c++17 -O2 -Wall -Wextra -fopenmp -Ilib -I/usr/include/x86_64-linux-gnu/openblas-openmp
//       tests/tools/gemm_candidates.cpp -o build/gemm-candidates
//       -lxsmm -ldnnl -L/usr/lib/x86_64-linux-gnu/openblas-openmp
//       -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -lpthread -lrt -ldl -lm
//
// usage: gemm-candidates [--preset ref,small] [-b 1,256] [-t 1,2] [-s SHAPES] [-c CANDIDATES]
//                        [--openblas-only] [--min-time 0.2] [--xsmm-rows 64]
//
// Every candidate computes C[M,N] = A[M,K] · W[N,K]^T (row-major fp32, no bias), ufo's
// inference product with constant weights W:
//   openblas     cblas_sgemm(RowMajor, NoTrans, Trans) from the OpenMP OpenBLAS ufo links. Its
//                kernels are chosen when the library loads (0.3.21 picks Haswell/AVX2 on this AMD
//                CPU; OPENBLAS_CORETYPE=SkylakeX gives AVX-512), so the corename column says which.
//   dnnl_sgemm   oneDNN's BLAS-like dnnl_sgemm: row-major (oneDNN >= 1.0), ('N','T').
//   dnnl_matmul  oneDNN's matmul primitive with the weights reordered once into the layout the
//                primitive asks for (format_tag::any): pre-packed weights, as ONNX Runtime does.
//                The corename column holds the implementation oneDNN chose (impl_info_str).
//   libxsmm      a JIT kernel dispatched once per tile shape; libxsmm is column-major and its
//                1.17 JIT refuses a transposed A operand, so W is transposed once (pre-packed) to
//                Wt[K,N] and each block of rows is computed as C^T = Wt^T-view · A^T-view (NN).
// Threads: the same count is given to OpenMP (oneDNN on Debian is built with OpenMP, like
// OpenBLAS here: both share libgomp) and to openblas_set_num_threads; libxsmm's tiles are
// spread over OpenMP threads here (row blocks; columns when there is only one row block).
//
// Output: a TSV table on stdout with the columns of kColumns. Per (candidate, shape, batch,
// threads): 3 warm-up calls, then calls until --min-time seconds and at least 10 calls, and the
// median time per call. A "model" row per (candidate, preset, batch, threads) sums the medians
// of one transformer block's weight products (qkv, proj, fc1, fc2; patch and the attention
// products are not weight GEMMs of the block) when all four were measured.
// Each output is checked against a double-precision triple loop on the same seeded uniform
// [-1,1] inputs: max |c - ref| / max |ref| above 1e-4 prints the row, a FAIL line on stderr, and
// exits 1.
#include <cblas.h>
#include <libxsmm.h>
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "layers/onednn_isa.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

const char* const kColumns =
    "candidate\tcorename\tpreset\tbatch\tthreads\tshape\tM\tN\tK\tmedian_us\tgflop_per_s\tmax_rel_err";
const double kTolerance = 1e-4;
const int kWarmup = 3, kMinCalls = 10;

// ---- shapes ---------------------------------------------------------------------------------

struct Shape {
  std::string name;
  long N, K;
  bool patch;  // patch embedding: B*49 rows (no class token) instead of B*50
};

struct Preset {
  std::string name;
  std::vector<Shape> shapes;
};

// The reference ViT (dim 192, MLP 768, 3 heads, 49 patches + class token = 50 tokens) and the
// "small" preset (dim 96, MLP 192); the patch embedding is a K=16 product (4x4x1 patches).
Preset make_preset(const std::string& name) {
  long C, H;
  if (name == "ref") {
    C = 192, H = 768;
  } else if (name == "small") {
    C = 96, H = 192;
  } else {
    throw std::runtime_error("unknown preset '" + name + "' (ref or small)");
  }
  return {name,
          {{"qkv", 3 * C, C, false},
           {"proj", C, C, false},
           {"fc1", H, C, false},
           {"fc2", C, H, false},
           {"patch", C, 16, true}}};
}
const long kTokens = 50, kPatches = 49;
const char* const kBlockShapes[] = {"qkv", "proj", "fc1", "fc2"};  // summed into "model"

// One product to compute: all pointers stay valid while a candidate object lives.
struct Problem {
  long M, N, K;
  const float* A;  // [M,K]
  const float* W;  // [N,K]
  float* C;        // [M,N]
};

// ---- candidates ---------------------------------------------------------------------------
// Each candidate does its one-time work (packing, primitive creation, JIT dispatch) in its
// constructor, which runs after the thread count is set; run() is what is timed.

struct Candidate {
  virtual ~Candidate() = default;
  virtual void run() = 0;
  virtual std::string corename() const = 0;
};

struct OpenBlas : Candidate {
  Problem p;
  explicit OpenBlas(const Problem& p) : p(p) {}
  void run() override {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.M, p.N, p.K, 1.0f, p.A, p.K, p.W,
                p.K, 0.0f, p.C, p.N);
  }
  std::string corename() const override { return openblas_get_corename(); }
};

std::string dnnl_isa_name() { return ufo::onednn_isa_name(); }

struct DnnlSgemm : Candidate {
  Problem p;
  explicit DnnlSgemm(const Problem& p) : p(p) {}
  void run() override {
    // Row-major like cblas with RowMajor: op(A) = A [M,K] (lda K), op(B) = W^T (W is [N,K],
    // ldb K, 'T'), C [M,N] (ldc N).
    dnnl_status_t st =
        dnnl_sgemm('N', 'T', p.M, p.N, p.K, 1.0f, p.A, p.K, p.W, p.K, 0.0f, p.C, p.N);
    if (st != dnnl_success) throw std::runtime_error("dnnl_sgemm failed: " + std::to_string(st));
  }
  std::string corename() const override { return "dnnl:" + dnnl_isa_name(); }
};

// One CPU engine and stream for the whole run (creating them is not what we measure).
dnnl::engine& dnnl_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}
dnnl::stream& dnnl_stream() {
  static dnnl::stream s(dnnl_engine());
  return s;
}

struct DnnlMatmul : Candidate {
  dnnl::matmul prim;
  dnnl::memory src, wei, dst;  // wei: the packed copy of W, owned by oneDNN
  std::string impl;
  explicit DnnlMatmul(const Problem& p) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    auto& eng = dnnl_engine();
    // matmul is src[M,K] · weights[K,N]; ufo's W[N,K] row-major is weights[K,N] with tag ba.
    dnnl::memory::desc src_md({p.M, p.K}, dt::f32, tag::ab);
    dnnl::memory::desc wei_any({p.K, p.N}, dt::f32, tag::any);
    dnnl::memory::desc dst_md({p.M, p.N}, dt::f32, tag::ab);
    // oneDNN 2.x API (op desc + primitive desc); oneDNN 3 folds the desc into the pd.
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_any, dst_md), eng);
    impl = pd.impl_info_str();
    dnnl::memory user_w({{p.K, p.N}, dt::f32, tag::ba}, eng, const_cast<float*>(p.W));
    if (pd.weights_desc() != user_w.get_desc()) {
      wei = dnnl::memory(pd.weights_desc(), eng);
      dnnl::reorder(user_w, wei).execute(dnnl_stream(), user_w, wei);
      dnnl_stream().wait();
      impl += "+packed";
    } else {
      wei = user_w;  // the primitive takes W as it is: nothing to pack
    }
    src = dnnl::memory(src_md, eng, const_cast<float*>(p.A));
    dst = dnnl::memory(dst_md, eng, p.C);
    prim = dnnl::matmul(pd);
  }
  void run() override {
    prim.execute(dnnl_stream(),
                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    dnnl_stream().wait();
  }
  std::string corename() const override { return impl; }
};

// libxsmm_init/finalize for the program's lifetime.
struct XsmmLibrary {
  XsmmLibrary() { libxsmm_init(); }
  ~XsmmLibrary() { libxsmm_finalize(); }
  XsmmLibrary(const XsmmLibrary&) = delete;
  XsmmLibrary& operator=(const XsmmLibrary&) = delete;
};

struct Xsmm : Candidate {
  // A tile: rows [r0, r0+rows) of C, columns [c0, c0+cols), one dispatched kernel.
  struct Tile {
    long r0, rows, c0, cols;
    libxsmm_smmfunction kernel;
  };
  Problem p;
  int threads;
  std::vector<float> wt;  // W^T as [K,N] row-major = W as an N x K column-major matrix, ld N
  std::vector<Tile> tiles;

  Xsmm(const Problem& p, int threads, long block_rows) : p(p), threads(threads) {
    wt.resize(size_t(p.K) * p.N);
    for (long n = 0; n < p.N; ++n)
      for (long k = 0; k < p.K; ++k) wt[size_t(k) * p.N + n] = p.W[size_t(n) * p.K + k];
    // Column-major views: C row-major [M,N] is the N x M matrix C^T (ldc N), A [M,K] is the
    // K x M matrix A^T (ldb K), Wt is the N x K matrix W (lda N). So per tile
    // C^T[c0:, r0:] = W[c0:, :] · A^T[:, r0:]: libxsmm's (m, n, k) = (cols, rows, K), no
    // transposes. With fewer row blocks than threads (B=1), split the columns instead.
    long row_blocks = (p.M + block_rows - 1) / block_rows;
    long col_parts = row_blocks < threads ? threads : 1;
    long col_step = (p.N + col_parts - 1) / col_parts;
    std::map<std::pair<long, long>, libxsmm_smmfunction> kernels;  // (cols, rows) -> kernel
    const libxsmm_blasint lda = p.N, ldb = p.K, ldc = p.N;
    const float alpha = 1.0f, beta = 0.0f;  // beta 0: C is overwritten, never read
    const int flags = LIBXSMM_GEMM_FLAG_NONE, prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
    for (long r0 = 0; r0 < p.M; r0 += block_rows) {
      for (long c0 = 0; c0 < p.N; c0 += col_step) {
        Tile t{r0, std::min(block_rows, p.M - r0), c0, std::min(col_step, p.N - c0), nullptr};
        auto& k = kernels[{t.cols, t.rows}];
        if (!k)
          k = libxsmm_smmdispatch(t.cols, t.rows, p.K, &lda, &ldb, &ldc, &alpha, &beta, &flags,
                                  &prefetch);
        if (!k)
          throw std::runtime_error("libxsmm_smmdispatch returned no kernel for m=" +
                                   std::to_string(t.cols) + " n=" + std::to_string(t.rows) +
                                   " k=" + std::to_string(p.K));
        t.kernel = k;
        tiles.push_back(t);
      }
    }
  }
  void run() override {
    const long ntiles = long(tiles.size());
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (long i = 0; i < ntiles; ++i) {
      const Tile& t = tiles[i];
      t.kernel(wt.data() + t.c0, p.A + t.r0 * p.K, p.C + t.r0 * p.N + t.c0);
    }
  }
  std::string corename() const override {
    return std::string("xsmm:") + libxsmm_get_target_arch();
  }
};

const char* const kCandidates[] = {"openblas", "dnnl_sgemm", "dnnl_matmul", "libxsmm"};

std::unique_ptr<Candidate> make_candidate(const std::string& name, const Problem& p, int threads,
                                          long xsmm_rows) {
  if (name == "openblas") return std::make_unique<OpenBlas>(p);
  if (name == "dnnl_sgemm") return std::make_unique<DnnlSgemm>(p);
  if (name == "dnnl_matmul") return std::make_unique<DnnlMatmul>(p);
  if (name == "libxsmm") return std::make_unique<Xsmm>(p, threads, xsmm_rows);
  throw std::runtime_error("unknown candidate '" + name + "'");
}

// ---- measurement ----------------------------------------------------------------------------

// The double-precision reference, rows in parallel (not timed).
std::vector<double> reference(long M, long N, long K, const std::vector<float>& A,
                              const std::vector<float>& W) {
  std::vector<double> ref(size_t(M) * N);
#pragma omp parallel for schedule(static)
  for (long m = 0; m < M; ++m)
    for (long n = 0; n < N; ++n) {
      double s = 0;
      for (long k = 0; k < K; ++k) s += double(A[size_t(m) * K + k]) * double(W[size_t(n) * K + k]);
      ref[size_t(m) * N + n] = s;
    }
  return ref;
}

double max_rel_err(const std::vector<float>& C, const std::vector<double>& ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < C.size(); ++i) {
    double d = std::fabs(double(C[i]) - ref[i]);
    if (!(d <= diff)) diff = d;  // also catches NaN (output never written)
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return diff / scale;
}

// Median seconds per call: kWarmup untimed calls, then calls until min_time and kMinCalls.
double time_median(Candidate& c, double min_time) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < kWarmup; ++i) c.run();
  std::vector<double> t;
  double total = 0;
  while (total < min_time || int(t.size()) < kMinCalls) {
    auto t0 = clock::now();
    c.run();
    double dt = std::chrono::duration<double>(clock::now() - t0).count();
    t.push_back(dt);
    total += dt;
  }
  std::sort(t.begin(), t.end());
  size_t n = t.size();
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

struct Result {
  std::string candidate, corename;
  long M, N, K;
  double seconds, err;
};

void print_row(const std::string& cand, const std::string& core, const std::string& preset,
               long batch, int threads, const std::string& shape, const std::string& M,
               const std::string& N, const std::string& K, double seconds, double flops,
               double err) {
  std::printf("%s\t%s\t%s\t%ld\t%d\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.3g\n", cand.c_str(),
              core.c_str(), preset.c_str(), batch, threads, shape.c_str(), M.c_str(), N.c_str(),
              K.c_str(), seconds * 1e6, flops / seconds * 1e-9, err);
  std::fflush(stdout);
}

// ---- command line ---------------------------------------------------------------------------

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "gemm-candidates: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<long> positive_list(const std::string& opt, const std::string& s) {
  std::vector<long> out;
  for (const auto& x : split(s)) {
    char* end = nullptr;
    long v = std::strtol(x.c_str(), &end, 10);
    if (x.empty() || *end || v < 1)
      usage_error("option " + opt + ": '" + x + "' is not a positive integer");
    out.push_back(v);
  }
  return out;
}

const char* const kHelp =
    "usage: gemm-candidates [options]   (scripts/gemm-candidates builds and runs it)\n"
    "  --preset LIST      ref,small (default ref)\n"
    "  -b LIST            batch sizes (default 1,256): M = B*50 (patch: B*49)\n"
    "  -t LIST            thread counts (default 1,2)\n"
    "  -s LIST            shapes among qkv,proj,fc1,fc2,patch (default all)\n"
    "  -c LIST            candidates among openblas,dnnl_sgemm,dnnl_matmul,libxsmm (default all)\n"
    "  --openblas-only    keep only openblas of the candidates (for a second run under\n"
    "                     OPENBLAS_CORETYPE; prints just the header when openblas is not chosen)\n"
    "  --min-time SEC     minimum timed seconds per row (default 0.2; at least 10 calls)\n"
    "  --xsmm-rows R      rows per libxsmm kernel call (default 64)\n"
    "Prints a TSV table on stdout; exits 1 when an output is off by more than 1e-4 (relative).\n";

}  // namespace

int main(int argc, char** argv) try {
  std::vector<std::string> presets{"ref"}, shapes, cands(std::begin(kCandidates), std::end(kCandidates));
  std::vector<long> batches{1, 256}, threads{1, 2};
  bool openblas_only = false;
  double min_time = 0.2;
  long xsmm_rows = 64;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--preset") {
      presets = split(value());
    } else if (a == "-b") {
      batches = positive_list(a, value());
    } else if (a == "-t") {
      threads = positive_list(a, value());
    } else if (a == "-s") {
      shapes = split(value());
    } else if (a == "-c") {
      cands = split(value());
    } else if (a == "--openblas-only") {
      openblas_only = true;
    } else if (a == "--min-time") {
      std::string v = value();
      char* end = nullptr;
      min_time = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(min_time >= 0)) usage_error("--min-time: bad value '" + v + "'");
    } else if (a == "--xsmm-rows") {
      xsmm_rows = positive_list(a, value()).at(0);
    } else {
      usage_error("unknown argument '" + a + "'");
    }
  }
  for (const auto& c : cands)
    if (std::find(std::begin(kCandidates), std::end(kCandidates), c) == std::end(kCandidates))
      usage_error("unknown candidate '" + c + "'");
  for (const auto& s : shapes)
    if (s != "qkv" && s != "proj" && s != "fc1" && s != "fc2" && s != "patch")
      usage_error("unknown shape '" + s + "'");
  if (openblas_only) {
    bool had = std::find(cands.begin(), cands.end(), "openblas") != cands.end();
    cands.assign(had ? 1 : 0, "openblas");
  }
  std::vector<Preset> preset_list;
  for (const auto& name : presets) {
    try {
      preset_list.push_back(make_preset(name));
    } catch (const std::exception& e) {
      usage_error(e.what());
    }
  }

  XsmmLibrary xsmm_library;
  dnnl_version_t const* dv = dnnl_version();
  std::fprintf(stderr, "gemm-candidates: OpenBLAS %s (core %s); oneDNN %d.%d.%d (cpu runtime %s); libxsmm %s (target %s)\n",
               openblas_get_config(), openblas_get_corename(), dv->major, dv->minor, dv->patch,
               dv->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "not OpenMP", LIBXSMM_VERSION,
               libxsmm_get_target_arch());
  std::puts(kColumns);
  std::fflush(stdout);

  for (const auto& preset : preset_list) {
    for (long batch : batches) {
      // (candidate, threads) -> shape -> result, for the model rows after this batch.
      std::map<std::pair<std::string, int>, std::map<std::string, Result>> block;
      for (const auto& shape : preset.shapes) {
        if (!shapes.empty() && std::find(shapes.begin(), shapes.end(), shape.name) == shapes.end())
          continue;
        const long M = batch * (shape.patch ? kPatches : kTokens), N = shape.N, K = shape.K;
        std::mt19937 rng(20240601u);  // same seed for every shape: reproducible inputs
        std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
        std::vector<float> A(size_t(M) * K), W(size_t(N) * K), C(size_t(M) * N);
        for (auto& x : A) x = uni(rng);
        for (auto& x : W) x = uni(rng);
        const std::vector<double> ref = reference(M, N, K, A, W);
        const double flops = 2.0 * M * N * K;
        for (long nt : threads) {
          for (const auto& name : cands) {
            // Both runtimes read the count when a call (or primitive creation) starts.
            omp_set_num_threads(int(nt));
            openblas_set_num_threads(int(nt));
            std::fill(C.begin(), C.end(), std::numeric_limits<float>::quiet_NaN());
            auto cand = make_candidate(name, Problem{M, N, K, A.data(), W.data(), C.data()},
                                       int(nt), xsmm_rows);
            double sec = time_median(*cand, min_time);
            double err = max_rel_err(C, ref);  // the output of the last timed call
            print_row(name, cand->corename(), preset.name, batch, int(nt), shape.name,
                      std::to_string(M), std::to_string(N), std::to_string(K), sec, flops, err);
            if (!(err <= kTolerance)) {
              std::fprintf(stderr,
                           "gemm-candidates: FAIL %s %s B=%ld t=%ld %s: max relative error %g > %g\n",
                           name.c_str(), preset.name.c_str(), batch, nt, shape.name.c_str(), err,
                           kTolerance);
              return 1;
            }
            block[{name, int(nt)}][shape.name] = Result{name, cand->corename(), M, N, K, sec, err};
          }
        }
      }
      for (long nt : threads) {
        for (const auto& name : cands) {
          const auto& got = block[{name, int(nt)}];
          double sec = 0, flops = 0, err = 0;
          bool complete = true;
          for (const char* s : kBlockShapes) {
            auto it = got.find(s);
            if (it == got.end()) {
              complete = false;
              break;
            }
            sec += it->second.seconds;
            flops += 2.0 * it->second.M * it->second.N * it->second.K;
            err = std::max(err, it->second.err);
          }
          if (!complete) continue;
          print_row(name, got.begin()->second.corename, preset.name, batch, int(nt), "model",
                    std::to_string(batch * kTokens), "-", "-", sec, flops, err);
        }
      }
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gemm-candidates: error: %s\n", e.what());
  return 1;
}
