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

/* ---- minGRU / minLSTM whole: gates, candidate and recurrence in one pass (kernels/scan.py, method "fused") ----
 * From the pre-activations k (T, B, G*H) plus bias (G*H, added here: one pass over k fewer than addmm's) -- per row [k_z | k_h] (minGRU, G = 2) or [k_f | k_i | k_h] (minLSTM,
 * G = 3) -- and h0 (B, H), the outputs y (T, B, H):
 *     minGRU:  z = sigmoid(k_z), n = g(k_h), h_t = z n + (1 - z) h_{t-1}
 *     minLSTM: f = sigmoid(k_f), i = sigmoid(k_i), s = f + i, h_t = (i/s) n + (f/s) h_{t-1}
 * with g(x) = x (plain) or x + 0.5 for x >= 0, sigmoid(x) below (log_space) -- the equations of cells/minrnn.py
 * in the order scan.py's "loop" method evaluates them. Each thread runs blocks of units of one row through all
 * T steps; nothing is stored but y (the backward recomputes the gates from k, one exp or two per element). */
/* g(x) and g'(x); the sigmoid is computed for every x and selected after (a branch around it stops the loops
 * from vectorising) */
INLINE REAL mincand_SFX(REAL x, int log_space) {
    const REAL s = SIGMOID(x);
    return !log_space ? x : (x >= 0 ? x + (REAL)0.5 : s);
}

INLINE REAL mincand_grad_SFX(REAL x, int log_space) {
    const REAL s = SIGMOID(x);
    return !log_space || x >= 0 ? (REAL)1 : s * ((REAL)1 - s);
}

/* One step of n units of one row (the loops below; separate functions with restrict arguments vectorise). */
INLINE void mingru_fwd_row_SFX(int n, int ls, const REAL *restrict kz, const REAL *restrict kh,
                               const REAL *restrict bz, const REAL *restrict bh, REAL *restrict h, REAL *restrict yt) {
#pragma omp simd
    for (int j = 0; j < n; j++) {
        const REAL z = SIGMOID(kz[j] + bz[j]), c = mincand_SFX(kh[j] + bh[j], ls);
        h[j] = z * c + ((REAL)1 - z) * h[j];
        yt[j] = h[j];
    }
}

INLINE void minlstm_fwd_row_SFX(int n, int ls, const REAL *restrict kf, const REAL *restrict ki,
                                const REAL *restrict kh, const REAL *restrict bf, const REAL *restrict bi,
                                const REAL *restrict bh, REAL *restrict h, REAL *restrict yt) {
#pragma omp simd
    for (int j = 0; j < n; j++) {
        const REAL f = SIGMOID(kf[j] + bf[j]), i = SIGMOID(ki[j] + bi[j]), c = mincand_SFX(kh[j] + bh[j], ls);
        const REAL s = f + i;
        h[j] = (i / s) * c + (f / s) * h[j];
        yt[j] = h[j];
    }
}

INLINE void mingru_bwd_row_SFX(int n, int ls, const REAL *restrict kz, const REAL *restrict kh,
                               const REAL *restrict bz, const REAL *restrict bh, const REAL *restrict hp,
                               const REAL *restrict dyt, REAL *restrict g, REAL *restrict dkz, REAL *restrict dkh) {
#pragma omp simd
    for (int j = 0; j < n; j++) {
        const REAL xh = kh[j] + bh[j], z = SIGMOID(kz[j] + bz[j]), c = mincand_SFX(xh, ls), gj = g[j] + dyt[j];
        dkz[j] = gj * (c - hp[j]) * z * ((REAL)1 - z);
        dkh[j] = gj * z * mincand_grad_SFX(xh, ls);
        g[j] = gj * ((REAL)1 - z);
    }
}

INLINE void minlstm_bwd_row_SFX(int n, int ls, const REAL *restrict kf, const REAL *restrict ki,
                                const REAL *restrict kh, const REAL *restrict bf, const REAL *restrict bi,
                                const REAL *restrict bh, const REAL *restrict hp, const REAL *restrict dyt,
                                REAL *restrict g, REAL *restrict dkf, REAL *restrict dki, REAL *restrict dkh) {
#pragma omp simd
    for (int j = 0; j < n; j++) {
        const REAL xh = kh[j] + bh[j];
        const REAL f = SIGMOID(kf[j] + bf[j]), i = SIGMOID(ki[j] + bi[j]), c = mincand_SFX(xh, ls);
        const REAL s = f + i, gj = g[j] + dyt[j];
        const REAL dfs = gj * hp[j], dis = gj * c, inv = (REAL)1 / (s * s);
        dkf[j] = (dfs - dis) * i * inv * f * ((REAL)1 - f);
        dki[j] = (dis - dfs) * f * inv * i * ((REAL)1 - i);
        dkh[j] = gj * (i / s) * mincand_grad_SFX(xh, ls);
        g[j] = gj * (f / s);
    }
}

