/* ---- the recurrent matrix product: packed panels and a register-blocked micro-kernel (REAL = SFX) ----
 * C (n x cols) [+]= A (n x K) B (K x cols), where B is packed once per call into panels of NR columns:
 * panel p holds B[k][p*NR + c] at P[p*K*NR + k*NR + c], zero beyond the last column. Columns come in G
 * groups of width W (the gates; W = H), each group padded to whole panels, so a thread owning units
 * [j0, j1) owns the same panels in every gate. */

typedef REAL vec_SFX __attribute__((vector_size(VB)));
#define VL_SFX ((int)(VB / sizeof(REAL)))
#define NR_SFX (2 * VL_SFX)

INLINE vec_SFX vload_SFX(const REAL *p) {
    vec_SFX v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE void vstore_SFX(REAL *p, vec_SFX v) { memcpy(p, &v, sizeof v); }

/* C[mr x NR] (row stride ldc) = (add ? C : 0) + A[mr x K] (row stride lda) P[K x NR]; mr is a constant at
 * every call site (see panel_SFX), so the accumulators live in registers. at = 1: A is given transposed,
 * element (r, k) at A[k * lda + r] (the weight gradients' D^T X; a constant at every call site too). */
INLINE void micro_SFX(int at, int mr, int K, const REAL *restrict A, int lda, const REAL *restrict P,
                      REAL *restrict C, int ldc, int add) {
    vec_SFX acc[MR][2];
    for (int r = 0; r < mr; r++) {
        acc[r][0] = (vec_SFX){0};
        acc[r][1] = (vec_SFX){0};
    }
    for (int k = 0; k < K; k++) {
        const vec_SFX b0 = vload_SFX(P + (size_t)k * NR_SFX), b1 = vload_SFX(P + (size_t)k * NR_SFX + VL_SFX);
        for (int r = 0; r < mr; r++) {
            const REAL a = at ? A[(size_t)k * lda + r] : A[(size_t)r * lda + k];
            acc[r][0] += a * b0;
            acc[r][1] += a * b1;
        }
    }
    for (int r = 0; r < mr; r++) {
        REAL *c = C + (size_t)r * ldc;
        if (add) {
            acc[r][0] += vload_SFX(c);
            acc[r][1] += vload_SFX(c + VL_SFX);
        }
        vstore_SFX(c, acc[r][0]);
        vstore_SFX(c + VL_SFX, acc[r][1]);
    }
}

INLINE void micro_any_SFX(int at, int mr, int K, const REAL *A, int lda, const REAL *P, REAL *C, int ldc, int add) {
    switch (mr) {
#define MICRO_CASE_SFX(m) case m: micro_SFX(at, m, K, A, lda, P, C, ldc, add); break;
        MICRO_CASE_SFX(1) MICRO_CASE_SFX(2) MICRO_CASE_SFX(3) MICRO_CASE_SFX(4)
#if MR > 4
        MICRO_CASE_SFX(5) MICRO_CASE_SFX(6)
#endif
#if MR > 6
        MICRO_CASE_SFX(7) MICRO_CASE_SFX(8)
#endif
        default: break;
    }
}

/* One panel for rows [0, n): nc <= NR valid columns (a partial last panel goes through a scratch tile);
 * at as micro_SFX; A's block of MR rows b starts at A + b * ablk. */
INLINE void panel_at_SFX(int at, int n, int K, const REAL *A, int lda, size_t ablk, const REAL *P, REAL *C, int ldc,
                         int nc, int add) {
    REAL tile[MR * 2 * (VB / sizeof(REAL))] __attribute__((aligned(64)));
    for (int i = 0; i < n; i += MR) {
        const int mr = imin(MR, n - i);
        const REAL *a = A + (size_t)(i / MR) * ablk;
        REAL *c = C + (size_t)i * ldc;
        if (nc == NR_SFX) {
            micro_any_SFX(at, mr, K, a, lda, P, c, ldc, add);
            continue;
        }
        micro_any_SFX(at, mr, K, a, lda, P, tile, NR_SFX, 0);
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < nc; j++)
                c[(size_t)r * ldc + j] = (add ? c[(size_t)r * ldc + j] : (REAL)0) + tile[r * NR_SFX + j];
    }
}

NOCLONE static void panel_SFX(int n, int K, const REAL *A, int lda, const REAL *P, REAL *C, int ldc, int nc,
                                  int add) {
    panel_at_SFX(0, n, K, A, lda, (size_t)MR * lda, P, C, ldc, nc, add);
}

/* Panels per group of W columns. */
INLINE int panels_SFX(int W) { return (W + NR_SFX - 1) / NR_SFX; }

