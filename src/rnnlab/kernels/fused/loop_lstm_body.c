/* ---- LSTM (lstm.py's equations; REAL = SFX) ----
 * Forward, step t, rows b < bs[t] (sequences sorted longest first):
 *     Z_t += H_{t-1} W_hh^T                 (Z_t holds W_ih x_t + b_ih + b_hh on entry)
 *         layer norm: Rr_t = H_{t-1} W_hh^T;  Z_t += LN(Rr_t) g_hh + b_hh
 *     i = sigma(z_i + w_ci c_{t-1})    f = sigma(z_f + w_cf c_{t-1})    (coupled: f = 1 - i)
 *     g = tanh(z_g)    c_t = f c_{t-1} + i g
 *     o = sigma(z_o + w_co c_t)    m_t = o tanh(c_t)     (layer norm: o tanh(LN(c_t) g_c + b_c))
 *     h_t = m_t (or m_t W_hr^T with a projection)
 *   Z_t is overwritten by the activations i|f|g|o (coupled: i|g|o): they are the recording and what
 *   backward reads.
 * Backward, step t in reverse, dc carried, DH_t = dL/dh_t (output gradient, recurrent part added here):
 *     dm = DH_t (projection: DH_t W_hr)
 *     dc += dm o (1 - tanh^2 c_t) (layer norm: through LN's backward);   dz_o = dm tanh(c_t) o (1 - o)
 *     dc += dz_o w_co
 *     dz_i = dc g i(1-i)  (coupled: dc (g - c_{t-1}) i(1-i));   dz_f = dc c_{t-1} f(1-f);   dz_g = dc i (1-g^2)
 *     dc = dc f + dz_i w_ci + dz_f w_cf
 *     DH_{t-1} += dZ_t W_hh   (layer norm: dR_t W_hh, dR_t = LN backward of dZ_t; at t = 0 into dh0)
 *   The peephole weights' and the layer-norm gains' gradients are summed here too (each thread its units). */

INLINE REAL sigmoid_SFX(REAL x) { return SIGMOID(x); }

INLINE void add_rows_SFX(int j0, int j1, REAL *restrict y, const REAL *restrict x) {
#pragma omp simd
    for (int j = j0; j < j1; j++) y[j] += x[j];
}

/* i, f, g and c_t for units [j0, j1) of one row; Z holds pre-activations on entry, activations after. */
INLINE void cell_row_SFX(int coupled, int peep, int H, int j0, int j1, REAL *restrict z,
                         const REAL *restrict cp, REAL *restrict cn, const REAL *restrict wci,
                         const REAL *restrict wcf) {
    REAL *restrict zi = z;
    REAL *restrict zf = z + H;
    REAL *restrict zg = z + (coupled ? 1 : 2) * H;
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL c_prev = cp[j];
        const REAL i = sigmoid_SFX(peep ? zi[j] + wci[j] * c_prev : zi[j]);
        REAL f;
        if (coupled) {
            f = (REAL)1 - i;
        } else {
            f = sigmoid_SFX(peep ? zf[j] + wcf[j] * c_prev : zf[j]);
            zf[j] = f;
        }
        const REAL g = TANH(zg[j]);
        zi[j] = i;
        zg[j] = g;
        cn[j] = f * c_prev + i * g;
    }
}

/* o and the output m_t for units [j0, j1); ln: tanh of LN(c) with the row's mean and 1/std. */
INLINE void out_row_SFX(int coupled, int peep, int ln, int H, int j0, int j1, REAL *restrict z,
                        const REAL *restrict cn, REAL *restrict out, const REAL *restrict wco,
                        const REAL *restrict lwc, const REAL *restrict lbc, REAL muc, REAL rsc) {
    REAL *restrict zo = z + (coupled ? 2 : 3) * H;
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL c = cn[j];
        const REAL o = sigmoid_SFX(peep ? zo[j] + wco[j] * c : zo[j]);
        zo[j] = o;
        const REAL y = ln ? (c - muc) * rsc * lwc[j] + (lbc ? lbc[j] : (REAL)0) : c;
        out[j] = o * TANH(y);
    }
}

