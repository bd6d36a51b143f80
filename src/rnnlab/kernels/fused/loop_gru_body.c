/* ---- GRU (gru.py's equations; REAL = SFX) ----
 * Forward, step t, rows b < bs[t]:
 *     Bh_t = h_{t-1} W_hh^T (+ b_hh)            (layer_norm: Rr_t = h W_hh^T, Bh_t = LN(Rr_t) g_hh + b_hh)
 *     r, z = sigma(a_r + b_r, a_z + b_z);   n = tanh(a_n + r b_n);   h_t = n + z (h_{t-1} - n)
 * Backward, step t in reverse, dh = DH_t:
 *     P_n = (1 - z)(1 - n^2);  da_n = dh P_n;  da_r = da_n b_n r (1 - r);  da_z = dh (h_{t-1} - n) z (1 - z)
 *     db = [da_r, da_z, da_n r]  (layer_norm: dr = LN backward of db; the gain's sum of db r_hat here)
 *     DH_{t-1} += dh z + db W_hh               (at t = 0 into dh0)
 * Threads own hidden units (all three gates of them), as in the LSTM. */

INLINE void gru_fwd_row_SFX(int H, int j0, int j1, const REAL *restrict a, const REAL *restrict bh,
                            const REAL *restrict hp, REAL *restrict zr, REAL *restrict hn) {
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL r = sigmoid_SFX(a[j] + bh[j]);
        const REAL z = sigmoid_SFX(a[H + j] + bh[H + j]);
        const REAL n = TANH(a[2 * H + j] + r * bh[2 * H + j]);
        zr[j] = r;
        zr[H + j] = z;
        zr[2 * H + j] = n;
        hn[j] = n + z * (hp[j] - n);
    }
}

INLINE void gru_bwd_row_SFX(int H, int j0, int j1, const REAL *restrict zr, const REAL *restrict bh,
                            const REAL *restrict hp, const REAL *restrict dh, REAL *restrict da,
                            REAL *restrict db, REAL *restrict target) {
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL r = zr[j], z = zr[H + j], n = zr[2 * H + j], d = dh[j];
        const REAL dan = d * ((REAL)1 - z) * ((REAL)1 - n * n);
        const REAL dar = dan * bh[2 * H + j] * r * ((REAL)1 - r);
        const REAL daz = d * (hp[j] - n) * z * ((REAL)1 - z);
        da[j] = dar;
        da[H + j] = daz;
        da[2 * H + j] = dan;
        db[j] = dar;
        db[H + j] = daz;
        db[2 * H + j] = dan * r;
        if (target) target[j] += d * z;
    }
}

/* The end of a GRU or RNN backward step (G gates), rows [lo, hi), this thread's units: with a recurrent layer norm
 * (r given: the rows' products, st their mean and 1/std, two per row) dz (rows of G*H) goes through its backward
 * into dr and the gain's sums into gl (pa/ca: the threads' partial row sums, a barrier between the passes); then,
 * after a barrier, target += (Mr *) (dz or dr) W_hh for this thread's units (or rows): what only it reads next. */
INLINE void rec_step_back_SFX(const split_t *sp, int lo, int hi, int B, int G, int H, const REAL *dz, const REAL *r,
                              const REAL *st, const REAL *lwh, double *gl, sum2 *pa, const sum2 *ca, REAL *dr,
                              const REAL *Pw, REAL *target, const REAL *Mr, REAL *sc) {
    const int GH = G * H;
    const REAL *drec = dz;
    if (r) {
        for (int b = lo; b < hi; b++)
            pa[(size_t)sp->tid * B + b] = ln_rec_sums_SFX(G, H, sp->j0, sp->j1, dz + (size_t)b * GH,
                                                          r + (size_t)b * GH, lwh, st[b * 2], st[b * 2 + 1], gl);
        SYNC(*sp)
        for (int b = lo; b < hi; b++) {
            double T1, T2;
            sum_parts_SFX(ca, sp->sn, B, b, &T1, &T2);
            ln_rec_back_SFX(G, H, sp->j0, sp->j1, dz + (size_t)b * GH, r + (size_t)b * GH, lwh, st[b * 2],
                            st[b * 2 + 1], (REAL)(T1 / GH), (REAL)(T2 / GH), dr + (size_t)b * GH);
        }
        drec = dr;
    }
    SYNC(*sp)
    if (target)
        for (int rb = sp->b0; rb < sp->b1; rb++)
            panel_rec_SFX(hi - lo, GH, drec + (size_t)lo * GH, Pw + (size_t)rb * GH * NR_SFX, target + (size_t)lo * H,
                          H, rb, Mr ? Mr + (size_t)lo * H : NULL, sc ? sc + (size_t)lo * H : NULL);
}