/* Pack panels [p0, p1) of B (K x G*W) given as Bt (transposed = 1: B[k][col] = M[col*K + k], M is (G*W x K))
 * or not (B[k][col] = M[k*G*W + col]). Panel p is group p / panels(W), block p % panels(W). */
static void pack_SFX(const REAL *M, int K, int G, int W, int transposed, REAL *P, int p0, int p1) {
    const int nb = panels_SFX(W), cols = G * W;
    for (int p = p0; p < p1; p++) {
        const int g = p / nb, c0 = (p % nb) * NR_SFX, nc = imin(NR_SFX, W - c0);
        REAL *dst = P + (size_t)p * K * NR_SFX;
        if (!transposed) {
            for (int k = 0; k < K; k++)
                for (int c = 0; c < NR_SFX; c++)
                    dst[(size_t)k * NR_SFX + c] = c < nc ? M[(size_t)k * cols + g * W + c0 + c] : (REAL)0;
            continue;
        }
        /* transposed: a tile of KT k's at a time, each column's KT values read as one contiguous run (read
         * k-major, every k touched NR rows of M, KT * NR floats apart: a third of S2's inference time went
         * to this pack once the input part came in chunks) */
        enum { KT = 16 };
        for (int k0 = 0; k0 < K; k0 += KT) {
            const int kt = imin(KT, K - k0);
            for (int c = 0; c < NR_SFX; c++) {
                REAL *d = dst + (size_t)k0 * NR_SFX + c;
                const REAL *src = M + (size_t)(g * W + c0 + c) * K + k0;
                if (c < nc)
                    for (int k = 0; k < kt; k++) d[(size_t)k * NR_SFX] = src[k];
                else
                    for (int k = 0; k < kt; k++) d[(size_t)k * NR_SFX] = (REAL)0;
            }
        }
    }
}

/* C[:, group g, units of blocks [b0, b1)] [+]= A B for every group: what a thread owning those units needs.
 * C has row stride ldc and G groups of W columns. */
INLINE void gemm_units_SFX(int n, int K, const REAL *A, int lda, const REAL *P, int G, int W, int b0, int b1,
                           REAL *C, int ldc, int add) {
    const int nb = panels_SFX(W);
    for (int b = b0; b < b1; b++)
        for (int g = 0; g < G; g++)
            panel_SFX(n, K, A, lda, P + (size_t)(g * nb + b) * K * NR_SFX, C + g * W + b * NR_SFX, ldc,
                      imin(NR_SFX, W - b * NR_SFX), add);
}

/* The set-up every time loop opens its parallel region with: this thread packs its share of the recurrent
 * weights (W: G groups of Wd columns over K rows, into P; tr as pack_SFX) and, when W2 is given, of the
 * projection's (one group of Wd2 columns over K2 rows, into P2); every thread waits until all panels are
 * packed; the step is split between the threads (make_split). */
INLINE split_t loop_setup_SFX(int split, int ln, int B, int H, int R, int tr, const REAL *W, int K, int G, int Wd,
                              REAL *P, const REAL *W2, int K2, int Wd2, REAL *P2) {
    const int tid = thread_id(), nth = thread_count();
    int p0, p1;
    share(G * panels_SFX(Wd), tid, nth, &p0, &p1);
    if (W) pack_SFX(W, K, G, Wd, tr, P, p0, p1); /* W NULL: P came packed (pack_panels) */
    if (W2) {
        share(panels_SFX(Wd2), tid, nth, &p0, &p1);
        pack_SFX(W2, K2, 1, Wd2, tr, P2, p0, p1);
    }
    const split_t sp = make_split(split, ln, B, H, R, NR_SFX, tid, nth);
    BARRIER
    return sp;
}

/* Accumulate one thread's partial (count, mean, M2) over v[j] for j in its units of every group. */
INLINE stat3 part_stats_SFX(const REAL *v, int G, int W, int j0, int j1) {
    stat3 s = {0, 0, 0};
    const int m = G * (j1 - j0);
    if (m == 0) return s;
    double sum = 0, q = 0;
    for (int g = 0; g < G; g++) {
        const REAL *p = v + (size_t)g * W;
#pragma omp simd reduction(+ : sum)
        for (int j = j0; j < j1; j++) sum += p[j];
    }
    const double mu = sum / m;
    for (int g = 0; g < G; g++) {
        const REAL *p = v + (size_t)g * W;
#pragma omp simd reduction(+ : q)
        for (int j = j0; j < j1; j++) q += (p[j] - mu) * (p[j] - mu);
    }
    s.n = m;
    s.mean = mu;
    s.m2 = q;
    return s;
}

