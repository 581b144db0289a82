// Pair enumeration and work splitting shared by the CPU kernels (csrc/cpu/*.cpp).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/debye_math.h"

namespace pdfsolve {
namespace cpu {

//! Rows i = 0 .. N-2 of the upper triangle (pairs i < j) folded two by two: unit u holds rows u and N-2-u, so
//! every unit has about N pairs and a static split of units over threads is balanced.
inline int64_t n_fold_units(int64_t n) { return n < 2 ? 0 : n / 2; }

//! Calls f(i, j, r, dx, dy, dz, ptype) for every valid pair (both atoms real, r above the coincidence tolerance)
//! in folded units [u0, u1) of one cluster; r and the difference vector pos_i - pos_j are in double.
template <typename P, typename F>
inline void for_each_pair(const P* pos, const int64_t* sp, int64_t n, int n_species, int64_t u0, int64_t u1,
                          F&& f) {
  const int64_t rows = n - 1;
  auto row = [&](int64_t i) {
    const int64_t si = sp[i];
    if (si < 0) return;
    const P* pi = pos + 3 * i;
    for (int64_t j = i + 1; j < n; ++j) {
      const int64_t sj = sp[j];
      if (sj < 0) continue;
      double dx, dy, dz;
      const double d2 = pair_diff<double>(pi, pos + 3 * j, dx, dy, dz);
      if (!(d2 > kCoincidentTol2)) continue;
      f(i, j, std::sqrt(d2), dx, dy, dz, species_pair_index(si, sj, n_species));
    }
  };
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t a = u, b = rows - 1 - u;
    row(a);
    if (b > a) row(b);
  }
}

//! True when the atom-parallel path (one cluster split over threads) should be used instead of the batch split.
inline bool use_atom_parallel(int64_t batch, int64_t n, int64_t work_per_pair) {
  const int64_t nt = at::get_num_threads();
  if (nt <= 1 || batch >= nt || at::in_parallel_region()) return false;
  const int64_t pairs = n * (n - 1) / 2;
  return pairs * std::max<int64_t>(work_per_pair, 1) >= 200000;
}

//! Grain (in fold units) giving each chunk of the atom-parallel path a reasonable amount of work.
inline int64_t atom_grain(int64_t n, int64_t work_per_pair) {
  const int64_t per_unit = std::max<int64_t>(n * std::max<int64_t>(work_per_pair, 1), 1);
  return std::max<int64_t>(1, 50000 / per_unit);
}

//! Calls f(b, i) for every row (cluster b, atom i) of a (B, N) batch, in parallel over all rows: for kernels in
//! which a row owns its output (gather form), so no atomics or thread-local buffers are needed.
template <typename F>
inline void parallel_rows(int64_t batch, int64_t n, int64_t work_per_row, F&& f) {
  if (batch == 0 || n == 0) return;
  const int64_t grain = std::max<int64_t>(1, 20000 / std::max<int64_t>(work_per_row, 1));
  at::parallel_for(0, batch * n, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) f(r / n, r % n);
  });
}

}  // namespace cpu
}  // namespace pdfsolve