/* From dc = dL/dc_t (all paths in) of units [j0, j1): dz_i, dz_f, dz_g, the carried dc (in place), the
 * peephole sums. */
INLINE void gates_back_SFX(int coupled, int peep, int H, int j0, int j1, const REAL *restrict z,
                           const REAL *restrict cp, const REAL *restrict cn, REAL *dc,
                           REAL *restrict dz, const REAL *restrict wci,
                           const REAL *restrict wcf, double *restrict gp) {
    const REAL *restrict zi = z;
    const REAL *restrict zf = z + H;
    const REAL *restrict zg = z + (coupled ? 1 : 2) * H;
    const REAL *restrict zo = z + (coupled ? 2 : 3) * H;
    REAL *restrict di = dz;
    REAL *restrict df = dz + H;
    REAL *restrict dg = dz + (coupled ? 1 : 2) * H;
    REAL *restrict dO = dz + (coupled ? 2 : 3) * H;
    (void)zo;
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL i = zi[j], g = zg[j], c_prev = cp[j], d_c = dc[j];
        const REAL f = coupled ? (REAL)1 - i : zf[j];
        const REAL d_i = d_c * (coupled ? g - c_prev : g) * i * ((REAL)1 - i);
        REAL d_prev = d_c * f;
        if (!coupled) {
            const REAL d_f = d_c * c_prev * f * ((REAL)1 - f);
            df[j] = d_f;
            if (peep) {
                d_prev += d_f * wcf[j];
                gp[H + j] += (double)(d_f * c_prev);
            }
        }
        if (peep) {
            d_prev += d_i * wci[j];
            gp[j] += (double)(d_i * c_prev);
            gp[2 * H + j] += (double)(dO[j] * cn[j]);
        }
        dg[j] = d_c * i * ((REAL)1 - g * g);
        di[j] = d_i;
        dc[j] = d_prev;
    }
}

/* Without layer norm: dz_o and d_c (kept in dc), then the gates. */
INLINE void bwd_row_SFX(int coupled, int peep, int H, int j0, int j1, const REAL *restrict z,
                        const REAL *restrict cp, const REAL *restrict cn, const REAL *restrict dm,
                        REAL *restrict dc, REAL *restrict dz, const REAL *restrict wci,
                        const REAL *restrict wcf, const REAL *restrict wco, double *restrict gp) {
    const REAL *restrict zo = z + (coupled ? 2 : 3) * H;
    REAL *restrict dO = dz + (coupled ? 2 : 3) * H;
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL o = zo[j], tc = TANH(cn[j]), d_m = dm[j];
        const REAL d_o = d_m * tc * o * ((REAL)1 - o);
        dO[j] = d_o;
        dc[j] += d_m * o * ((REAL)1 - tc * tc) + (peep ? d_o * wco[j] : (REAL)0);
    }
    gates_back_SFX(coupled, peep, H, j0, j1, z, cp, cn, dc, dz, wci, wcf, gp);
}

/* Layer norm, first half: dz_o, dL/dc_hat (kept in dz_g for now), the gains' sums and this thread's two
 * row sums of dc_hat and dc_hat * c_hat (returned). */
INLINE sum2 ln_out_back_SFX(int coupled, int H, int j0, int j1, const REAL *restrict z,
                            const REAL *restrict cn, const REAL *restrict dm, REAL *restrict dz,
                            const REAL *restrict lwc, const REAL *restrict lbc, REAL muc, REAL rsc,
                            double *restrict gl_c, double *restrict gl_b) {
    const REAL *restrict zo = z + (coupled ? 2 : 3) * H;
    REAL *restrict dg = dz + (coupled ? 1 : 2) * H;
    REAL *restrict dO = dz + (coupled ? 2 : 3) * H;
    double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
    for (int j = j0; j < j1; j++) {
        const REAL o = zo[j], ch = (cn[j] - muc) * rsc, d_m = dm[j];
        const REAL tc = TANH(ch * lwc[j] + (lbc ? lbc[j] : (REAL)0));
        dO[j] = d_m * tc * o * ((REAL)1 - o);
        const REAL gcn = d_m * o * ((REAL)1 - tc * tc);
        gl_c[j] += (double)(gcn * ch);
        gl_b[j] += (double)gcn;
        const REAL dch = gcn * lwc[j];
        dg[j] = dch;
        s1 += dch;
        s2 += dch * ch;
    }
    sum2 s = {s1, s2};
    return s;
}

