/* Instantiated once per floating type by compiled.py: REAL, SFX, EXP, TANH are replaced textually. */

typedef void (*gemm_SFX)(const char *, const char *, const int *, const int *, const int *, const REAL *,
                         const REAL *, const int *, const REAL *, const int *, const REAL *, REAL *, const int *);

INLINE REAL sigmoid_SFX(REAL x) { return (REAL)1 / ((REAL)1 + EXP(-x)); }

/* One row of the forward step; `coupled` and `peep` are constants at each call site, so each of the four
 * variants compiles to its own straight vectorised loop. */
INLINE void fwd_row_SFX(int H, int coupled, int peep, REAL *restrict z, const REAL *restrict cp,
                        REAL *restrict cn, REAL *restrict out, const REAL *restrict wci,
                        const REAL *restrict wcf, const REAL *restrict wco) {
    REAL *restrict zi = z;
    REAL *restrict zf = coupled ? z : z + H;
    REAL *restrict zg = coupled ? z + H : z + 2 * H;
    REAL *restrict zo = coupled ? z + 2 * H : z + 3 * H;
#pragma omp simd
    for (int j = 0; j < H; j++) {
        REAL c_prev = cp[j];
        REAL i = sigmoid_SFX(peep ? zi[j] + wci[j] * c_prev : zi[j]);
        REAL f;
        if (coupled) {
            f = (REAL)1 - i;
        } else {
            f = sigmoid_SFX(peep ? zf[j] + wcf[j] * c_prev : zf[j]);
            zf[j] = f;
        }
        REAL g = TANH(zg[j]);
        REAL c = f * c_prev + i * g;
        REAL o = sigmoid_SFX(peep ? zo[j] + wco[j] * c : zo[j]);
        zi[j] = i;
        zg[j] = g;
        zo[j] = o;
        cn[j] = c;
        out[j] = o * TANH(c);
    }
}

INLINE void bwd_row_SFX(int H, int coupled, int peep, const REAL *restrict z, const REAL *restrict cp,
                        const REAL *restrict cn, const REAL *restrict dm, REAL *restrict dc,
                        REAL *restrict dz, const REAL *restrict wci, const REAL *restrict wcf,
                        const REAL *restrict wco) {
    const REAL *restrict zi = z;
    const REAL *restrict zf = coupled ? z : z + H;
    const REAL *restrict zg = coupled ? z + H : z + 2 * H;
    const REAL *restrict zo = coupled ? z + 2 * H : z + 3 * H;
    REAL *restrict di = dz;
    REAL *restrict df = coupled ? dz : dz + H;
    REAL *restrict dg = coupled ? dz + H : dz + 2 * H;
    REAL *restrict dO = coupled ? dz + 2 * H : dz + 3 * H;
#pragma omp simd
    for (int j = 0; j < H; j++) {
        REAL i = zi[j], g = zg[j], o = zo[j], c_prev = cp[j];
        REAL f = coupled ? (REAL)1 - i : zf[j];
        REAL tc = TANH(cn[j]);
        REAL d_m = dm[j];
        REAL d_o = d_m * tc * o * ((REAL)1 - o);
        REAL d_c = dc[j] + d_m * o * ((REAL)1 - tc * tc);
        if (peep) d_c += d_o * wco[j];
        REAL d_i = d_c * (coupled ? g - c_prev : g) * i * ((REAL)1 - i);
        REAL d_g = d_c * i * ((REAL)1 - g * g);
        REAL d_prev = d_c * f;
        if (!coupled) {
            REAL d_f = d_c * c_prev * f * ((REAL)1 - f);
            df[j] = d_f;
            if (peep) d_prev += d_f * wcf[j];
        }
        if (peep) d_prev += d_i * wci[j];
        di[j] = d_i;
        dg[j] = d_g;
        dO[j] = d_o;
        dc[j] = d_prev;
    }
}

#define DISPATCH_SFX(FN, ...)                                                                              \
    do {                                                                                                   \
        if (coupled) {                                                                                     \
            if (peep) FN(H, 1, 1, __VA_ARGS__); else FN(H, 1, 0, __VA_ARGS__);                             \
        } else {                                                                                           \
            if (peep) FN(H, 0, 1, __VA_ARGS__); else FN(H, 0, 0, __VA_ARGS__);                             \
        }                                                                                                  \
    } while (0)

/* Z (T,B,GH) in: input part, out: activations; Hs (T+1,B,R) and Cs (T+1,B,H) with [0] the initial state;
 * M (T,B,H) the unprojected output when R != H (projection), else NULL; bs[t] active rows at step t. */
