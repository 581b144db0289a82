// Batched L-BFGS-B on the GPU with reverse communication on the device, and whole runs of the reconstruction
// solvers on it (trilateration, affinity fit: the objectives of csrc/optim/objectives.h).
//
// The iteration logic is the CPU's (csrc/optim/lbfgsb_core.h, host and device code), one problem per CUDA thread:
// its work between two evaluations (generalized Cauchy point with its sequential breakpoint loop, subspace step,
// line-search bookkeeping) is branchy, O(m n) and mostly sequential, so problems, not variables, are what runs in
// parallel. Each problem's state and workspace lie contiguously in global memory (no coalescing across threads;
// the work is latency-bound and L1/L2-cached). The objective, O(N^2) per evaluation, gets a block per problem.
//
// The host loop (run_batch, written once, templated on the objective): a start kernel, then rounds of objective
// kernel (f and g at x for every running problem) and step kernel (tell(f): every running problem advances until
// it next needs f and g, or finishes). Every kCheckEvery rounds the step kernel counts the problems still running
// and the host reads the count (one sync). Every round adds one evaluation to each running problem, and a run
// stops within two evaluations of maxfun, so the loop ends.
#include <cuda_runtime.h>

#include "common/geometry_math.h"
#include "common/vec3.h"
#include "cuda/cuda_common.cuh"
#include "cuda/lbfgsb_kernels.h"
#include "optim/lbfgsb_core.h"
#include "optim/pair_terms.h"

namespace pdfsolve {
namespace cuda {
namespace {

using optim::LbfgsbArrays;
using optim::LbfgsbCore;
using optim::LbfgsbState;
using optim::Status;

constexpr int kStepThreads = 32;        // problems per block of the solver kernels: small batches spread over SMs
constexpr int kObjectiveThreads = 128;  // threads per problem in the objective kernel (a power of two: block_sum)
constexpr int kCheckEvery = 8;          // rounds between two reads of the running-problem count
constexpr size_t kAlign = 256;          // byte alignment of each workspace array

//! B problems of n variables with memory m on the device.
struct DeviceBatch {
  LbfgsbState* states;                // (B,)
  double* x;                          // (B, n) points where f and g are wanted; solutions at the end
  double* g;                          // (B, n) gradients at x, written by the objective
  double* f;                          // (B,) f at x, written by the objective
  const double *lower, *upper;        // (B, n)
  double *state_work, *scratch;       // (B, lbfgsb_state_doubles), (B, lbfgsb_scratch_doubles)
  int64_t* scratch_idx;               // (B, lbfgsb_scratch_indices)
  int* running;                       // problems still running after a counted step
  int64_t B, n, m;

  PDFSOLVE_HD LbfgsbArrays arrays(int64_t b) const {
    return LbfgsbArrays::bind(x + b * n, g + b * n, lower + b * n, upper + b * n,
                              state_work + b * optim::lbfgsb_state_doubles(n, m),
                              scratch + b * optim::lbfgsb_scratch_doubles(n, m),
                              scratch_idx + b * optim::lbfgsb_scratch_indices(n), n, m);
  }
  PDFSOLVE_HD bool active(int64_t b) const { return states[b].status == Status::kRunning; }
};

size_t aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

//! Byte offsets of the arrays of a DeviceBatch (without x and the bounds, which the caller owns) in the workspace.
struct Layout {
  size_t states, g, f, state_work, scratch, scratch_idx, running, total;