/* Layer norm, second half: d_c through LN(c) with the row sums S1 = mean(dc_hat), S2 = mean(dc_hat c_hat). */
INLINE void ln_cell_back_SFX(int coupled, int peep, int H, int j0, int j1, const REAL *restrict z,
                             const REAL *restrict cp, const REAL *restrict cn, REAL *restrict dc,
                             REAL *restrict dz, const REAL *restrict wci, const REAL *restrict wcf,
                             const REAL *restrict wco, REAL muc, REAL rsc, REAL S1, REAL S2,
                             double *restrict gp) {
    const REAL *restrict dg = dz + (coupled ? 1 : 2) * H;
    const REAL *restrict dO = dz + (coupled ? 2 : 3) * H;
#pragma omp simd
    for (int j = j0; j < j1; j++) {
        const REAL ch = (cn[j] - muc) * rsc;
        dc[j] += rsc * (dg[j] - S1 - ch * S2) + (peep ? dO[j] * wco[j] : (REAL)0);
    }
    gates_back_SFX(coupled, peep, H, j0, j1, z, cp, cn, dc, dz, wci, wcf, gp);
}

/* Recurrent layer norm backward, first half over this thread's columns of every gate: the row sums of
 * g = dz lwh and g r_hat, and the gain's sum of dz r_hat. */
INLINE sum2 ln_rec_sums_SFX(int G, int H, int j0, int j1, const REAL *restrict dz, const REAL *restrict r,
                            const REAL *restrict lwh, REAL mur, REAL rsr, double *restrict gl_h) {
    double t1 = 0, t2 = 0;
    for (int g = 0; g < G; g++) {
        const int o = g * H;
#pragma omp simd reduction(+ : t1, t2)
        for (int j = o + j0; j < o + j1; j++) {
            const REAL rh = (r[j] - mur) * rsr, d = dz[j];
            gl_h[j] += (double)(d * rh);
            t1 += d * lwh[j];
            t2 += d * lwh[j] * rh;
        }
    }
    sum2 s = {t1, t2};
    return s;
}

INLINE void ln_rec_back_SFX(int G, int H, int j0, int j1, const REAL *restrict dz, const REAL *restrict r,
                            const REAL *restrict lwh, REAL mur, REAL rsr, REAL T1, REAL T2, REAL *restrict dr) {
    for (int g = 0; g < G; g++) {
        const int o = g * H;
#pragma omp simd
        for (int j = o + j0; j < o + j1; j++) dr[j] = rsr * (dz[j] * lwh[j] - T1 - (r[j] - mur) * rsr * T2);
    }
}

/* After the barrier that follows the recurrent product r = h W_hh^T: row b's mean and 1/std of r, from every
 * thread's partials (kept in st[0], st[1] for backward when `write`), and, over this thread's columns of
 * every gate, dst = (add ? dst : 0) + LN(r) g_hh + b_hh. */
INLINE void ln_rec_apply_SFX(const stat3 *pa, int nth, int B, double eps, int write, REAL *st, int G, int H, int j0,
                             int j1, const REAL *restrict r, const REAL *restrict lwh, const REAL *restrict bhh,
                             REAL *restrict dst, int add) {
    double mu_d, rs_d;
    combine_stats(pa, nth, B, eps, &mu_d, &rs_d);
    const REAL mu = (REAL)mu_d, rs = (REAL)rs_d;
    if (write) {
        st[0] = mu;
        st[1] = rs;
    }
    for (int g = 0; g < G; g++) {
        const int o = g * H;
#pragma omp simd
        for (int j = o + j0; j < o + j1; j++)
            dst[j] = (add ? dst[j] : (REAL)0) + (r[j] - mu) * rs * lwh[j] + (bhh ? bhh[j] : (REAL)0);
    }
}