/* C (M x N) = A (M x K, row stride lda) B + bias, B given as Bm (transposed = 1: Bm is (N x K), B = Bm^T;
 * else Bm is (K x N)); bias (N) or NULL. The time-parallel products of a layer (the input projection of
 * all steps, dx). With enough rows threads split them into equal runs of MR-row blocks, each taken MC rows at a
 * time so that a chunk of A stays in cache across the panels; with few rows (a short or single sequence) they
 * split the panels instead. Pin: B's panels packed by the caller (pack_panels), else packed here. */
void gemm_SFX(int nth_req, int M, int N, int K, const REAL *A, int lda, const REAL *Bm, int transposed,
              const REAL *bias, REAL *C, const REAL *Pin) {
    const int nb = panels_SFX(N), MC = 8 * MR;
    REAL *P = Pin ? (REAL *)Pin : alloc_aligned(sizeof(REAL) * (size_t)nb * K * NR_SFX);
    const int chunks = (M + MC - 1) / MC;
#pragma omp parallel num_threads(nth_req)
    {
        const int tid = thread_id(), nth = thread_count(), by_rows = chunks >= 2 * nth;
        int p0, p1, c0, c1;
        share(nb, tid, nth, &p0, &p1);
        if (!Pin) pack_SFX(Bm, K, 1, N, transposed, P, p0, p1);
        BARRIER
        /* by rows: whole MC chunks would leave one thread a chunk more (13 chunks of S1's 800-row input part
         * gave 7 and 6) */
        int m0 = 0, m1 = M;
        if (by_rows) {
            share((M + MR - 1) / MR, tid, nth, &c0, &c1);
            m0 = imin(c0 * MR, M);
            m1 = imin(c1 * MR, M);
            p0 = 0;
            p1 = nb;
        }
        for (int i0 = m0; i0 < m1; i0 += MC) {
            const int n = imin(MC, m1 - i0);
            REAL *Cc = C + (size_t)i0 * N;
            for (int p = p0; p < p1; p++) {
                const int nc = imin(NR_SFX, N - p * NR_SFX);
                if (bias)
                    for (int r = 0; r < n; r++) memcpy(Cc + (size_t)r * N + p * NR_SFX, bias + p * NR_SFX, sizeof(REAL) * nc);
                panel_SFX(n, K, A + (size_t)i0 * lda, lda, P + (size_t)p * K * NR_SFX, Cc + p * NR_SFX, N, nc,
                          bias != NULL);
            }
        }
    }
    if (!Pin) free(P);
}

/* The panels pack_SFX makes of M (G groups of W columns over K rows; transposed as pack_SFX), into P of
 * panel_count(K, G, W) elements, threads sharing the panels: packed once, passed to several calls (gemm's Pin,
 * lstm_forward's PwIn / PrIn), as an inference forward in chunks of steps does. */
void pack_panels_SFX(int nth_req, const REAL *M, int K, int G, int W, int transposed, REAL *P) {
#pragma omp parallel num_threads(nth_req)
    {
        int p0, p1;
        share(G * panels_SFX(W), thread_id(), thread_count(), &p0, &p1);
        pack_SFX(M, K, G, W, transposed, P, p0, p1);
    }
}

long panel_count_SFX(int K, int G, int W) { return (long)G * panels_SFX(W) * K * NR_SFX; }

/* C (M x N) = A^T B for A (K x M) and B (K x N), both row-major: a layer's weight gradients, summed over its T*B
 * rows (dW_hh = dR^T H_{t-1}, dW_ih = dA^T x), where torch's matmul (MKL's sgemm on this project's AMD machine)
 * runs AVX2 code only. Threads split the N columns by panels, each packing its own (no barrier); K goes in blocks
 * of KC rows so that a block of B's panels stays in cache while every chunk of A's columns passes. Each chunk
 * of A (KC x MC) is first copied into blocks of MR columns, [k][r] within a block: read in place, the rows of A
 * lie M floats apart (4 KiB for M = 1024), the same cache sets for every k, and the product ran at 70 % of the
 * packed one on the AVX2 build. */