void lstm_forward_SFX(int T, int B, int H, int R, int coupled, int peep, const int *bs, REAL *Z, REAL *Hs,
                      REAL *Cs, REAL *M, const REAL *Whh, const REAL *Whr, const REAL *wci, const REAL *wcf,
                      const REAL *wco, gemm_SFX gemm) {
    const int GH = (coupled ? 3 : 4) * H;
    const REAL one = 1, zero = 0;
    const int proj = M != NULL;
    for (int t = 0; t < T; t++) {
        const int n = bs[t];
        if (n <= 0) continue;
        REAL *z = Z + (size_t)t * B * GH;
        const REAL *hp = Hs + (size_t)t * B * R;
        REAL *hn = Hs + (size_t)(t + 1) * B * R;
        const REAL *cp = Cs + (size_t)t * B * H;
        REAL *cn = Cs + (size_t)(t + 1) * B * H;
        REAL *out = proj ? M + (size_t)t * B * H : hn;
        gemm("T", "N", &GH, &n, &R, &one, Whh, &R, hp, &R, &one, z, &GH);
        for (int b = 0; b < n; b++) {
            DISPATCH_SFX(fwd_row_SFX, z + (size_t)b * GH, cp + (size_t)b * H, cn + (size_t)b * H,
                         out + (size_t)b * H, wci, wcf, wco);
        }
        if (proj) gemm("T", "N", &R, &n, &H, &one, Whr, &H, out, &H, &zero, hn, &R);
    }
}

/* DH (T,B,R) in: dL/dh_t; out: with the recurrent contributions. DM (T,B,H) scratch for dm when
 * projecting, else NULL. dZ (T,B,GH) out. DC (B,H) in: dL/dc_n; out: dL/dc_0. dh0 (B,R) out, or NULL. */
void lstm_backward_SFX(int T, int B, int H, int R, int coupled, int peep, const int *bs, const REAL *Z,
                       const REAL *Cs, REAL *DH, REAL *DM, REAL *dZ, REAL *DC, REAL *dh0, const REAL *Whh,
                       const REAL *Whr, const REAL *wci, const REAL *wcf, const REAL *wco, gemm_SFX gemm) {
    const int GH = (coupled ? 3 : 4) * H;
    const REAL one = 1, zero = 0;
    const int proj = DM != NULL;
    for (int t = T - 1; t >= 0; t--) {
        const int n = bs[t];
        if (n <= 0) continue;
        REAL *dh = DH + (size_t)t * B * R;
        REAL *dm = proj ? DM + (size_t)t * B * H : dh;
        if (proj) gemm("N", "N", &H, &n, &R, &one, Whr, &H, dh, &R, &zero, dm, &H);
        const REAL *z = Z + (size_t)t * B * GH;
        const REAL *cp = Cs + (size_t)t * B * H;
        const REAL *cn = Cs + (size_t)(t + 1) * B * H;
        REAL *dz = dZ + (size_t)t * B * GH;
        for (int b = 0; b < n; b++) {
            DISPATCH_SFX(bwd_row_SFX, z + (size_t)b * GH, cp + (size_t)b * H, cn + (size_t)b * H,
                         dm + (size_t)b * H, DC + (size_t)b * H, dz + (size_t)b * GH, wci, wcf, wco);
        }
        REAL *target = t > 0 ? DH + (size_t)(t - 1) * B * R : dh0;
        const REAL *beta = t > 0 ? &one : &zero;
        if (target) gemm("N", "N", &R, &n, &GH, &one, Whh, &R, dz, &GH, beta, target, &R);
    }
}

/* ---- layer-normalised LSTM (cells/lstm.py): z = a + LN(h W_hh^T) g_hh + b_hh, h = o tanh(LN(c) g_c + b_c) ----
 * The row statistics are two-pass (mean, then variance), as torch's layer_norm; backward recomputes them. */

INLINE void row_stats_SFX(int n, const REAL *restrict v, REAL eps, REAL *mean, REAL *rstd) {
    REAL s = 0, q = 0;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) s += v[j];
    const REAL mu = s / n;
#pragma omp simd reduction(+ : q)
    for (int j = 0; j < n; j++) q += (v[j] - mu) * (v[j] - mu);
    *mean = mu;
    *rstd = (REAL)1 / (REAL)sqrt((double)(q / n + eps));
}

