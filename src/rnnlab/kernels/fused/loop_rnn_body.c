/* ---- Elman RNN (rnn.py's equations, without layer norm; REAL = SFX) ----
 * Forward, step t, rows b < bs[t]:   h~_t = act(a_t + h_{t-1} W_hh^T)   (act: tanh, or relu);  h_t = h~_t
 *     (zoneout of h: h_t = lerp(h~_t, h_{t-1}, z), h~_t kept in HT for backward)
 * Backward, step t in reverse, dh = DH_t:  (zoneout: h_{t-1}'s direct share z dh, then dh = (1 - z) dh)
 *     dz = dh (1 - h~_t^2)  (relu: dh [h~_t > 0]);   DH_{t-1} += dz W_hh   (at t = 0 into dh0)
 * Threads own hidden units (or rows: make_split), as in the LSTM and the GRU. */

/* A (T,B,H) the input part with both biases; Hs (T+1,B,H), [0] = h0; HT (T,B,H) out h~_t (zoneout, training) or
 * NULL. Regularization (loop_gemm_body.c): Mr (B,H) recurrent dropout's mask or NULL; ZH / zh0 zoneout of h. */
void rnn_forward_SFX(int nth_req, int split, int T, int B, int H, int relu, const int *bs, const REAL *A, REAL *Hs,
                     REAL *HT, const REAL *Whh, const REAL *Mr, const REAL *ZH, double zh0) {
    const int nbH = panels_SFX(H), zoh = ZH != NULL || zh0 > 0;
    REAL *hm_all = Mr ? alloc_aligned(sizeof(REAL) * (size_t)nth_req * B * H) : NULL;
    REAL *Pw = alloc_aligned(sizeof(REAL) * (size_t)nbH * H * NR_SFX);
#pragma omp parallel num_threads(nth_req)
    {
        const split_t sp = loop_setup_SFX(split, 0, B, H, H, 1, Whh, H, 1, H, Pw, NULL, 0, 0, NULL);
        const int j0 = sp.j0, j1 = sp.j1;
        REAL *hm = Mr ? hm_all + (size_t)sp.tid * B * H : NULL;
        for (int t = 0; t < T; t++) {
            int lo, hi;
            if (!step_rows(&sp, bs[t], &lo, &hi)) continue;
            const size_t o1 = (size_t)t * B * H;
            const REAL *hp = Hs + o1;
            const REAL *hin = Mr ? masked_rows_SFX(hp, Mr, hm, lo, hi, H) : hp; /* what W_hh multiplies */
            REAL *hn = Hs + o1 + (size_t)B * H;
            gemm_units_SFX(hi - lo, H, hin + (size_t)lo * H, H, Pw, 1, H, sp.b0, sp.b1, hn + (size_t)lo * H, H, 0);
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
    free(hm_all);
}

/* Hs and HT as forward left them; DH (T,B,H) in: dL/dh_t, out: dL/dh~_t with the recurrent parts; dZ (T,B,H)
 * out: dL/dz_t; dh0 (B,H) zero on entry, out: dL/dh0 (or NULL). Masks as forward's. */
void rnn_backward_SFX(int nth_req, int split, int T, int B, int H, int relu, const int *bs, const REAL *Hs,
                      const REAL *HT, REAL *DH, REAL *dZ, REAL *dh0, const REAL *Whh, const REAL *Mr, const REAL *ZH,
                      double zh0) {
    const int nbH = panels_SFX(H), zoh = ZH != NULL || zh0 > 0;
    REAL *sc_all = Mr ? alloc_aligned(sizeof(REAL) * (size_t)nth_req * B * H) : NULL;
    REAL *Pw = alloc_aligned(sizeof(REAL) * (size_t)nbH * H * NR_SFX);
#pragma omp parallel num_threads(nth_req)
    {
        const split_t sp = loop_setup_SFX(split, 0, B, H, H, 0, Whh, H, 1, H, Pw, NULL, 0, 0, NULL);
        const int j0 = sp.j0, j1 = sp.j1;
        REAL *sc = Mr ? sc_all + (size_t)sp.tid * B * H : NULL;
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
            SYNC(sp)
            /* DH_{t-1} += dz W_hh for this thread's units (or rows): what only it reads next */
            if (target)
                for (int rb = sp.b0; rb < sp.b1; rb++)
                    panel_rec_SFX(hi - lo, H, dZ + o1 + (size_t)lo * H, Pw + (size_t)rb * H * NR_SFX,
                                  target + (size_t)lo * H, H, rb, Mr ? Mr + (size_t)lo * H : NULL,
                                  sc ? sc + (size_t)lo * H : NULL);
        }
    }
    free(Pw);
    free(sc_all);
}
