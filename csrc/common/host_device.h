// Macros and constants shared by every kernel header of pdfsolve, for C++ and CUDA alike (no torch).
#pragma once

#if defined(__CUDACC__)
#define PDFSOLVE_HD __host__ __device__ __forceinline__
//! For larger host-and-device functions called from several places (the compiler decides on inlining).
#define PDFSOLVE_HD_FUNC __host__ __device__ inline
#else
#define PDFSOLVE_HD inline
#define PDFSOLVE_HD_FUNC inline
#endif

namespace pdfsolve {

//! Distances (Angstrom) at or below this count as coincident atoms and are skipped (reference.COINCIDENT_TOL).
constexpr double kCoincidentTol = 1.4901161193847656e-08;
constexpr double kCoincidentTol2 = kCoincidentTol * kCoincidentTol;
//! 1 / sqrt(2 pi), the normalisation of a unit Gaussian.
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

}  // namespace pdfsolve
