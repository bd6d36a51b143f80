/* The fused LSTM's time loops, compiled on first use (see compiled.py). Not a new algorithm: the same
 * equations and the same buffers as lstm.py's Python loop, with the per-step work done here so that a step
 * costs one BLAS call and one vectorised pass instead of eight framework ops.
 *
 * Forward, step t, rows b < bs[t] (sequences sorted longest first):
 *     Z_t += H_{t-1} W_hh^T                                  (gemm; Z_t holds W_ih x_t + b_ih + b_hh on entry)
 *     i = sigma(z_i + w_ci c_{t-1})    f = sigma(z_f + w_cf c_{t-1})    (coupled: f = 1 - i)
 *     g = tanh(z_g)    c_t = f c_{t-1} + i g
 *     o = sigma(z_o + w_co c_t)    m_t = o tanh(c_t)
 *     h_t = m_t (or m_t W_hr^T with a projection: gemm)
 *   Z_t is overwritten by the activations i|f|g|o (coupled: i|g|o): they are the recording and what
 *   backward reads.
 * Backward, step t in reverse, dc carried, DH_t = dL/dh_t (output gradient, recurrent part added here):
 *     dm = DH_t (projection: DH_t W_hr)
 *     dc += dm o (1 - tanh^2 c_t);   dz_o = dm tanh(c_t) o (1 - o);   dc += dz_o w_co
 *     dz_i = dc g i(1-i)  (coupled: dc (g - c_{t-1}) i(1-i));   dz_f = dc c_{t-1} f(1-f);   dz_g = dc i (1-g^2)
 *     dc = dc f + dz_i w_ci + dz_f w_cf
 *     DH_{t-1} += dZ_t W_hh   (gemm; at t = 0 it is dh0)
 *
 * Matrices are row-major; BLAS is Fortran (column-major), so a row-major (n x k) matrix is passed as the
 * column-major (k x n) one with leading dimension k. The gemm is torch's own (MKL's sgemm_/dgemm_,
 * handed over as a function pointer), so it runs with torch's threads.
 *
 * This file is instantiated for float and double by compiled.py (REAL, SFX, EXP, TANH).
 */
#include <math.h>
#include <stddef.h>

#ifndef RNNLAB_NO_MVEC
/* glibc's libmvec has vector versions of expf/tanhf/exp/tanh; declaring them lets the loops vectorise. */
#pragma omp declare simd notinbranch
extern float expf(float);
#pragma omp declare simd notinbranch
extern float tanhf(float);
#pragma omp declare simd notinbranch
extern double exp(double);
#pragma omp declare simd notinbranch
extern double tanh(double);
#endif

#define INLINE static inline __attribute__((always_inline))

INLINE float dexpf(float x) { return (float)exp((double)x); }
INLINE float dtanhf(float x) { return (float)tanh((double)x); }
