/* The fused LSTM's and GRU's time loops, compiled on first use (see compiled.py). Not a new algorithm: the
 * same equations and the same buffers as lstm.py's / gru.py's Python loops; here a step costs one small
 * matrix product and one vectorised pass instead of eight framework ops.
 *
 * The recurrent matrix product h_{t-1} W_hh^T is our own: W_hh is packed once per call into panels of NR
 * columns (NR = two vector registers) and each step runs a register-blocked micro-kernel over them. On the
 * small, skinny products of a recurrence (B rows, T of them in sequence) a general BLAS call re-packs the
 * weights every step and pays its threading set-up every step; measured on this project's 2-core AMD EPYC,
 * MKL's sgemm reached 45-110 GFLOP/s at the per-step benchmark shapes, a prototype of this kernel 175-210.
 *
 * Threads (OpenMP, torch's own runtime: the library is loaded after torch, whose libgomp.so.1 it then uses)
 * share a step by batch rows when there are rows enough (see make_split: each thread runs its own
 * sequences, no barrier) or by hidden units: a thread computes the gate pre-activations of its units for
 * every row and then their pointwise update, one barrier a step. Layer norm needs row statistics over all
 * units: by units each thread reduces its own, and after a barrier every thread combines the partial
 * (count, mean, M2) triples (Chan et al.'s pairwise update, exact to rounding).
 *
 * Matrices are row-major. The layer files are instantiated for float and double by compiled.py, which
 * replaces REAL, SFX, SIGMOID and TANH textually.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#define BARRIER _Pragma("omp barrier")
#else
#define BARRIER
#endif

#ifndef RNNLAB_NO_MVEC
/* glibc's libmvec has vector versions of exp/tanh; declaring them lets the float64 loops vectorise. */
#pragma omp declare simd notinbranch
extern double exp(double);
#pragma omp declare simd notinbranch
extern double tanh(double);
#endif

#define INLINE static inline __attribute__((always_inline))
/* One copy of a function whatever constants its callers pass. GCC cloned panel_f32 for add = 0 (layer norm's
 * per-step products) and, in the AVX2 build's clone, kept one of the 12 accumulators on the stack: a store and
 * reload on every multiply-add step, 78 % of that clone's samples; layer norm's products took 27 ms of an S1
 * inference where the same products took 15 (perf, one thread). */
#if defined(__GNUC__) && !defined(__clang__)
#define NOCLONE __attribute__((noinline, noclone))
#else
#define NOCLONE __attribute__((noinline))
#endif

/* The vector width this build was compiled for, in bits (compiled.py's vector_bits; rnnlab env). */
int loops_vector_bits(void);

/* Vector width in bytes and the micro-kernel's row block: MR rows x 2 vectors of accumulators must fit
 * the register file with room for two weight vectors and a broadcast (32 registers with AVX-512, 16 else). */
#if defined(__AVX512F__)
#define VB 64
#define MR 8
#elif defined(__AVX__)
#define VB 32
#define MR 6
#else
#define VB 16
#define MR 4
#endif

/* float32 sigmoid and tanh, inlined so that the gate loops vectorise without calls, computed through a
 * double e^x and rounded once (torch's float ops: sigmoid 2.4 ulp, tanh 0.51).
 * Tried first: glibc's vector expf (~1 ulp) and Cephes' float polynomials (sigmoid 2.4 ulp, tanh 1.3):
 * amplified through layer norm and projections over a few steps their errors came out several times the
 * torch ops' in a 2-layer bidirectional all-variants LSTM, which the float32 equality tests catch.
 * e^x in double for 0 <= x <= 104: 2^n e^r, |r| <= ln2/2, degree-11 Taylor polynomial (relative error < 1e-13). */
INLINE double dexp_pos(double x) {
    /* n = rint(x / ln 2) through the 1.5 * 2^52 shifter: t's low mantissa bits then hold n, so 2^n is made below
     * by a 64-bit integer add and shift, which AVX2 has, instead of a double -> int64 conversion, which only
     * AVX-512 DQ has (the AVX2 build ran these loops scalar: sigmoid 5.75 ns an element against 0.49). Same
     * rounding as rint (round to nearest even), so the same n and the same results on every build. */
    const double shifter = 6755399441055744.0;
    const double t = x * 1.4426950408889634 + shifter;
    const double n = t - shifter;
    const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    union {
        unsigned long long i;
        double d;
    } u;
    u.d = t;
    u.i = (u.i + 1023) << 52; /* the shifter's own bits (exponent and bit 51) leave at the top */
    return p * u.d;
}

/* tanh = 1 - 2/(e^2|x| + 1) in double, sign restored; below 4e-4, where that cancels, x (1 - x^2/3)
 * (the next term is 2e-15 of it there). */
INLINE float ftanh(float x) {
    const double xd = x, a = fabs(xd);
    const double big = 1.0 - 2.0 / (dexp_pos(a > 20.0 ? 40.0 : 2.0 * a) + 1.0); /* tanh(20) rounds to 1 */
    return (float)(a < 4e-4 ? xd * (1.0 - xd * xd / 3.0) : copysign(big, xd));
}

/* sigmoid(x) = E/(1+E) for x >= 0, 1/(1+E) below, E = e^|x|: no cancellation on either side. */
INLINE float fsigmoid(float x) {
    const float a = fabsf(x);
    const double e = dexp_pos(a > 104.0f ? 104.0 : (double)a); /* sigmoid(-104) rounds to 0 */
    return (float)(x >= 0.0f ? e / (1.0 + e) : 1.0 / (1.0 + e));
}