void gemm_at_SFX(int nth_req, int M, int N, int K, const REAL *A, const REAL *B, REAL *C) {
    const int nb = panels_SFX(N), KC = 256, MC = 8 * MR;
#pragma omp parallel num_threads(nth_req)
    {
        const int tid = thread_id(), nth = thread_count();
        int p0, p1;
        share(nb, tid, nth, &p0, &p1);
        REAL *P = p1 > p0 ? alloc_aligned(sizeof(REAL) * (size_t)nb * KC * NR_SFX) : NULL;
        REAL *Ap = p1 > p0 ? alloc_aligned(sizeof(REAL) * (size_t)MC * KC) : NULL;
        for (int k0 = 0; k0 < K && P; k0 += KC) {
            const int kc = imin(KC, K - k0);
            pack_SFX(B + (size_t)k0 * N, kc, 1, N, 0, P, p0, p1); /* panel p at P + p * kc * NR */
            for (int i0 = 0; i0 < M; i0 += MC) {
                const int n = imin(MC, M - i0);
                for (int b = 0; b * MR < n; b++) { /* block b: columns i0 + b*MR .. of A, zero beyond n */
                    const int mr = imin(MR, n - b * MR);
                    REAL *dst = Ap + (size_t)b * MR * kc;
                    for (int k = 0; k < kc; k++) {
                        const REAL *src = A + (size_t)(k0 + k) * M + i0 + b * MR;
                        for (int r = 0; r < MR; r++) dst[(size_t)k * MR + r] = r < mr ? src[r] : (REAL)0;
                    }
                }
                for (int p = p0; p < p1; p++)
                    panel_at_SFX(1, n, kc, Ap, MR, (size_t)MR * kc, P + (size_t)p * kc * NR_SFX,
                                 C + (size_t)i0 * N + p * NR_SFX, N, imin(NR_SFX, N - p * NR_SFX), k0 > 0);
            }
        }
        free(P);
        free(Ap);
    }
}

/* ---- Recurrent regularization inside the loops (layers/regularize.py draws the masks) ----
 * Recurrent dropout multiplies h_{t-1} by a per-sequence mask Mr (B, R) where it enters W_hh: forward
 * reads the product from a masked copy of the step's rows (each thread its own copy: no barrier), backward
 * adds Mr * (dz W_hh) instead of dz W_hh. Zoneout mixes each state with its previous value,
 * cur = lerp(cur, prev, z) with z the step's 0/1 indicators (training) or the expectation p (evaluation),
 * written exactly as torch.lerp computes it so the loops give the reference's numbers. */

/* rows [lo, hi) of h (row stride R) times their mask, into buf; returns buf (what the product reads) */
INLINE const REAL *masked_rows_SFX(const REAL *h, const REAL *mr, REAL *buf, int lo, int hi, int R) {
    for (int b = lo; b < hi; b++) {
        const REAL *restrict x = h + (size_t)b * R;
        const REAL *restrict m = mr + (size_t)b * R;
        REAL *restrict y = buf + (size_t)b * R;
#pragma omp simd
        for (int j = 0; j < R; j++) y[j] = x[j] * m[j];
    }
    return buf;
}

/* cur[j] = lerp(cur[j], prev[j], w) for j in [j0, j1), w = z[j] (or z0 when z is NULL); keep gets cur first */
INLINE void zone_row_SFX(int j0, int j1, REAL *restrict cur, const REAL *restrict prev, const REAL *restrict z,
                         REAL z0, REAL *restrict keep) {
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL w = z ? z[j] : z0, s = cur[j], e = prev[j];
        if (keep) keep[j] = s;
        cur[j] = w < (REAL)0.5 ? s + w * (e - s) : e - (e - s) * ((REAL)1 - w);
    }
}

/* Backward of state = lerp(new, prev, w) for j in [j0, j1): prev's share w d goes to direct (when given), d
 * becomes new's share (1 - w) d. */
INLINE void zone_back_SFX(int j0, int j1, REAL *restrict d, REAL *restrict direct, const REAL *restrict z, REAL z0) {
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL w = z ? z[j] : z0;
        if (direct) direct[j] += w * d[j];
        d[j] *= (REAL)1 - w;
    }
}

/* target[:, columns of panel rb] += (Mr *) (A W) for rows [0, n): the recurrent gradient into dL/dh_{t-1}
 * (sc: this thread's scratch rows, used only with a mask). */
INLINE void panel_rec_SFX(int n, int K, const REAL *A, const REAL *P, REAL *target, int R, int rb,
                          const REAL *mr, REAL *sc) {
    const int c0 = rb * NR_SFX, nc = imin(NR_SFX, R - c0);
    if (!mr) {
        panel_SFX(n, K, A, K, P, target + c0, R, nc, 1);
        return;
    }
    panel_SFX(n, K, A, K, P, sc + c0, R, nc, 0);
    for (int b = 0; b < n; b++) {
        REAL *restrict t = target + (size_t)b * R + c0;
        const REAL *restrict m = mr + (size_t)b * R + c0;
        const REAL *restrict s = sc + (size_t)b * R + c0;
#pragma omp simd
        for (int j = 0; j < nc; j++) t[j] += m[j] * s[j];
    }
}
