// process_group.h — the processes of one run. Under an MPI launcher (mpirun, srun) in a build
// with MPI (make MPI=auto|1), every process is one rank of MPI_COMM_WORLD and the trainer
// splits each global batch across them; otherwise the group is this one process and every
// call below is a no-op, so a tool behaves exactly as a build without MPI.
//
// Collectives are blocking and must be called by every rank in the same order. A rank that
// fails calls abort(): MPI_Abort ends the whole job, so no other rank waits forever.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ufo::dist {

// MPI_Init on construction when launched by an MPI launcher (and built with MPI),
// MPI_Finalize on destruction. One per process, at the top of main.
class Session {
public:
    Session(int& argc, char**& argv);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
};

int rank();                    // 0 .. size()-1
int size();                    // 1 without MPI
inline bool root() { return rank() == 0; }
int local_size();              // ranks on this machine (1 without MPI)

// In-place element-wise sums over all ranks. The float version runs in buckets of
// kBucketFloats, one MPI_Allreduce each in buffer order, and adds the time it spent to
// allreduce_seconds(). For a given rank count and buffer size the result is the same on
// every run: Open MPI picks its reduction algorithm from those two alone.
inline constexpr size_t kBucketFloats = size_t(1) << 20;   // 4 MiB
void sum(float* data, size_t n);
void sum(double* data, size_t n);
// The largest of every rank's v.
int max(int v);
void barrier();

// Wall time spent in sum(float*) since the start (the gradient all-reduce).
double allreduce_seconds();

// Ends every rank of the job with this exit code (MPI_Abort); a plain exit without MPI.
[[noreturn]] void abort(int code);

}  // namespace ufo::dist