/* Row b's two sums over every thread's partials. */
INLINE void sum_parts_SFX(const sum2 *pa, int nth, int B, int b, double *s1, double *s2) {
    double a = 0, c = 0;
    for (int k = 0; k < nth; k++) {
        a += pa[(size_t)k * B + b].a;
        c += pa[(size_t)k * B + b].b;
    }
    *s1 = a;
    *s2 = c;
}

#define DISPATCH_SFX(FN, ...)                                                                              \
    do {                                                                                                   \
        if (coupled) {                                                                                     \
            if (peep) FN(1, 1, __VA_ARGS__); else FN(1, 0, __VA_ARGS__);                                   \
        } else {                                                                                           \
            if (peep) FN(0, 1, __VA_ARGS__); else FN(0, 0, __VA_ARGS__);                                   \
        }                                                                                                  \
    } while (0)

/* Zoneout of row b after its step, units [j0, j1): c_t = lerp(c~_t, c_{t-1}, z) with c~_t kept in ct (when
 * given) for backward, and h_t likewise when zoh (a projected h is mixed after its product instead). */
INLINE void zone_lstm_row_SFX(int b, int H, int R, int j0, int j1, int zoc, int zoh, REAL *cn, const REAL *cp,
                              const REAL *zc, REAL zc0, REAL *ct, REAL *hn, const REAL *hp, const REAL *zh, REAL zh0) {
    const size_t oh = (size_t)b * H, orr = (size_t)b * R;
    if (zoc) zone_row_SFX(j0, j1, cn + oh, cp + oh, zc ? zc + oh : NULL, zc0, ct ? ct + oh : NULL);
    if (zoh) zone_row_SFX(j0, j1, hn + orr, hp + orr, zh ? zh + orr : NULL, zh0, NULL);
}

/* Z (T,B,GH) in: the input part, out: the activations; Hs (T+1,B,R) and Cs (T+1,B,H) with [0] the initial
 * state; M (T,B,H) the unprojected output when R != H (projection), else NULL; bs[t] active rows at step t.
 * Layer norm (Rr != NULL): Rr (T,B,GH) out: H_{t-1} W_hh^T; ST (T,B,4) out: mean and 1/std of Rr_t's row
 * and of c_t's row, for backward. keep = 0 (no backward will run): Rr, ST and M are one step's scratch
 * (B,GH), (B,4), (B,H), reused every step. split: see make_split.
 * Regularization (loop_gemm_body.c): Mr (B,R) recurrent dropout's mask or NULL; zoneout of c: ZC (T,B,H)
 * indicators, or NULL and the expectation zc0 (0: off); of h: ZH (T,B,R) / zh0; CT (T,B,H) out: c~_t, the cell
 * state before zoneout mixed in c_{t-1} (what o and tanh saw; backward reads it), or NULL (inference). */