INLINE void ln_fwd_row_SFX(int H, int coupled, int peep, REAL *restrict z, const REAL *restrict r,
                           const REAL *restrict cp, REAL *restrict cn, REAL *restrict out,
                           const REAL *restrict wci, const REAL *restrict wcf, const REAL *restrict wco,
                           const REAL *restrict lwh, const REAL *restrict bhh, const REAL *restrict lwc,
                           const REAL *restrict lbc, REAL eps) {
    const int GH = (coupled ? 3 : 4) * H;
    REAL mu, rs;
    row_stats_SFX(GH, r, eps, &mu, &rs);
#pragma omp simd
    for (int j = 0; j < GH; j++) z[j] += (r[j] - mu) * rs * lwh[j] + (bhh ? bhh[j] : (REAL)0);
    REAL *restrict zi = z;
    REAL *restrict zf = coupled ? z : z + H;
    REAL *restrict zg = coupled ? z + H : z + 2 * H;
    REAL *restrict zo = coupled ? z + 2 * H : z + 3 * H;
#pragma omp simd
    for (int j = 0; j < H; j++) {
        REAL c_prev = cp[j];
        REAL i = sigmoid_SFX(peep ? zi[j] + wci[j] * c_prev : zi[j]);
        REAL f;
        if (coupled) {
            f = (REAL)1 - i;
        } else {
            f = sigmoid_SFX(peep ? zf[j] + wcf[j] * c_prev : zf[j]);
            zf[j] = f;
        }
        REAL g = TANH(zg[j]);
        zi[j] = i;
        zg[j] = g;
        cn[j] = f * c_prev + i * g;
    }
    REAL muc, rsc;
    row_stats_SFX(H, cn, eps, &muc, &rsc);
#pragma omp simd
    for (int j = 0; j < H; j++) {
        REAL c = cn[j];
        REAL o = sigmoid_SFX(peep ? zo[j] + wco[j] * c : zo[j]);
        zo[j] = o;
        out[j] = o * TANH((c - muc) * rsc * lwc[j] + (lbc ? lbc[j] : (REAL)0));
    }
}

INLINE void ln_bwd_row_SFX(int H, int coupled, int peep, const REAL *restrict z, const REAL *restrict r,
                           const REAL *restrict cp, const REAL *restrict cn, const REAL *restrict dm,
                           REAL *restrict dc, REAL *restrict dz, REAL *restrict dr,
                           const REAL *restrict wci, const REAL *restrict wcf, const REAL *restrict wco,
                           const REAL *restrict lwh, const REAL *restrict lwc, const REAL *restrict lbc,
                           REAL eps) {
    const int GH = (coupled ? 3 : 4) * H;
    const REAL *restrict zi = z;
    const REAL *restrict zf = coupled ? z : z + H;
    const REAL *restrict zg = coupled ? z + H : z + 2 * H;
    const REAL *restrict zo = coupled ? z + 2 * H : z + 3 * H;
    REAL *restrict di = dz;
    REAL *restrict df = coupled ? dz : dz + H;
    REAL *restrict dg = coupled ? dz + H : dz + 2 * H;
    REAL *restrict dO = coupled ? dz + 2 * H : dz + 3 * H;
    /* h = o tanh(y), y = c_hat g_c + b_c: dc_hat (kept in dg for now) and its two row sums */
    REAL muc, rsc, s1 = 0, s2 = 0;
    row_stats_SFX(H, cn, eps, &muc, &rsc);
#pragma omp simd reduction(+ : s1, s2)
    for (int j = 0; j < H; j++) {
        REAL o = zo[j], ch = (cn[j] - muc) * rsc;
        REAL tc = TANH(ch * lwc[j] + (lbc ? lbc[j] : (REAL)0));
        dO[j] = dm[j] * tc * o * ((REAL)1 - o);
        REAL dch = dm[j] * o * ((REAL)1 - tc * tc) * lwc[j];
        dg[j] = dch;
        s1 += dch;
        s2 += dch * ch;
    }
    s1 /= H;
    s2 /= H;
#pragma omp simd
    for (int j = 0; j < H; j++) {
        REAL i = zi[j], g = zg[j], c_prev = cp[j];
        REAL f = coupled ? (REAL)1 - i : zf[j];
        REAL ch = (cn[j] - muc) * rsc;
        REAL d_c = dc[j] + rsc * (dg[j] - s1 - ch * s2);
        if (peep) d_c += dO[j] * wco[j];
        REAL d_i = d_c * (coupled ? g - c_prev : g) * i * ((REAL)1 - i);
        REAL d_g = d_c * i * ((REAL)1 - g * g);
        REAL d_prev = d_c * f;
        if (!coupled) {
            REAL d_f = d_c * c_prev * f * ((REAL)1 - f);
            df[j] = d_f;
            if (peep) d_prev += d_f * wcf[j];
        }
        if (peep) d_prev += d_i * wci[j];
        di[j] = d_i;
        dg[j] = d_g;
        dc[j] = d_prev;
    }
    /* z = a + r_hat g_hh + b_hh: dr from dz through the layer norm of r */
    REAL mur, rsr, t1 = 0, t2 = 0;
    row_stats_SFX(GH, r, eps, &mur, &rsr);
#pragma omp simd reduction(+ : t1, t2)
    for (int j = 0; j < GH; j++) {
        REAL dh = dz[j] * lwh[j];
        t1 += dh;
        t2 += dh * (r[j] - mur) * rsr;
    }
    t1 /= GH;
    t2 /= GH;
#pragma omp simd
    for (int j = 0; j < GH; j++) dr[j] = rsr * (dz[j] * lwh[j] - t1 - (r[j] - mur) * rsr * t2);
}