/* A (T,B,3H) input part; Z (T,B,3H) out r|z|n; Bh (T,B,3H) out recurrent part; Hs (T+1,B,H), [0] = h0.
 * Layer norm (Rr != NULL): Rr (T,B,3H) out h W_hh^T before its normalisation, ST (T,B,2) out its row's
 * mean and 1/std. keep = 0 (no backward will run): Bh, Rr and ST are one step's scratch, reused.
 * split: see make_split. Regularization (loop_gemm_body.c): Mr (B,H) recurrent dropout's mask on h_{t-1} where it
 * enters W_hh (z h_{t-1} reads it unmasked) or NULL; zoneout of h: ZH (T,B,H) indicators, or NULL and zh0. */
void gru_forward_SFX(int nth_req, int split, int T, int B, int H, const int *bs, int keep, const REAL *A, REAL *Z,
                     REAL *Bh, REAL *Hs, REAL *Rr, REAL *ST, const REAL *Whh, const REAL *bhh, const REAL *lwh,
                     double eps, const REAL *Mr, const REAL *ZH, double zh0) {
    const int G3 = 3 * H, ln = Rr != NULL, nbH = panels_SFX(H), zoh = ZH != NULL || zh0 > 0;
    REAL *hm_all = Mr ? alloc_aligned(sizeof(REAL) * (size_t)nth_req * B * H) : NULL;
    const size_t ks = keep ? 1 : 0; /* time stride of Bh, Rr and ST */
    REAL *Pw = alloc_aligned(sizeof(REAL) * (size_t)3 * nbH * H * NR_SFX);
    stat3 *pa = ln ? alloc_aligned(sizeof(stat3) * (size_t)nth_req * B) : NULL;
#pragma omp parallel num_threads(nth_req)
    {
        const split_t sp = loop_setup_SFX(split, ln, B, H, H, 1, Whh, H, 3, H, Pw, NULL, 0, 0, NULL);
        const int tid = sp.tid, j0 = sp.j0, j1 = sp.j1;
        const stat3 *ca = ln ? pa + sp.own : NULL;
        REAL *hm = Mr ? hm_all + (size_t)tid * B * H : NULL;
        for (int t = 0; t < T; t++) {
            int lo, hi;
            if (!step_rows(&sp, bs[t], &lo, &hi)) continue;
            const size_t o3 = (size_t)t * B * G3;
            const REAL *hp = Hs + (size_t)t * B * H;
            const REAL *hin = Mr ? masked_rows_SFX(hp, Mr, hm, lo, hi, H) : hp; /* what W_hh multiplies */
            const REAL *zh = ZH ? ZH + (size_t)t * B * H : NULL;
            REAL *hn = Hs + (size_t)(t + 1) * B * H;
            REAL *bh = Bh + ks * o3;
            if (ln) {
                REAL *r = Rr + ks * o3;
                REAL *st = ST + ks * t * B * 2;
                gemm_units_SFX(hi - lo, H, hin + (size_t)lo * H, H, Pw, 3, H, sp.b0, sp.b1, r + (size_t)lo * G3, G3, 0);
                for (int b = lo; b < hi; b++) pa[(size_t)tid * B + b] = part_stats_SFX(r + (size_t)b * G3, 3, H, j0, j1);
                SYNC(sp)
                for (int b = lo; b < hi; b++)
                    ln_rec_apply_SFX(ca + b, sp.sn, B, eps, sp.writer, st + b * 2, 3, H, j0, j1, r + (size_t)b * G3,
                                     lwh, bhh, bh + (size_t)b * G3, 0);
            } else {
                gemm_units_SFX(hi - lo, H, hin + (size_t)lo * H, H, Pw, 3, H, sp.b0, sp.b1, bh + (size_t)lo * G3, G3, 0);
                if (bhh)
                    for (int b = lo; b < hi; b++)
                        for (int g = 0; g < 3; g++) {
                            REAL *bb = bh + (size_t)b * G3 + g * H;
#pragma omp simd
                            for (int j = j0; j < j1; j++) bb[j] += bhh[g * H + j];
                        }
            }
            for (int b = lo; b < hi; b++) {
                const size_t r3 = o3 + (size_t)b * G3;
                gru_fwd_row_SFX(H, j0, j1, A + r3, bh + (size_t)b * G3, hp + (size_t)b * H, Z + r3, hn + (size_t)b * H);
                if (zoh)
                    zone_row_SFX(j0, j1, hn + (size_t)b * H, hp + (size_t)b * H, zh ? zh + (size_t)b * H : NULL,
                                 (REAL)zh0, NULL);
            }
            SYNC(sp)
        }
    }
    free(Pw);
    free(pa);
    free(hm_all);
}