  Layout(int64_t B, int64_t n, int64_t m) {
    size_t at = 0;
    auto place = [&at](size_t bytes) {
      const size_t here = at;
      at += aligned(bytes);
      return here;
    };
    states = place(B * sizeof(LbfgsbState));
    g = place(B * n * sizeof(double));
    f = place(B * sizeof(double));
    state_work = place(B * optim::lbfgsb_state_doubles(n, m) * sizeof(double));
    scratch = place(B * optim::lbfgsb_scratch_doubles(n, m) * sizeof(double));
    scratch_idx = place(B * optim::lbfgsb_scratch_indices(n) * sizeof(int64_t));
    running = place(sizeof(int));
    total = at;
  }
};

DeviceBatch carve(void* workspace, double* x, const double* lower, const double* upper, int64_t B, int64_t n,
                  int64_t m) {
  const Layout L(B, n, m);
  char* w = static_cast<char*>(workspace);
  return DeviceBatch{reinterpret_cast<LbfgsbState*>(w + L.states),
                     x,
                     reinterpret_cast<double*>(w + L.g),
                     reinterpret_cast<double*>(w + L.f),
                     lower,
                     upper,
                     reinterpret_cast<double*>(w + L.state_work),
                     reinterpret_cast<double*>(w + L.scratch),
                     reinterpret_cast<int64_t*>(w + L.scratch_idx),
                     reinterpret_cast<int*>(w + L.running),
                     B,
                     n,
                     m};
}

// ---- per-problem solver work (one thread) ----------------------------------------------------------------------
//! A fresh run of problem b from x0 (in v.x).
PDFSOLVE_HD_FUNC void start_problem(const DeviceBatch& v, int64_t b, const optim::Options& opt) {
  LbfgsbState st(v.n, opt);
  LbfgsbCore(st, v.arrays(b)).start();
  v.states[b] = st;
}

//! Hands f and g at x to running problem b, which advances to its next point; whether it is still running.
PDFSOLVE_HD_FUNC bool step_problem(const DeviceBatch& v, int64_t b) {
  LbfgsbState st = v.states[b];
  LbfgsbCore(st, v.arrays(b)).tell(v.f[b]);
  v.states[b] = st;
  return st.status == Status::kRunning;
}

__global__ void start_kernel(DeviceBatch v, optim::Options opt) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b < v.B) start_problem(v, b, opt);
}

//! count: add the problems still running afterwards to *v.running.
__global__ void step_kernel(DeviceBatch v, bool count) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= v.B || !v.active(b)) return;
  if (step_problem(v, b) && count) atomicAdd(v.running, 1);
}

__global__ void results_kernel(DeviceBatch v, double* f, int64_t* iterations, int64_t* status) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= v.B) return;
  const LbfgsbState& st = v.states[b];
  f[b] = st.f;
  iterations[b] = st.iter;
  status[b] = static_cast<int64_t>(st.status);
}

// ---- objectives ------------------------------------------------------------------------------------------------
// An objective over the xyz of N atoms per cluster is a struct with N and
//   PDFSOLVE_HD_FUNC double atom(int64_t b, int64_t i, const double* x, double* gi) const;
// atom i of cluster b (x: its 3N coordinates): its gradient into gi (3 values; zero for padding) and its share of
// f. Every atom computes its whole gradient (no atomics) and the shares sum to f.

//! f and g of every running problem at v.x: one block per cluster, threads over its atoms; skips the finished
//! problems.
template <typename Objective>
__global__ void objective_kernel(DeviceBatch v, Objective obj) {
  __shared__ double red[kObjectiveThreads];
  const int64_t b = blockIdx.x;
  if (!v.active(b)) return;  // the whole block
  const double* x = v.x + b * v.n;
  double* g = v.g + b * v.n;
  double f = 0;
  for (int64_t i = threadIdx.x; i < obj.N; i += blockDim.x) f += obj.atom(b, i, x, g + 3 * i);
  f = block_sum(f, red);
  if (threadIdx.x == 0) v.f[b] = f;
}

//! Whole runs of B clusters of obj.N atoms (3N variables each) from x0 (in x): a start kernel, then rounds of the
//! objective kernel and the step kernel until no problem runs, then the results. Writes x, f (B,), iterations
//! (B,), status (B,).
template <typename Objective>
cudaError_t run_batch(double* x, const double* lower, const double* upper, const Objective& obj, double* f,
                      int64_t* iterations, int64_t* status, void* workspace, int64_t B, const optim::Options& opt,
                      cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  const DeviceBatch v = carve(workspace, x, lower, upper, B, 3 * obj.N, opt.m);
  const unsigned blocks = static_cast<unsigned>((B + kStepThreads - 1) / kStepThreads);
  start_kernel<<<blocks, kStepThreads, 0, stream>>>(v, opt);
  for (int64_t round = 1;; ++round) {
    objective_kernel<<<static_cast<unsigned>(B), kObjectiveThreads, 0, stream>>>(v, obj);
    const bool count = round % kCheckEvery == 0;
    if (!count) {
      step_kernel<<<blocks, kStepThreads, 0, stream>>>(v, false);
      continue;
    }
    int running = 0;
    cudaMemsetAsync(v.running, 0, sizeof(int), stream);
    step_kernel<<<blocks, kStepThreads, 0, stream>>>(v, true);
    cudaMemcpyAsync(&running, v.running, sizeof(int), cudaMemcpyDeviceToHost, stream);
    cudaError_t err = cudaStreamSynchronize(stream);
    if (err == cudaSuccess) err = cudaGetLastError();  // launch errors of this and the previous rounds
    if (err != cudaSuccess) return err;
    if (running == 0) break;
  }
  results_kernel<<<blocks, kStepThreads, 0, stream>>>(v, f, iterations, status);
  return cudaGetLastError();
}