/* As lstm_forward, plus Rr (T,B,GH): h_{t-1} W_hh^T before its layer norm (saved for backward). */
void lstm_ln_forward_SFX(int T, int B, int H, int R, int coupled, int peep, const int *bs, REAL *Z, REAL *Rr,
                         REAL *Hs, REAL *Cs, REAL *M, const REAL *Whh, const REAL *Whr, const REAL *wci,
                         const REAL *wcf, const REAL *wco, const REAL *lwh, const REAL *bhh, const REAL *lwc,
                         const REAL *lbc, double eps, gemm_SFX gemm) {
    const int GH = (coupled ? 3 : 4) * H;
    const REAL one = 1, zero = 0;
    const int proj = M != NULL;
    for (int t = 0; t < T; t++) {
        const int n = bs[t];
        if (n <= 0) continue;
        REAL *z = Z + (size_t)t * B * GH;
        REAL *r = Rr + (size_t)t * B * GH;
        const REAL *hp = Hs + (size_t)t * B * R;
        REAL *hn = Hs + (size_t)(t + 1) * B * R;
        const REAL *cp = Cs + (size_t)t * B * H;
        REAL *cn = Cs + (size_t)(t + 1) * B * H;
        REAL *out = proj ? M + (size_t)t * B * H : hn;
        gemm("T", "N", &GH, &n, &R, &one, Whh, &R, hp, &R, &zero, r, &GH);
        for (int b = 0; b < n; b++) {
            DISPATCH_SFX(ln_fwd_row_SFX, z + (size_t)b * GH, r + (size_t)b * GH, cp + (size_t)b * H,
                         cn + (size_t)b * H, out + (size_t)b * H, wci, wcf, wco, lwh, bhh, lwc, lbc, (REAL)eps);
        }
        if (proj) gemm("T", "N", &R, &n, &H, &one, Whr, &H, out, &H, &zero, hn, &R);
    }
}

/* As lstm_backward, plus dR (T,B,GH) out: the gradient before the recurrent layer norm (what W_hh sees). */
void lstm_ln_backward_SFX(int T, int B, int H, int R, int coupled, int peep, const int *bs, const REAL *Z,
                          const REAL *Rr, const REAL *Cs, REAL *DH, REAL *DM, REAL *dZ, REAL *dR, REAL *DC,
                          REAL *dh0, const REAL *Whh, const REAL *Whr, const REAL *wci, const REAL *wcf,
                          const REAL *wco, const REAL *lwh, const REAL *lwc, const REAL *lbc, double eps,
                          gemm_SFX gemm) {
    const int GH = (coupled ? 3 : 4) * H;
    const REAL one = 1, zero = 0;
    const int proj = DM != NULL;
    for (int t = T - 1; t >= 0; t--) {
        const int n = bs[t];
        if (n <= 0) continue;
        REAL *dh = DH + (size_t)t * B * R;
        REAL *dm = proj ? DM + (size_t)t * B * H : dh;
        if (proj) gemm("N", "N", &H, &n, &R, &one, Whr, &H, dh, &R, &zero, dm, &H);
        const REAL *z = Z + (size_t)t * B * GH;
        const REAL *r = Rr + (size_t)t * B * GH;
        const REAL *cp = Cs + (size_t)t * B * H;
        const REAL *cn = Cs + (size_t)(t + 1) * B * H;
        REAL *dz = dZ + (size_t)t * B * GH;
        REAL *dr = dR + (size_t)t * B * GH;
        for (int b = 0; b < n; b++) {
            DISPATCH_SFX(ln_bwd_row_SFX, z + (size_t)b * GH, r + (size_t)b * GH, cp + (size_t)b * H,
                         cn + (size_t)b * H, dm + (size_t)b * H, DC + (size_t)b * H, dz + (size_t)b * GH,
                         dr + (size_t)b * GH, wci, wcf, wco, lwh, lwc, lbc, (REAL)eps);
        }
        REAL *target = t > 0 ? DH + (size_t)(t - 1) * B * R : dh0;
        const REAL *beta = t > 0 ? &one : &zero;
        if (target) gemm("N", "N", &R, &n, &GH, &one, Whh, &R, dr, &GH, beta, target, &R);
    }
}