/* DH (T,B,H) in: dL/dh_t, out: with recurrent parts; dA, dBh (T,B,3H) out; dh0 (B,H) zero on entry,
 * out: dL/dh0 (or NULL). Layer norm: ST as saved by forward, dR (T,B,3H) out, GL (3H) doubles zero on
 * entry, out: the sum of dBh r_hat (the gain's gradient). split: see make_split. */
void gru_backward_SFX(int nth_req, int split, int T, int B, int H, const int *bs, const REAL *Z, const REAL *Bh,
                      const REAL *Hs, const REAL *Rr, const REAL *ST, REAL *DH, REAL *dA, REAL *dBh, REAL *dR,
                      REAL *dh0, double *GL, const REAL *Whh, const REAL *lwh, const REAL *Mr, const REAL *ZH,
                      double zh0) {
    const int G3 = 3 * H, ln = Rr != NULL, nbH = panels_SFX(H), zoh = ZH != NULL || zh0 > 0;
    REAL *sc_all = Mr ? alloc_aligned(sizeof(REAL) * (size_t)nth_req * B * H) : NULL;
    REAL *Pw = alloc_aligned(sizeof(REAL) * (size_t)nbH * G3 * NR_SFX);
    sum2 *pa = ln ? alloc_aligned(sizeof(sum2) * (size_t)nth_req * B) : NULL;
    double *gl_all = GL ? calloc((size_t)nth_req * G3, sizeof(double)) : NULL;
#pragma omp parallel num_threads(nth_req)
    {
        const split_t sp = loop_setup_SFX(split, ln, B, H, H, 0, Whh, G3, 1, H, Pw, NULL, 0, 0, NULL);
        const int tid = sp.tid, nth = thread_count(), j0 = sp.j0, j1 = sp.j1;
        const sum2 *ca = ln ? pa + sp.own : NULL;
        double *gl = thread_sums(GL, gl_all, G3, sp.rows, tid);
        REAL *sc = Mr ? sc_all + (size_t)tid * B * H : NULL;
        for (int t = T - 1; t >= 0; t--) {
            int lo, hi;
            if (!step_rows(&sp, bs[t], &lo, &hi)) continue;
            const size_t o3 = (size_t)t * B * G3, o1 = (size_t)t * B * H;
            REAL *target = t > 0 ? DH + (size_t)(t - 1) * B * H : dh0;
            if (zoh) { /* h_t = lerp(h~_t, h_{t-1}, z): h_{t-1}'s direct share, then DH_t becomes dL/dh~_t */
                const REAL *zh = ZH ? ZH + o1 : NULL;
                for (int b = lo; b < hi; b++)
                    zone_back_SFX(j0, j1, DH + o1 + (size_t)b * H, target ? target + (size_t)b * H : NULL,
                                  zh ? zh + (size_t)b * H : NULL, (REAL)zh0);
            }
            for (int b = lo; b < hi; b++) {
                const size_t r3 = o3 + (size_t)b * G3, r1 = o1 + (size_t)b * H;
                gru_bwd_row_SFX(H, j0, j1, Z + r3, Bh + r3, Hs + r1, DH + r1, dA + r3, dBh + r3,
                                target ? target + (size_t)b * H : NULL);
            }
            rec_step_back_SFX(&sp, lo, hi, B, 3, H, dBh + o3, ln ? Rr + o3 : NULL, ln ? ST + (size_t)t * B * 2 : NULL,
                              lwh, gl, pa, ca, ln ? dR + o3 : NULL, Pw, target, Mr, sc);
        }
        if (sp.rows && GL) {
            BARRIER
            reduce_sums(GL, gl_all, G3, nth, tid);
        }
    }
    free(Pw);
    free(pa);
    free(gl_all);
    free(sc_all);
}
