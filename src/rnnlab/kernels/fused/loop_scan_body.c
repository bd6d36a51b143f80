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
 *     minLSTM: f = sigmoid(k_f), i = sigmoid(k_i), h_t = (i/(f+i)) n + (f/(f+i)) h_{t-1} (minlstm_norm)
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

/* minLSTM's normalised gates f' = f/(f+i), i' = i/(f+i) (f = sigmoid(af), i = sigmoid(ai)) without the 0/0 of
 * f + i underflowing: f' = (1 + e^-ai) / (2 + e^-ai + e^-af), every term scaled by e^-m, m = max(0, -af, -ai),
 * so that no exponential overflows and the denominator is >= 1 (cells/minrnn.py normalised_gates: the same
 * numbers as sigmoid(+-d), d = log f - log i). In double; exp is libmvec's vector exp. */
INLINE void minlstm_norm_SFX(REAL af, REAL ai, REAL *fp, REAL *ip) {
    const double a = af, b = ai, mab = a < b ? -a : -b, m = mab > 0.0 ? mab : 0.0; /* not fmax: it stops simd */
    const double em = exp(-m), ea = exp(-a - m), eb = exp(-b - m), den = 2.0 * em + ea + eb;
    *fp = (REAL)((em + eb) / den);
    *ip = (REAL)((em + ea) / den);
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
        REAL fs, is;
        minlstm_norm_SFX(kf[j] + bf[j], ki[j] + bi[j], &fs, &is);
        const REAL c = mincand_SFX(kh[j] + bh[j], ls);
        h[j] = is * c + fs * h[j];
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
        const REAL xh = kh[j] + bh[j], af = kf[j] + bf[j], ai = ki[j] + bi[j];
        REAL fs, is;
        minlstm_norm_SFX(af, ai, &fs, &is);
        const REAL c = mincand_SFX(xh, ls), gj = g[j] + dyt[j];
        /* f' = sigmoid(d), d = softplus(-ai) - softplus(-af): dd/daf = 1 - f = sigmoid(-af), dd/dai = -sigmoid(-ai) */
        const REAL dd = gj * (hp[j] - c) * fs * is;
        dkf[j] = dd * SIGMOID(-af);
        dki[j] = -dd * SIGMOID(-ai);
        dkh[j] = gj * is * mincand_grad_SFX(xh, ls);
        g[j] = gj * fs;
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
 *     minLSTM: with f' = f/(f+i) = sigmoid(d), d = softplus(-k_i) - softplus(-k_f), i' = 1 - f':
 *              D = g (h_{t-1} - n) f' i',  dk_f = D (1 - f),  dk_i = -D (1 - i),  dk_h = g i' g'(k_h),  g <- g f' */
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
