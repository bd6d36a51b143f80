/* ---- Elman RNN (rnn.py's equations; REAL = SFX) ----
 * Forward, step t, rows b < bs[t]:   h~_t = act(a_t + h_{t-1} W_hh^T)   (act: tanh, or relu);  h_t = h~_t
 *     (layer norm: r_t = h_{t-1} W_hh^T kept in Rr, h~_t = act(a_t + LN(r_t) g_hh + b_hh))
 *     (zoneout of h: h_t = lerp(h~_t, h_{t-1}, z), h~_t kept in HT for backward)
 * Backward, step t in reverse, dh = DH_t:  (zoneout: h_{t-1}'s direct share z dh, then dh = (1 - z) dh)
 *     dz = dh (1 - h~_t^2)  (relu: dh [h~_t > 0]);   DH_{t-1} += dz W_hh   (at t = 0 into dh0)
 *     (layer norm: dr = LN backward of dz, kept in dR; DH_{t-1} += dr W_hh; GL += dz r_hat, the gain's gradient)
 * Threads own hidden units (or rows: make_split), as in the LSTM and the GRU. */

/* A (T,B,H) the input part (with both biases, or with b_ih only under layer norm); Hs (T+1,B,H), [0] = h0; HT
 * (T,B,H) out h~_t (zoneout, training) or NULL. Layer norm (Rr != NULL): Rr (T,B,H) out r_t (keep = 0: one
 * step's scratch (B,H), reused), ST (B,2) scratch for the rows' mean and 1/std. Regularization
 * (loop_gemm_body.c): Mr (B,H) recurrent dropout's mask or NULL; ZH / zh0 zoneout of h. */
void rnn_forward_SFX(int nth_req, int split, int T, int B, int H, int relu, const int *bs, int keep, const REAL *A,
                     REAL *Hs, REAL *HT, REAL *Rr, REAL *ST, const REAL *Whh, const REAL *bhh, const REAL *lwh,
                     double eps, const REAL *Mr, const REAL *ZH, double zh0) {
    const int nbH = panels_SFX(H), zoh = ZH != NULL || zh0 > 0, ln = Rr != NULL;
    const size_t ks = keep ? 1 : 0; /* time stride of Rr */
    REAL *hm_all = Mr ? alloc_aligned(sizeof(REAL) * (size_t)nth_req * B * H) : NULL;
    REAL *Pw = alloc_aligned(sizeof(REAL) * (size_t)nbH * H * NR_SFX);
    stat3 *pa = ln ? alloc_aligned(sizeof(stat3) * (size_t)nth_req * B) : NULL;
#pragma omp parallel num_threads(nth_req)
    {
        const split_t sp = loop_setup_SFX(split, ln, B, H, H, 1, Whh, H, 1, H, Pw, NULL, 0, 0, NULL);
        const int j0 = sp.j0, j1 = sp.j1;
        const stat3 *ca = ln ? pa + sp.own : NULL;
        REAL *hm = Mr ? hm_all + (size_t)sp.tid * B * H : NULL;
        for (int t = 0; t < T; t++) {
            int lo, hi;
            if (!step_rows(&sp, bs[t], &lo, &hi)) continue;
            const size_t o1 = (size_t)t * B * H;
            const REAL *hp = Hs + o1;
            const REAL *hin = Mr ? masked_rows_SFX(hp, Mr, hm, lo, hi, H) : hp; /* what W_hh multiplies */
            REAL *hn = Hs + o1 + (size_t)B * H;
            if (ln) {
                REAL *r = Rr + ks * o1;
                gemm_units_SFX(hi - lo, H, hin + (size_t)lo * H, H, Pw, 1, H, sp.b0, sp.b1, r + (size_t)lo * H, H, 0);
                for (int b = lo; b < hi; b++)
                    pa[(size_t)sp.tid * B + b] = part_stats_SFX(r + (size_t)b * H, 1, H, j0, j1);
                SYNC(sp)
                for (int b = lo; b < hi; b++)
                    ln_rec_apply_SFX(ca + b, sp.sn, B, eps, 0, ST + b * 2, 1, H, j0, j1, r + (size_t)b * H, lwh, bhh,
                                     hn + (size_t)b * H, 0);
            } else {
                gemm_units_SFX(hi - lo, H, hin + (size_t)lo * H, H, Pw, 1, H, sp.b0, sp.b1, hn + (size_t)lo * H, H, 0);
            }
            for (int b = lo; b < hi; b++) {
                REAL *restrict h = hn + (size_t)b * H;
                const REAL *restrict a = A + o1 + (size_t)b * H;
                if (relu) {
#pragma omp simd
                    for (int j = j0; j < j1; j++) {
                        const REAL v = h[j] + a[j];
                        h[j] = v > (REAL)0 ? v : (REAL)0;
                    }
                } else {
#pragma omp simd
                    for (int j = j0; j < j1; j++) h[j] = TANH(h[j] + a[j]);
                }
                if (zoh)
                    zone_row_SFX(j0, j1, h, hp + (size_t)b * H, ZH ? ZH + o1 + (size_t)b * H : NULL, (REAL)zh0,
                                 HT ? HT + o1 + (size_t)b * H : NULL);
            }
            SYNC(sp)
        }
    }
    free(Pw);
    free(pa);
    free(hm_all);
}