void lstm_forward_SFX(int nth_req, int split, int T, int B, int H, int R, int coupled, int peep, const int *bs,
                      int keep, REAL *Z, REAL *Rr, REAL *Hs, REAL *Cs, REAL *M, REAL *ST, const REAL *Whh,
                      const REAL *Whr, const REAL *wci, const REAL *wcf, const REAL *wco, const REAL *lwh,
                      const REAL *bhh, const REAL *lwc, const REAL *lbc, double eps, const REAL *Mr,
                      const REAL *ZC, double zc0, const REAL *ZH, double zh0, REAL *CT, const REAL *PwIn,
                      const REAL *PrIn) {
    const int G = coupled ? 3 : 4, GH = G * H, ln = Rr != NULL, proj = M != NULL;
    const int zoc = ZC != NULL || zc0 > 0, zoh = ZH != NULL || zh0 > 0; /* zoneout of c, of h */
    REAL *hm_all = Mr ? alloc_aligned(sizeof(REAL) * (size_t)nth_req * B * R) : NULL;
    const int nbH = panels_SFX(H), nbR = panels_SFX(R);
    const size_t ks = keep ? 1 : 0; /* time stride of Rr, ST and M */
    /* PwIn / PrIn: W_hh's and W_hr's panels packed by the caller (pack_panels), else packed here */
    REAL *Pw = PwIn ? (REAL *)PwIn : alloc_aligned(sizeof(REAL) * (size_t)G * nbH * R * NR_SFX);
    REAL *Pr = PrIn ? (REAL *)PrIn : proj ? alloc_aligned(sizeof(REAL) * (size_t)nbR * H * NR_SFX) : NULL;
    stat3 *pa = ln ? alloc_aligned(sizeof(stat3) * (size_t)nth_req * B) : NULL;
    stat3 *pb = ln ? alloc_aligned(sizeof(stat3) * (size_t)nth_req * B) : NULL;
#pragma omp parallel num_threads(nth_req)
    {
        const split_t sp = loop_setup_SFX(split, ln, B, H, R, 1, PwIn ? NULL : Whh, R, G, H, Pw,
                                          proj && !PrIn ? Whr : NULL, H, R, Pr);
        const int tid = sp.tid, j0 = sp.j0, j1 = sp.j1;
        /* the partial statistics this thread combines: every thread's (by units) or its own (by rows) */
        const stat3 *ca = ln ? pa + sp.own : NULL;
        const stat3 *cb = ln ? pb + sp.own : NULL;
        REAL *hm = Mr ? hm_all + (size_t)tid * B * R : NULL;
        for (int t = 0; t < T; t++) {
            int lo, hi;
            if (!step_rows(&sp, bs[t], &lo, &hi)) continue;
            REAL *z = Z + (size_t)t * B * GH;
            const REAL *hp = Hs + (size_t)t * B * R;
            const REAL *hin = Mr ? masked_rows_SFX(hp, Mr, hm, lo, hi, R) : hp; /* what W_hh multiplies */
            const REAL *zc = ZC ? ZC + (size_t)t * B * H : NULL;
            const REAL *zh = ZH ? ZH + (size_t)t * B * R : NULL;
            REAL *ct = CT ? CT + (size_t)t * B * H : NULL;
            REAL *hn = Hs + (size_t)(t + 1) * B * R;
            const REAL *cp = Cs + (size_t)t * B * H;
            REAL *cn = Cs + (size_t)(t + 1) * B * H;
            REAL *out = proj ? M + ks * t * B * H : hn;
            if (!ln) {
                gemm_units_SFX(hi - lo, R, hin + (size_t)lo * R, R, Pw, G, H, sp.b0, sp.b1, z + (size_t)lo * GH, GH, 1);
                for (int b = lo; b < hi; b++) {
                    REAL *zb = z + (size_t)b * GH;
                    DISPATCH_SFX(cell_row_SFX, H, j0, j1, zb, cp + (size_t)b * H, cn + (size_t)b * H, wci, wcf);
                    DISPATCH_SFX(out_row_SFX, 0, H, j0, j1, zb, cn + (size_t)b * H, out + (size_t)b * H, wco,
                                 NULL, NULL, (REAL)0, (REAL)0);
                    zone_lstm_row_SFX(b, H, R, j0, j1, zoc, zoh && !proj, cn, cp, zc, (REAL)zc0, ct, hn, hp, zh,
                                      (REAL)zh0);
                }
            } else {
                REAL *r = Rr + ks * t * B * GH;
                REAL *st = ST + ks * t * B * 4;
                gemm_units_SFX(hi - lo, R, hin + (size_t)lo * R, R, Pw, G, H, sp.b0, sp.b1, r + (size_t)lo * GH, GH, 0);
                for (int b = lo; b < hi; b++) pa[(size_t)tid * B + b] = part_stats_SFX(r + (size_t)b * GH, G, H, j0, j1);
                SYNC(sp)
                for (int b = lo; b < hi; b++) {
                    REAL *zb = z + (size_t)b * GH;
                    ln_rec_apply_SFX(ca + b, sp.sn, B, eps, sp.writer, st + b * 4, G, H, j0, j1, r + (size_t)b * GH,
                                     lwh, bhh, zb, 1);
                    DISPATCH_SFX(cell_row_SFX, H, j0, j1, zb, cp + (size_t)b * H, cn + (size_t)b * H, wci, wcf);
                    pb[(size_t)tid * B + b] = part_stats_SFX(cn + (size_t)b * H, 1, H, j0, j1);
                }
                SYNC(sp)
                for (int b = lo; b < hi; b++) {
                    double mu, rs;
                    combine_stats(cb + b, sp.sn, B, eps, &mu, &rs);
                    if (sp.writer) {
                        st[b * 4 + 2] = (REAL)mu;
                        st[b * 4 + 3] = (REAL)rs;
                    }
                    DISPATCH_SFX(out_row_SFX, 1, H, j0, j1, z + (size_t)b * GH, cn + (size_t)b * H,
                                 out + (size_t)b * H, wco, lwc, lbc, (REAL)mu, (REAL)rs);
                    zone_lstm_row_SFX(b, H, R, j0, j1, zoc, zoh && !proj, cn, cp, zc, (REAL)zc0, ct, hn, hp, zh,
                                      (REAL)zh0);
                }
            }
            if (proj) {
                SYNC(sp)
                for (int rb = sp.r0; rb < sp.r1; rb++)
                    panel_SFX(hi - lo, H, out + (size_t)lo * H, H, Pr + (size_t)rb * H * NR_SFX,
                              hn + (size_t)lo * R + rb * NR_SFX, R, imin(NR_SFX, R - rb * NR_SFX), 0);
                if (zoh) {
                    const int c0 = imin(sp.r0 * NR_SFX, R), c1 = imin(sp.r1 * NR_SFX, R);
                    for (int b = lo; b < hi; b++)
                        zone_row_SFX(c0, c1, hn + (size_t)b * R, hp + (size_t)b * R, zh ? zh + (size_t)b * R : NULL,
                                     (REAL)zh0, NULL);
                }
            }
            SYNC(sp)
        }
    }
    if (!PwIn) free(Pw);
    if (!PrIn) free(Pr);
    free(pa);
    free(pb);
    free(hm_all);
}

