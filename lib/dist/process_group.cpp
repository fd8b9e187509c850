// process_group.cpp — MPI_COMM_WORLD when built with MPI and started by a launcher; else one
// process. Only the main thread calls MPI (MPI_THREAD_FUNNELED): OpenMP threads never do.
#include "dist/process_group.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#ifdef UFO_MPI
#include <mpi.h>
#endif

namespace ufo::dist {

namespace {
int g_rank = 0, g_size = 1, g_local = 1;
[[maybe_unused]] bool g_mpi = false;   // MPI_Init was called (and MPI_Finalize is due)
double g_allreduce_s = 0.0;

// Launchers set these in every process they start (Open MPI's mpirun, MPICH/Hydra and Slurm
// with PMI, PMIx). A tool run by hand has none of them and never touches MPI, which keeps it
// free of Open MPI's singleton start-up.
[[maybe_unused]] bool launched_by_mpi() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
        if (std::getenv(v)) return true;
    return false;
}
}  // namespace

Session::Session(int& argc, char**& argv) {
#ifdef UFO_MPI
    if (!launched_by_mpi()) return;
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        std::fprintf(stderr, "ufo: MPI_Init failed\n");
        std::exit(1);
    }
    g_mpi = true;
    // Errors in collectives end the job (the default handler aborts), never a hang in a
    // half-finished reduction.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &g_local);
    MPI_Comm_free(&local);
#else
    (void)argc;
    (void)argv;
    // N copies of a build without MPI would each train on every row and race for the same
    // output file: refuse instead.
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const char* n = std::getenv(v); n && std::atoi(n) > 1) {
            std::fprintf(stderr, "ufo: started as one of %s processes, but this build has no MPI (make MPI=1)\n", n);
            std::exit(2);
        }
#endif
}

Session::~Session() {
#ifdef UFO_MPI
    if (g_mpi) MPI_Finalize();
    g_mpi = false;
#endif
}

int rank() { return g_rank; }
int size() { return g_size; }
int local_size() { return g_local; }

void sum(float* data, size_t n) {
#ifdef UFO_MPI
    if (g_size < 2) return;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < n; i += kBucketFloats) {
        const int count = int(std::min(kBucketFloats, n - i));
        MPI_Allreduce(MPI_IN_PLACE, data + i, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    g_allreduce_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#else
    (void)data;
    (void)n;
#endif
}

void sum(double* data, size_t n) {
#ifdef UFO_MPI
    if (g_size < 2 || n == 0) return;
    MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)data;
    (void)n;
#endif
}

int max(int v) {
#ifdef UFO_MPI
    if (g_size < 2) return v;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#endif
    return v;
}

void barrier() {
#ifdef UFO_MPI
    if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

double allreduce_seconds() { return g_allreduce_s; }

void abort(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
#ifdef UFO_MPI
    if (g_mpi && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    std::exit(code);
}

}  // namespace ufo::dist