/* Hs and HT as forward left them; DH (T,B,H) in: dL/dh_t, out: dL/dh~_t with the recurrent parts; dZ (T,B,H)
 * out: dL/dz_t; dh0 (B,H) zero on entry, out: dL/dh0 (or NULL). Layer norm: Rr as forward kept it, ST (T,B,2)
 * its rows' mean and 1/std, dR (T,B,H) out, GL (H) doubles zero on entry, out: sum of dz r_hat. Masks as
 * forward's. */
void rnn_backward_SFX(int nth_req, int split, int T, int B, int H, int relu, const int *bs, const REAL *Hs,
                      const REAL *HT, const REAL *Rr, const REAL *ST, REAL *DH, REAL *dZ, REAL *dR, REAL *dh0,
                      double *GL, const REAL *Whh, const REAL *lwh, const REAL *Mr, const REAL *ZH, double zh0) {
    const int nbH = panels_SFX(H), zoh = ZH != NULL || zh0 > 0, ln = Rr != NULL;
    REAL *sc_all = Mr ? alloc_aligned(sizeof(REAL) * (size_t)nth_req * B * H) : NULL;
    REAL *Pw = alloc_aligned(sizeof(REAL) * (size_t)nbH * H * NR_SFX);
    sum2 *pa = ln ? alloc_aligned(sizeof(sum2) * (size_t)nth_req * B) : NULL;
    double *gl_all = GL ? calloc((size_t)nth_req * H, sizeof(double)) : NULL;
#pragma omp parallel num_threads(nth_req)
    {
        const split_t sp = loop_setup_SFX(split, ln, B, H, H, 0, Whh, H, 1, H, Pw, NULL, 0, 0, NULL);
        const int j0 = sp.j0, j1 = sp.j1, tid = sp.tid, nth = thread_count();
        const sum2 *ca = ln ? pa + sp.own : NULL;
        double *gl = thread_sums(GL, gl_all, H, sp.rows, tid);
        REAL *sc = Mr ? sc_all + (size_t)tid * B * H : NULL;
        for (int t = T - 1; t >= 0; t--) {
            int lo, hi;
            if (!step_rows(&sp, bs[t], &lo, &hi)) continue;
            const size_t o1 = (size_t)t * B * H;
            REAL *target = t > 0 ? DH + o1 - (size_t)B * H : dh0;
            const REAL *y = HT ? HT + o1 : Hs + o1 + (size_t)B * H; /* h~_t: what the nonlinearity gave */
            for (int b = lo; b < hi; b++) {
                REAL *restrict d = DH + o1 + (size_t)b * H;
                if (zoh)
                    zone_back_SFX(j0, j1, d, target ? target + (size_t)b * H : NULL,
                                  ZH ? ZH + o1 + (size_t)b * H : NULL, (REAL)zh0);
                const REAL *restrict yb = y + (size_t)b * H;
                REAL *restrict dz = dZ + o1 + (size_t)b * H;
                if (relu) {
#pragma omp simd
                    for (int j = j0; j < j1; j++) dz[j] = yb[j] > (REAL)0 ? d[j] : (REAL)0;
                } else {
#pragma omp simd
                    for (int j = j0; j < j1; j++) dz[j] = d[j] * ((REAL)1 - yb[j] * yb[j]);
                }
            }
            rec_step_back_SFX(&sp, lo, hi, B, 1, H, dZ + o1, ln ? Rr + o1 : NULL, ln ? ST + (size_t)t * B * 2 : NULL,
                              lwh, gl, pa, ca, ln ? dR + o1 : NULL, Pw, target, Mr, sc);
        }
        if (sp.rows && GL) {
            BARRIER
            reduce_sums(GL, gl_all, H, nth, tid);
        }
    }
    free(Pw);
    free(pa);
    free(gl_all);
    free(sc_all);
}