/* DH (T,B,R) in: dL/dh_t; out: with the recurrent contributions. DM (T,B,H) scratch for dm when projecting,
 * else NULL. dZ (T,B,GH) out. DC (B,H) in: dL/dc_n; out: dL/dc_0. dh0 (B,R) out, or NULL.
 * GP (3,H) doubles, zero on entry (peephole): out the sums of dz_i c_{t-1}, dz_f c_{t-1}, dz_o c_t.
 * Layer norm (Rr != NULL): ST as saved by forward; dR (T,B,GH) out: the gradient before the recurrent
 * layer norm (what W_hh sees); GL (GH + 2H) doubles, zero on entry: out the sums of dz r_hat, of
 * dL/dy c_hat and of dL/dy (y = LN(c) g_c + b_c), i.e. the gains' gradients. split: see make_split.
 * Regularization: Mr, ZC/zc0, ZH/zh0 as forward; CT as forward wrote it (NULL without zoneout of c); dh0 must be
 * zero on entry (every step adds into it). With zoneout of h, DH_t becomes dL/dh~_t in place. */
void lstm_backward_SFX(int nth_req, int split, int T, int B, int H, int R, int coupled, int peep, const int *bs,
                       const REAL *Z, const REAL *Rr, const REAL *Cs, const REAL *ST, REAL *DH, REAL *DM,
                       REAL *dZ, REAL *dR, REAL *DC, REAL *dh0, double *GP, double *GL, const REAL *Whh,
                       const REAL *Whr, const REAL *wci, const REAL *wcf, const REAL *wco, const REAL *lwh,
                       const REAL *lwc, const REAL *lbc, const REAL *Mr, const REAL *ZC, double zc0,
                       const REAL *ZH, double zh0, const REAL *CT) {
    const int G = coupled ? 3 : 4, GH = G * H, ln = Rr != NULL, proj = DM != NULL;
    const int zoc = ZC != NULL || zc0 > 0, zoh = ZH != NULL || zh0 > 0; /* zoneout of c, of h */
    REAL *sc_all = Mr ? alloc_aligned(sizeof(REAL) * (size_t)nth_req * B * R) : NULL;
    REAL *DD = zoc ? alloc_aligned(sizeof(REAL) * (size_t)B * H) : NULL; /* dL/dc_t's share kept for c_{t-1} */
    const int nbH = panels_SFX(H), nbR = panels_SFX(R), nGP = 3 * H, nGL = GH + 2 * H;
    REAL *Pw = alloc_aligned(sizeof(REAL) * (size_t)nbR * GH * NR_SFX);
    REAL *Pr = proj ? alloc_aligned(sizeof(REAL) * (size_t)nbH * R * NR_SFX) : NULL;
    sum2 *pa = ln ? alloc_aligned(sizeof(sum2) * (size_t)nth_req * B) : NULL;
    sum2 *pb = ln ? alloc_aligned(sizeof(sum2) * (size_t)nth_req * B) : NULL;
    double *gp_all = GP ? calloc((size_t)nth_req * nGP, sizeof(double)) : NULL;
    double *gl_all = GL ? calloc((size_t)nth_req * nGL, sizeof(double)) : NULL;
#pragma omp parallel num_threads(nth_req)
    {
        const split_t sp = loop_setup_SFX(split, ln, B, H, R, 0, Whh, GH, 1, R, Pw, proj ? Whr : NULL, R, H, Pr);
        const int tid = sp.tid, nth = thread_count(), j0 = sp.j0, j1 = sp.j1;
        const sum2 *ca = ln ? pa + sp.own : NULL;
        const sum2 *cb = ln ? pb + sp.own : NULL;
        double *gp = thread_sums(GP, gp_all, nGP, sp.rows, tid);
        double *gl = thread_sums(GL, gl_all, nGL, sp.rows, tid);
        REAL *sc = Mr ? sc_all + (size_t)tid * B * R : NULL;
        for (int t = T - 1; t >= 0; t--) {
            int lo, hi;
            if (!step_rows(&sp, bs[t], &lo, &hi)) continue;
            REAL *dh = DH + (size_t)t * B * R;
            REAL *dm = proj ? DM + (size_t)t * B * H : dh;
            REAL *target = t > 0 ? DH + (size_t)(t - 1) * B * R : dh0;
            const REAL *zc = ZC ? ZC + (size_t)t * B * H : NULL;
            if (zoh) { /* h_t = lerp(h~_t, h_{t-1}, z): h_{t-1}'s direct share, then dh becomes dL/dh~_t */
                const REAL *zh = ZH ? ZH + (size_t)t * B * R : NULL;
                const int c0 = imin(sp.r0 * NR_SFX, R), c1 = imin(sp.r1 * NR_SFX, R);
                for (int b = lo; b < hi; b++)
                    zone_back_SFX(c0, c1, dh + (size_t)b * R, target ? target + (size_t)b * R : NULL,
                                  zh ? zh + (size_t)b * R : NULL, (REAL)zh0);
                if (proj) {
                    SYNC(sp) /* the projection's dm reads every column of dh */
                }
            }
            if (zoc) /* c_t = lerp(c~_t, c_{t-1}, z): c_{t-1}'s direct share waits in DD, DC becomes dL/dc~_t */
                for (int b = lo; b < hi; b++) {
                    REAL *dd = DD + (size_t)b * H;
                    memset(dd + j0, 0, sizeof(REAL) * (size_t)(j1 - j0));
                    zone_back_SFX(j0, j1, DC + (size_t)b * H, dd, zc ? zc + (size_t)b * H : NULL, (REAL)zc0);
                }
            if (proj)
                gemm_units_SFX(hi - lo, R, dh + (size_t)lo * R, R, Pr, 1, H, sp.b0, sp.b1, dm + (size_t)lo * H, H, 0);
            const REAL *z = Z + (size_t)t * B * GH;
            const REAL *cp = Cs + (size_t)t * B * H;
            const REAL *cn = CT ? CT + (size_t)t * B * H : Cs + (size_t)(t + 1) * B * H; /* c~_t: what o, tanh saw */
            REAL *dz = dZ + (size_t)t * B * GH;
            const REAL *drec = dz;
            if (!ln) {
                for (int b = lo; b < hi; b++) {
                    DISPATCH_SFX(bwd_row_SFX, H, j0, j1, z + (size_t)b * GH, cp + (size_t)b * H,
                                 cn + (size_t)b * H, dm + (size_t)b * H, DC + (size_t)b * H, dz + (size_t)b * GH,
                                 wci, wcf, wco, gp);
                    if (zoc) add_rows_SFX(j0, j1, DC + (size_t)b * H, DD + (size_t)b * H);
                }
            } else {
                const REAL *r = Rr + (size_t)t * B * GH;
                const REAL *st = ST + (size_t)t * B * 4;
                REAL *dr = dR + (size_t)t * B * GH;
                drec = dr;
                for (int b = lo; b < hi; b++)
                    pa[(size_t)tid * B + b] = ln_out_back_SFX(coupled, H, j0, j1, z + (size_t)b * GH, cn + (size_t)b * H,
                                                              dm + (size_t)b * H, dz + (size_t)b * GH, lwc, lbc,
                                                              st[b * 4 + 2], st[b * 4 + 3], gl + GH, gl + GH + H);
                SYNC(sp)
                for (int b = lo; b < hi; b++) {
                    double S1, S2;
                    sum_parts_SFX(ca, sp.sn, B, b, &S1, &S2);
                    DISPATCH_SFX(ln_cell_back_SFX, H, j0, j1, z + (size_t)b * GH, cp + (size_t)b * H,
                                 cn + (size_t)b * H, DC + (size_t)b * H, dz + (size_t)b * GH, wci, wcf, wco,
                                 st[b * 4 + 2], st[b * 4 + 3], (REAL)(S1 / H), (REAL)(S2 / H), gp);
                    if (zoc) add_rows_SFX(j0, j1, DC + (size_t)b * H, DD + (size_t)b * H);
                    pb[(size_t)tid * B + b] = ln_rec_sums_SFX(G, H, j0, j1, dz + (size_t)b * GH, r + (size_t)b * GH,
                                                              lwh, st[b * 4], st[b * 4 + 1], gl);
                }
                SYNC(sp)
                for (int b = lo; b < hi; b++) {
                    double T1, T2;
                    sum_parts_SFX(cb, sp.sn, B, b, &T1, &T2);
                    ln_rec_back_SFX(G, H, j0, j1, dz + (size_t)b * GH, r + (size_t)b * GH, lwh, st[b * 4],
                                    st[b * 4 + 1], (REAL)(T1 / GH), (REAL)(T2 / GH), dr + (size_t)b * GH);
                }
            }
            SYNC(sp)
            if (target) /* dh0 is zero on entry: every step adds */
                for (int rb = sp.r0; rb < sp.r1; rb++)
                    panel_rec_SFX(hi - lo, GH, drec + (size_t)lo * GH, Pw + (size_t)rb * GH * NR_SFX,
                                  target + (size_t)lo * R, R, rb, Mr ? Mr + (size_t)lo * R : NULL,
                                  sc ? sc + (size_t)lo * R : NULL);
            /* by units without a projection this thread next reads only the columns it just wrote (R = H, the
             * same blocks); a projection's dm reads every column of DH_{t-1} */
            if (proj) {
                SYNC(sp)
            }
        }
        if (sp.rows && (GP || GL)) {
            BARRIER
            if (GP) reduce_sums(GP, gp_all, nGP, nth, tid);
            if (GL) reduce_sums(GL, gl_all, nGL, nth, tid);
        }
    }
    free(Pw);
    free(Pr);
    free(pa);
    free(pb);
    free(gp_all);
    free(gl_all);
    free(sc_all);
    free(DD);
}