// ---- trilateration objective (optim::TrilaterationObjective) ---------------------------------------------------
//! One term (d - target)^2, d = |a - b|, of optim::TrilaterationObjective: added to f when counted, its gradient
//! 2 (d - target) (a - b) / d with respect to a added to ga (none for coincident points).
PDFSOLVE_HD void add_distance_term(const double* a, const double* b, double target, bool counted, double& f,
                                   double* ga) {
  double dx, dy, dz;
  const double d = geometry::safe_distance(pair_diff<double>(a, b, dx, dy, dz));
  const double r = d - target;
  if (counted) f += r * r;
  if (d == 0) return;
  optim::add_pair_gradient(2.0 * r / d, dx, dy, dz, ga, nullptr);
}

struct Trilateration {
  const bool* mask;            // (B, N)
  const double* target_pair;   // (B, N, N), i < j read
  const double* target_points; // (B, N, P)
  const double* points;        // (P, 3)
  int64_t N, P;

  //! Atom i's share of f: the terms of its pairs with j > i and of its points.
  PDFSOLVE_HD_FUNC double atom(int64_t b, int64_t i, const double* x, double* gi) const {
    const bool* M = mask + b * N;
    const double* TP = target_pair + b * N * N;
    const double* xi = x + 3 * i;
    gi[0] = gi[1] = gi[2] = 0;
    double f = 0;
    if (!M[i]) return f;
    for (int64_t j = 0; j < N; ++j) {
      if (j == i || !M[j]) continue;
      add_distance_term(xi, x + 3 * j, i < j ? TP[i * N + j] : TP[j * N + i], j > i, f, gi);
    }
    const double* TS = target_points + (b * N + i) * P;
    for (int64_t q = 0; q < P; ++q) add_distance_term(xi, points + 3 * q, TS[q], true, f, gi);
    return f;
  }
};

// ---- affinity objective (optim::AffinityObjective) -------------------------------------------------------------
struct Affinity {
  const bool* mask;      // (B, N)
  const double* target;  // (B, N, N), i < j read
  const double* sigma;   // (B,)
  int64_t N;

  //! Atom i's share of f: the terms of its pairs with j > i. Its gradient sums the pairs in the order j = 0..N-1,
  //! the CPU objective's order, each pair's term as the CPU computes it ((x_j - x_i) s subtracted there).
  PDFSOLVE_HD_FUNC double atom(int64_t b, int64_t i, const double* x, double* gi) const {
    const bool* M = mask + b * N;
    const double* T = target + b * N * N;
    const double* xi = x + 3 * i;
    gi[0] = gi[1] = gi[2] = 0;
    double f = 0;
    if (!M[i]) return f;
    const double c = optim::affinity_rate(sigma[b]);
    for (int64_t j = 0; j < N; ++j) {
      if (j == i || !M[j]) continue;
      double dx, dy, dz;
      const double d2 = pair_diff<double>(xi, x + 3 * j, dx, dy, dz);
      const optim::PairTerm t = optim::affinity_pair_term(d2, i < j ? T[i * N + j] : T[j * N + i], c);
      if (j > i) f += t.f;
      optim::add_pair_gradient(t.s, dx, dy, dz, gi, nullptr);
    }
    return f;
  }
};

}  // namespace

size_t solver_workspace_bytes(int64_t B, int64_t N, const optim::Options& opt) {
  return Layout(B, 3 * N, opt.m).total;
}

cudaError_t trilaterate(double* x, const double* lower, const double* upper, const bool* mask,
                        const double* target_pair, const double* target_points, const double* points, double* f,
                        int64_t* iterations, int64_t* status, void* workspace, const TrilaterationArgs& a,
                        const optim::Options& opt, cudaStream_t stream) {
  const Trilateration obj{mask, target_pair, target_points, points, a.N, a.P};
  return run_batch(x, lower, upper, obj, f, iterations, status, workspace, a.B, opt, stream);
}

cudaError_t fit_affinity(double* x, const double* lower, const double* upper, const bool* mask, const double* target,
                         const double* sigma, double* f, int64_t* iterations, int64_t* status, void* workspace,
                         const AffinityArgs& a, const optim::Options& opt, cudaStream_t stream) {
  const Affinity obj{mask, target, sigma, a.N};
  return run_batch(x, lower, upper, obj, f, iterations, status, workspace, a.B, opt, stream);
}

}  // namespace cuda
}  // namespace pdfsolve
