/* ---- The first-order linear recurrence of minGRU / minLSTM (kernels/scan.py; REAL = SFX) ----
 * y_t = a_t y_{t-1} + b_t for t = 0..T-1 from y_{-1} = h0, over N independent elements (a, b, y time-major and
 * contiguous: (T, N)). Every step is one multiply-add per element and nothing else, so the loop is bound by
 * memory: each thread runs its own blocks of elements through all T steps, keeping their state in a small
 * array (L1) and streaming a_t, b_t, y_t once. No barrier: elements never meet. */
#define LINREC_BLOCK 256

void linrec_SFX(int nth_req, int T, long N, const REAL *a, const REAL *b, const REAL *h0, REAL *y) {
    const long nblocks = (N + LINREC_BLOCK - 1) / LINREC_BLOCK;
#pragma omp parallel for num_threads(nth_req) schedule(static)
    for (long k = 0; k < nblocks; k++) {
        const long c0 = k * LINREC_BLOCK, n = N - c0 < LINREC_BLOCK ? N - c0 : LINREC_BLOCK;
        REAL h[LINREC_BLOCK] __attribute__((aligned(64)));
        for (long j = 0; j < n; j++) h[j] = h0[c0 + j];
        for (int t = 0; t < T; t++) {
            const REAL *restrict at = a + (size_t)t * N + c0;
            const REAL *restrict bt = b + (size_t)t * N + c0;
            REAL *restrict yt = y + (size_t)t * N + c0;
#pragma omp simd
            for (long j = 0; j < n; j++) {
                h[j] = bt[j] + at[j] * h[j];
                yt[j] = h[j];
            }
        }
    }
}
