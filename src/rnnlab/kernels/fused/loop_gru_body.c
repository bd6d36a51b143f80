/* The fused GRU's time loops (gru.py's equations), instantiated per floating type like loop_lstm_body.c.
 *
 * Forward, step t, rows b < bs[t]:
 *     Bh_t = h_{t-1} W_hh^T (+ b_hh)            (gemm; layer_norm: Rr_t = h W_hh^T, Bh_t = LN(Rr_t) g_hh + b_hh)
 *     r, z = sigma(a_r + b_r, a_z + b_z);   n = tanh(a_n + r b_n);   h_t = n + z (h_{t-1} - n)
 * Backward, step t in reverse, dh = DH_t:
 *     P_n = (1 - z)(1 - n^2);  da_n = dh P_n;  da_r = da_n b_n r (1 - r);  da_z = dh (h_{t-1} - n) z (1 - z)
 *     db = [da_r, da_z, da_n r]  (layer_norm: dr = LN backward of db)
 *     DH_{t-1} += dh z + db W_hh               (gemm; at t = 0 into dh0)
 */

INLINE void gru_fwd_row_SFX(int H, const REAL *restrict a, REAL *restrict bh, const REAL *restrict bhh,
                            const REAL *restrict r_ln, const REAL *restrict lwh, REAL eps,
                            const REAL *restrict hp, REAL *restrict zr, REAL *restrict hn) {
    if (r_ln) { /* layer norm: bh = LN(r_ln) g + b_hh */
        REAL mu, rs;
        row_stats_SFX(3 * H, r_ln, eps, &mu, &rs);
#pragma omp simd
        for (int j = 0; j < 3 * H; j++) bh[j] = (r_ln[j] - mu) * rs * lwh[j] + (bhh ? bhh[j] : (REAL)0);
    } else if (bhh) {
#pragma omp simd
        for (int j = 0; j < 3 * H; j++) bh[j] += bhh[j];
    }
#pragma omp simd
    for (int j = 0; j < H; j++) {
        REAL r = sigmoid_SFX(a[j] + bh[j]);
        REAL z = sigmoid_SFX(a[H + j] + bh[H + j]);
        REAL n = TANH(a[2 * H + j] + r * bh[2 * H + j]);
        zr[j] = r;
        zr[H + j] = z;
        zr[2 * H + j] = n;
        hn[j] = n + z * (hp[j] - n);
    }
}

INLINE void gru_bwd_row_SFX(int H, const REAL *restrict zr, const REAL *restrict bh, const REAL *restrict hp,
                            const REAL *restrict dh, REAL *restrict da, REAL *restrict db,
                            REAL *restrict target, const REAL *restrict r_ln, const REAL *restrict lwh,
                            REAL eps, REAL *restrict dr) {
#pragma omp simd
    for (int j = 0; j < H; j++) {
        REAL r = zr[j], z = zr[H + j], n = zr[2 * H + j], d = dh[j];
        REAL dan = d * ((REAL)1 - z) * ((REAL)1 - n * n);
        REAL dar = dan * bh[2 * H + j] * r * ((REAL)1 - r);
        REAL daz = d * (hp[j] - n) * z * ((REAL)1 - z);
        da[j] = dar;
        da[H + j] = daz;
        da[2 * H + j] = dan;
        db[j] = dar;
        db[H + j] = daz;
        db[2 * H + j] = dan * r;
        if (target) target[j] += d * z;
    }
    if (r_ln) {
        REAL mu, rs, t1 = 0, t2 = 0;
        row_stats_SFX(3 * H, r_ln, eps, &mu, &rs);
#pragma omp simd reduction(+ : t1, t2)
        for (int j = 0; j < 3 * H; j++) {
            REAL g = db[j] * lwh[j];
            t1 += g;
            t2 += g * (r_ln[j] - mu) * rs;
        }
        t1 /= 3 * H;
        t2 /= 3 * H;
#pragma omp simd
        for (int j = 0; j < 3 * H; j++) dr[j] = rs * (db[j] * lwh[j] - t1 - (r_ln[j] - mu) * rs * t2);
    }
}

/* A (T,B,3H) input part; Z (T,B,3H) out r|z|n; Bh (T,B,3H) out recurrent part; Hs (T+1,B,H), [0] = h0;
 * Rr (T,B,3H) layer norm only (else NULL), out: h W_hh^T before its normalisation. */
void gru_forward_SFX(int T, int B, int H, const int *bs, const REAL *A, REAL *Z, REAL *Bh, REAL *Hs, REAL *Rr,
                     const REAL *Whh, const REAL *bhh, const REAL *lwh, double eps, gemm_SFX gemm) {
    const int G3 = 3 * H;
    const REAL one = 1, zero = 0;
    for (int t = 0; t < T; t++) {
        const int n = bs[t];
        if (n <= 0) continue;
        const size_t o3 = (size_t)t * B * G3;
        const REAL *hp = Hs + (size_t)t * B * H;
        REAL *hn = Hs + (size_t)(t + 1) * B * H;
        REAL *rec = Rr ? Rr + o3 : Bh + o3;
        gemm("T", "N", &G3, &n, &H, &one, Whh, &H, hp, &H, &zero, rec, &G3);
        for (int b = 0; b < n; b++) {
            const size_t r3 = o3 + (size_t)b * G3;
            gru_fwd_row_SFX(H, A + r3, Bh + r3, bhh, Rr ? Rr + r3 : NULL, lwh, (REAL)eps, hp + (size_t)b * H,
                            Z + r3, hn + (size_t)b * H);
        }
    }
}

/* DH (T,B,H) in: dL/dh_t, out: with recurrent parts; dA, dBh (T,B,3H) out; dR (T,B,3H) out with layer norm;
 * dh0 (B,H) zero on entry, out: dL/dh0 (or NULL). */
void gru_backward_SFX(int T, int B, int H, const int *bs, const REAL *Z, const REAL *Bh, const REAL *Hs,
                      const REAL *Rr, REAL *DH, REAL *dA, REAL *dBh, REAL *dR, REAL *dh0, const REAL *Whh,
                      const REAL *lwh, double eps, gemm_SFX gemm) {
    const int G3 = 3 * H;
    const REAL one = 1;
    for (int t = T - 1; t >= 0; t--) {
        const int n = bs[t];
        if (n <= 0) continue;
        const size_t o3 = (size_t)t * B * G3;
        REAL *target = t > 0 ? DH + (size_t)(t - 1) * B * H : dh0;
        for (int b = 0; b < n; b++) {
            const size_t r3 = o3 + (size_t)b * G3, r1 = (size_t)t * B * H + (size_t)b * H;
            gru_bwd_row_SFX(H, Z + r3, Bh + r3, Hs + r1, DH + r1, dA + r3, dBh + r3,
                            target ? target + (size_t)b * H : NULL, Rr ? Rr + r3 : NULL, lwh, (REAL)eps,
                            dR ? dR + r3 : NULL);
        }
        const REAL *drec = dR ? dR + o3 : dBh + o3;
        if (target) gemm("N", "N", &H, &n, &G3, &one, Whh, &H, drec, &G3, &one, target, &H);
    }
}