void minrec_fwd_SFX(int nth_req, int T, int B, int H, int lstm, int log_space, const REAL *k, const REAL *bias,
                    const REAL *h0, REAL *y) {
    const int G = lstm ? 3 : 2, per_row = (H + LINREC_BLOCK - 1) / LINREC_BLOCK;
    const size_t kstride = (size_t)B * G * H, ystride = (size_t)B * H;
#pragma omp parallel for num_threads(nth_req) schedule(static)
    for (long blk = 0; blk < (long)B * per_row; blk++) {
        const int b = (int)(blk / per_row), j0 = (int)(blk % per_row) * LINREC_BLOCK;
        const int n = H - j0 < LINREC_BLOCK ? H - j0 : LINREC_BLOCK;
        REAL h[LINREC_BLOCK] __attribute__((aligned(64)));
        for (int j = 0; j < n; j++) h[j] = h0[(size_t)b * H + j0 + j];
        for (int t = 0; t < T; t++) {
            const REAL *kt = k + t * kstride + (size_t)b * G * H + j0;
            REAL *yt = y + t * ystride + (size_t)b * H + j0;
            const REAL *bt = bias + j0;
            if (!lstm)
                mingru_fwd_row_SFX(n, log_space, kt, kt + H, bt, bt + H, h, yt);
            else
                minlstm_fwd_row_SFX(n, log_space, kt, kt + H, kt + 2 * H, bt, bt + H, bt + 2 * H, h, yt);
        }
    }
}

/* The backward of minrec_fwd: from dy (T, B, H), the saved k, h0 and y, the gradients dk (T, B, G*H) and dh0
 * (B, H). Backwards in time, g = dL/dh_t in full (dy_t plus what h_{t+1} passes back), h_{t-1} = y_{t-1} or h0:
 *     minGRU:  dk_z = g (n - h_{t-1}) z (1 - z),  dk_h = g z g'(k_h),  g <- g (1 - z)
 *     minLSTM: d(f/s) = g h_{t-1}, d(i/s) = g n, df = (d(f/s) - d(i/s)) i/s^2, di = (d(i/s) - d(f/s)) f/s^2,
 *              dk_f = df f (1 - f), dk_i = di i (1 - i), dk_h = g (i/s) g'(k_h),  g <- g f/s */
void minrec_bwd_SFX(int nth_req, int T, int B, int H, int lstm, int log_space, const REAL *k, const REAL *bias,
                    const REAL *h0, const REAL *y, const REAL *dy, REAL *dk, REAL *dh0) {
    const int G = lstm ? 3 : 2, per_row = (H + LINREC_BLOCK - 1) / LINREC_BLOCK;
    const size_t kstride = (size_t)B * G * H, ystride = (size_t)B * H;
#pragma omp parallel for num_threads(nth_req) schedule(static)
    for (long blk = 0; blk < (long)B * per_row; blk++) {
        const int b = (int)(blk / per_row), j0 = (int)(blk % per_row) * LINREC_BLOCK;
        const int n = H - j0 < LINREC_BLOCK ? H - j0 : LINREC_BLOCK;
        REAL g[LINREC_BLOCK] __attribute__((aligned(64)));
        for (int j = 0; j < n; j++) g[j] = 0;
        for (int t = T - 1; t >= 0; t--) {
            const size_t ko = t * kstride + (size_t)b * G * H + j0, yo = t * ystride + (size_t)b * H + j0;
            const REAL *hp = t > 0 ? y + yo - ystride : h0 + (size_t)b * H + j0;
            const REAL *bt = bias + j0;
            if (!lstm)
                mingru_bwd_row_SFX(n, log_space, k + ko, k + ko + H, bt, bt + H, hp, dy + yo, g, dk + ko, dk + ko + H);
            else
                minlstm_bwd_row_SFX(n, log_space, k + ko, k + ko + H, k + ko + 2 * H, bt, bt + H, bt + 2 * H, hp,
                                    dy + yo, g, dk + ko, dk + ko + H, dk + ko + 2 * H);
        }
        for (int j = 0; j < n; j++) dh0[(size_t)b * H + j0 + j] = g[j];
    }
}