INLINE double dsigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

int loops_vector_bits(void) { return VB * 8; }

/* The two float functions over arrays, for tests/test_compiled.py's accuracy check. */
void sigmoid_array_f32(int n, const float *x, float *y) {
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] = fsigmoid(x[i]);
}

void tanh_array_f32(int n, const float *x, float *y) {
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] = ftanh(x[i]);
}

INLINE int imin(int a, int b) { return a < b ? a : b; }

/* This thread's share [*lo, *hi) of n blocks. */
INLINE void share(int n, int tid, int nth, int *lo, int *hi) {
    *lo = (int)((long)n * tid / nth);
    *hi = (int)((long)n * (tid + 1) / nth);
}

INLINE int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

INLINE int thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Partial row statistics (count, mean, M2) of one thread, combined across threads after a barrier. */
typedef struct {
    double n, mean, m2;
} stat3;

/* Two row sums of one thread, added across threads after a barrier (layer norm's backward). */
typedef struct {
    double a, b;
} sum2;

/* Chan, Golub & LeVeque's pairwise combination of the per-thread partials into mean and 1/sqrt(var + eps). */
INLINE void combine_stats(const stat3 *parts, int nth, int stride, double eps, double *mean, double *rstd) {
    double n = 0, mu = 0, m2 = 0;
    for (int k = 0; k < nth; k++) {
        const stat3 p = parts[(size_t)k * stride];
        if (p.n == 0) continue;
        const double nn = n + p.n, d = p.mean - mu;
        mu += d * p.n / nn;
        m2 += p.m2 + d * d * n * p.n / nn;
        n = nn;
    }
    *mean = mu;
    *rstd = 1.0 / sqrt(m2 / n + eps);
}

/* How a loop's threads share a step. By hidden units: every thread takes all rows and its own slice of the
 * units (the same slice of every gate) and whatever needs whole rows (layer norm's statistics, the next
 * step's product) waits at a barrier. By batch rows, when there are rows enough (B >= MR per thread): every
 * thread takes its own sequences and all units, and no barrier is needed at all (rows of a recurrence never
 * meet); each thread then reads all of W_hh. Measured (2 threads, benchmarks/README.md): by rows 5-10 %
 * faster at B = 32 and 64, slower at B = 8 (4 rows a thread half-fill the micro-kernel) except with layer
 * norm, whose three barriers a step by units cost more: so rows from MR rows a thread, MR/2 with layer
 * norm. split: 0 choose, 1 units, 2 rows (the tests force both). */
typedef struct {
    int tid;            /* this thread */
    int rows;           /* 1: split by rows */
    int q0, q1;         /* this thread's rows (by rows), else 0, B */
    int b0, b1, j0, j1; /* its unit blocks and units */
    int r0, r1;         /* its blocks of the R output columns */
    int sn;             /* how many threads' partial row sums to combine: 1 by rows */
    int writer;         /* whether it writes the rows' saved statistics */
    int own;            /* where its partial row sums start: tid * B by rows (its own), else 0 (every thread's) */
} split_t;

INLINE split_t make_split(int split, int ln, int B, int H, int R, int nr, int tid, int nth) {
    split_t s;
    s.tid = tid;
    s.own = 0;
    const int nbH = (H + nr - 1) / nr, nbR = (R + nr - 1) / nr;
    s.rows = split == 2 || (split == 0 && B >= (ln ? MR / 2 : MR) * nth);
    if (s.rows) {
        /* blocks of MR rows, or of MR/2 when that is what gives every thread some */
        const int blk = B >= MR * nth ? MR : MR / 2;
        int lo, hi;
        share((B + blk - 1) / blk, tid, nth, &lo, &hi);
        s.q0 = imin(lo * blk, B);
        s.q1 = imin(hi * blk, B);
        s.b0 = 0, s.b1 = nbH, s.r0 = 0, s.r1 = nbR, s.sn = 1, s.writer = 1, s.own = tid * B;
    } else {
        s.q0 = 0, s.q1 = B;
        share(nbH, tid, nth, &s.b0, &s.b1);
        share(nbR, tid, nth, &s.r0, &s.r1);
        s.sn = nth, s.writer = tid == 0;
    }
    s.j0 = imin(s.b0 * nr, H);
    s.j1 = imin(s.b1 * nr, H);
    return s;
}

/* The rows [*lo, *hi) this thread runs at a step where n rows are active; 0 when it has none (by units it
 * always has, so every thread reaches the step's barriers). */
INLINE int step_rows(const split_t *sp, int n, int *lo, int *hi) {
    *lo = sp->rows ? sp->q0 : 0;
    *hi = sp->rows ? imin(sp->q1, n) : n;
    return *hi > *lo;
}

#define SYNC(sp)      \
    if (!(sp).rows) { \
        BARRIER       \
    }

/* Per-thread gradient sums when split by rows (threads share units), else the output itself; summed into
 * it at the end (reduce_sums). */
INLINE double *thread_sums(double *out, double *all, int n, int rows, int tid) {
    return rows && out ? all + (size_t)tid * n : out;
}

INLINE void reduce_sums(double *out, const double *all, int n, int nth, int tid) {
    int lo, hi;
    share(n, tid, nth, &lo, &hi);
    for (int j = lo; j < hi; j++) {
        double s = 0;
        for (int k = 0; k < nth; k++) s += all[(size_t)k * n + j];
        out[j] += s;
    }
}

static void *alloc_aligned(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}
