/* graphc's own float32 math functions for native kernels (backends/numpy/cmath.py says
   why). Each is static inline and branch-free: every lane of a vector does the same
   work, so a loop calling one vectorizes under `omp simd` once it is inlined, and no
   input takes a slower path than another. No function multiplies or divides with a
   subnormal operand or result: x86 finishes those in microcode, about 15x slower per
   vector instruction (adds and int<->float conversions are not affected). Subnormal
   results are built as integers; subnormal inputs are read through their bits. */

static inline float gc_bits_float(int32_t i) {  /* a float from its bits */
  float f;
  __builtin_memcpy(&f, &i, sizeof f);
  return f;
}
static inline int32_t gc_float_bits(float f) {  /* a float's bits */
  int32_t i;
  __builtin_memcpy(&i, &f, sizeof i);
  return i;
}

/* a*b+c. With FMA (x86-64-v3, native) one rounding and one instruction; graphc builds
   with -std=c11, which turns contraction off, so it is asked for explicitly. Without FMA
   (x86-64, -v2) __builtin_fmaf would be a libm call, so plain a*b+c there (no exactness
   below relies on the fma; the errors are a little larger and were measured less). */
static inline float gc_fmaf(float a, float b, float c) {
#ifdef __FMA__
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}
static inline double gc_fma(double a, double b, double c) {  /* the same in double */
#ifdef __FMA__
  return __builtin_fma(a, b, c);
#else
  return a * b + c;
#endif
}
static inline double gc_bits_double(int64_t i) {  /* a double from its bits */
  double d;
  __builtin_memcpy(&d, &i, sizeof d);
  return d;
}
static inline int64_t gc_double_bits(double d) {  /* a double's bits */
  int64_t i;
  __builtin_memcpy(&i, &d, sizeof i);
  return i;
}

/* ---- exp ----------------------------------------------------------------------------
   n = round(x / ln 2) by the 1.5 * 2**23 trick (rintf does not vectorize on plain
   x86-64); r = x - n ln 2 with ln 2 split in two (Cody and Waite), n * C1 exact;
   exp(r) on [-ln 2 / 2, ln 2 / 2] as 1 + r + r**2 P(r), P of degree 5 (the Cephes
   library's published coefficients); 2**n added to the exponent field. Above
   88.7228 the result is inf, at -104 and below 0 (exp(-104) is under half the
   smallest subnormal), NaN gives NaN, as numpy. */
/* exp(x) = exp(r) * 2**n for finite |x| <= 104: returns exp(r), in [0.707, 1.415], and
   sets *n */
static inline float gc_exp_reduced(float x, float *n_out) {
  const float shift = 12582912.0f;  /* 1.5 * 2**23: adding it rounds to an integer */
  const float n = gc_fmaf(x, 1.44269504088896341f, shift) - shift;
  float r = gc_fmaf(n, -0.693359375f, x);  /* ln 2 = C1 + C2, n * C1 exact */
  r = gc_fmaf(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = gc_fmaf(p, r, 1.3981999507e-3f);
  p = gc_fmaf(p, r, 8.3334519073e-3f);
  p = gc_fmaf(p, r, 4.1665795894e-2f);
  p = gc_fmaf(p, r, 1.6666665459e-1f);
  p = gc_fmaf(p, r, 5.0000001201e-1f);
  *n_out = n;
  return gc_fmaf(p, r * r, r) + 1.0f;
}

static inline float gc_expf(float x) {
  const float hi = 88.72283935546875f;
  /* |x| clamped to 104 (two bit operations and one select; NaN gives +-104, sent back
     at the end): k stays in [-150, 150], and past hi the result is replaced anyway */
  const float ax = __builtin_fabsf(x);
  const float xc = __builtin_copysignf(ax < 104.0f ? ax : 104.0f, x);
  float n;
  const float p = gc_exp_reduced(xc, &n);
  const int32_t k = (int32_t)n;  /* (unsigned bit arithmetic below: it wraps) */
  const uint32_t pb = (uint32_t)gc_float_bits(p);
  /* a normal result: k added to p's exponent field (k = 128 only with p < 1) */
  const float normal = gc_bits_float((int32_t)(pb + ((uint32_t)k << 23)));
  /* k <= -126: the result is v * 2**-149, v = p * 2**(k + 149) in [0.35, 2**23.5), and
     its bits are the integer round(v), to nearest even as every IEEE rounding (an
     integer of 2**23 or more is the bit pattern of a smallest normal, v * 2**-149
     again; v is whole there) */
  const float v = gc_bits_float((int32_t)(pb + ((uint32_t)(k + 149) << 23)));
  const float sub = gc_bits_float(__builtin_irintf(v));  /* cvtps2dq, an SSE2 instruction */
  const float y = k < -125 ? sub : normal;
  return x <= hi ? y : x + INFINITY;  /* overflow: inf; NaN: NaN */
}

/* ---- log, log1p, expm1 ------------------------------------------------------------
   Float arithmetic; the special cases folded in with OR/AND on the bits, integer min
   and maxps of two variables (on AVX2 each `c ? a : b` is a 3-uop blend), Estrin
   rather than Horner for the polynomials (the loops are latency-bound). */

/* f^2 P(f) with log1p(f) = f + f^2 P(f) for f in [sqrt(1/2)-1, sqrt(2)-1]:
   P(f) = -1/2 + f q(f), q a degree-6 minimax fit of (log1p(f) - f + f^2/2)/f^3 (Lawson
   iterations in float64 against mpmath, weighted by f^3/log1p(f) so that it bounds the
   relative error of log1p: 2^-24.9), coefficients rounded to float. Estrin's scheme:
   the dependency chain is 4 fma deep instead of 8. Returns the inner sum S, with
   f^2 P(f) = f^2 * S. */
static inline float gc_log_poly(float f, float f2) {
  const float f4 = f2 * f2;
  const float p01 = gc_fmaf(f, 3.333390951e-01f, -0.5f);
  const float p23 = gc_fmaf(f, 1.996306330e-01f, -2.500133812e-01f);
  const float p45 = gc_fmaf(f, 1.491476893e-01f, -1.657758504e-01f);
  const float p67 = gc_fmaf(f, 8.700434864e-02f, -1.426748633e-01f);
  return gc_fmaf(f4, gc_fmaf(f2, p67, p45), gc_fmaf(f2, p23, p01));
}

#define GC_LN2F 0.693147182464599609375f  /* ln 2 rounded to float: k*GC_LN2F is off by
   |k| * 1.9e-9 at most, < 0.1 ulp of k ln 2, and the fma takes k*GC_LN2F unrounded */
#define GC_FLT_MAXF 3.40282346638528859812e+38f

/* log(x): x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1, log x = k ln2 + log1p(f).
   k and m come from the bits: subtracting sqrt(1/2)'s bits (0x3f3504f3) borrows from the
   exponent exactly when the significand is below sqrt(1/2)'s, so k = (bits - C) >> 23
   (arithmetic shift, as gcc defines it) and m's bits are ((bits - C) & 0x7fffff) + C;
   f = m - 1 is exact (Sterbenz).
   Subnormal x (bits i < 2^23) is i * 2^-149: the integer i converted to float is a normal
   float with the same significand (exact below 2^24), and its bits minus 149 << 23 are
   x's bits "with a negative exponent field", which the same k/m extraction reads right.
   No multiply by 2^23.
   Rounding: y = fma(k, ln2, f + f^2 S): f + f^2 S rounds once (the cancelling cases, e.g.
   x just below sqrt(1/2), are where this counts) and the fma once: max 1.21 ulp measured.
   Specials, as numpy, all folded into the float k (computed beside the polynomial, so
   they cost no latency): +inf/nan: max(k, x - FLT_MAX) is +inf/nan there and k elsewhere
   (x - FLT_MAX <= 0 < k for x >= 2^103, and = -FLT_MAX below); +-0: k + -inf; x < 0 (not
   -0), -inf, -nan: the bits of k or-ed with all ones, a nan. The polynomial's f is always
   in range, so y = fma(k, ln2, finite) is k's inf/nan. */
static inline float gc_logf(float x) {
  const int32_t ix = gc_float_bits(x);
  const int32_t m = x < 1.17549435e-38f ? -1 : 0;  /* subnormal, zero or negative */
  const int32_t is = (int32_t)((uint32_t)gc_float_bits((float)ix) - (149u << 23));
  const int32_t u = (int32_t)((uint32_t)((ix & ~m) | (is & m)) - 0x3f3504f3u);
  float k = (float)(u >> 23);
  const float g = x - GC_FLT_MAXF;
  k = k > g ? k : g;                                     /* +inf, nan */
  k = k + (x == 0.0f ? -INFINITY : 0.0f);                /* +-0 */
  k = gc_bits_float(gc_float_bits(k) | (x < 0.0f ? -1 : 0));  /* negative: nan */
  const float f = gc_bits_float((u & 0x007fffff) + 0x3f3504f3) - 1.0f;
  const float f2 = f * f;
  return gc_fmaf(k, GC_LN2F, gc_fmaf(f2, gc_log_poly(f, f2), f));
}

/* log1p(x) = log(u) + log1p(c/u), u = fl(1 + x), c = (1 + x) - u exactly (TwoSum: no
   compare needed), log1p(c/u) ~ c/u (|c/u| <= 2^-24: the dropped square is far below an
   ulp). u = 2^k (1 + f) as in gc_logf; u >= 2^-24 for x > -1, never subnormal. The
   division is one instruction, off the critical path; u + 2^-30 keeps it finite at
   x = -1 (u = 0, c = 0) and changes nothing where c != 0 (there u >= 1/2). For x >= 2^25
   c is dropped (|c/u| < 2^-25 against a result >= 17; it also avoids inf - inf at
   x = inf). The result is fma(k, ln2, f + (f^2 S + c/u)): max 1.20 ulp measured.
   |x| < 2^-24 (zeros and subnormals included): log1p(x) rounds to x; such lanes run as
   +0 (result +0) and x's bits are or-ed back in at the end (so -0 stays -0).
   Specials folded into k as in gc_logf: +inf/nan -> max with x - FLT_MAX; x = -1 -> -inf;
   x < -1 (and -inf) -> nan. */
static inline float gc_log1pf(float x) {
  const int32_t ix = gc_float_bits(x);
  const int32_t mt = (int32_t)((uint32_t)(ix & 0x7fffffff) - 0x33800000u) >> 31;  /* tiny */
  const float xc = gc_bits_float(ix & ~mt);
  const float u = 1.0f + xc;
  const float bv = u - 1.0f, av = u - bv;
  float c = (1.0f - av) + (xc - bv);
  c = xc < 33554432.0f ? c : 0.0f;
  const float cu = c / (u + 9.31322574615478515625e-10f);
  const int32_t d = (int32_t)((uint32_t)gc_float_bits(u) - 0x3f3504f3u);
  float k = (float)(d >> 23);
  const float g = x - GC_FLT_MAXF;
  k = k > g ? k : g;                                     /* +inf, nan */
  k = k + (x == -1.0f ? -INFINITY : 0.0f);               /* -1 */
  k = gc_bits_float(gc_float_bits(k) | (x < -1.0f ? -1 : 0));  /* < -1: nan */
  const float f = gc_bits_float((d & 0x007fffff) + 0x3f3504f3) - 1.0f;
  const float f2 = f * f;
  const float y = gc_fmaf(k, GC_LN2F, f + gc_fmaf(f2, gc_log_poly(f, f2), cu));
  return gc_bits_float(gc_float_bits(y) | (ix & mt));
}

/* expm1(x) = 2^n (1 + expm1(r)) - 1, n = round(x / ln2) (the 1.5 * 2^23 add), x =
   n ln2 + r + rl: r = x - n LN2_HI is exact (LN2_HI = 0x3f317200 has 15 significant bits,
   |n| <= 128), rl = -n LN2_LO. expm1(r + rl) = r + E, E = E0 + rl (1 + r + E0), E0 =
   r^2 P(r), P(r) = 1/2 + r q(r), q a degree-4 minimax fit of (expm1(r) - r - r^2/2)/r^3
   on |r| <= 0.3468 (Lawson, float64 vs mpmath, relative error of expm1 2^-31.3), Estrin.
   The result is 2 * (sh E + (sh r + (sh - 1/2))) with sh = 2^(n-1) from the bits: r is
   never rounded into E (that rounding, doubled by 2^n against a result near 2^n - 1 for
   n = +-1, gave 2 ulp), sh - 1/2 is exact for -22 <= n <= 24, and the halved scale keeps
   sh finite at n = 128; the final *2 is exact, or overflows to inf exactly when the true
   result rounds to inf. Max 1.11 ulp measured.
   Range: x is clamped to [-17.5, 88.75] on its bits (an unsigned int min bounds the
   negatives' magnitude, a signed one the positives): above 88.7228 the computation
   overflows to inf by itself (so +inf -> inf), below -17.33 it rounds to -1 by itself
   (-inf -> -1). |x| < 2^-24 (zeros, subnormals): expm1(x) rounds to x; run as +0 and x's
   bits or-ed back. nan: or-ed with all ones. */
static inline float gc_expm1f(float x) {
  const int32_t ix = gc_float_bits(x);
  const uint32_t lo = (uint32_t)ix < 0xc18c0000u ? (uint32_t)ix : 0xc18c0000u;  /* -17.5 */
  const int32_t cl = (int32_t)lo < 0x42b18000 ? (int32_t)lo : 0x42b18000;       /* 88.75 */
  const int32_t mt = (int32_t)((uint32_t)(ix & 0x7fffffff) - 0x33800000u) >> 31;  /* tiny */
  const float xc = gc_bits_float(cl & ~mt);
  const float shift = 12582912.0f;  /* 1.5 * 2**23: adding it rounds to an integer */
  const float t = gc_fmaf(xc, 1.44269504088896341f, shift);
  const float n = t - shift;                                   /* in [-25, 128] */
  const float r = gc_fmaf(n, -0.693145751953125f, xc);         /* exact */
  const float rl = n * -1.428606765330187e-06f;
  const float r2 = r * r, r4 = r2 * r2;
  const float pa = gc_fmaf(r, 1.666666567e-01f, 0.5f);
  const float pb = gc_fmaf(r, 8.333419450e-03f, 4.166648164e-02f);
  const float pc = gc_fmaf(r, 1.982410613e-04f, 1.393330283e-03f);
  const float e0 = r2 * gc_fmaf(r4, pc, gc_fmaf(r2, pb, pa));  /* expm1(r) - r */
  const float e = e0 + gc_fmaf(rl, r + e0, rl);                /* expm1(r + rl) - r */
  /* t's bits are 0x4b400000 + n: 2^(n-1)'s bits are (n + 126) << 23 */
  const float sh = gc_bits_float((int32_t)(((uint32_t)gc_float_bits(t) - 0x4b400000u + 126u) << 23));
  const float y = 2.0f * gc_fmaf(sh, e, gc_fmaf(sh, r, sh - 0.5f));
  return gc_bits_float(gc_float_bits(y) | (ix & mt) | (x != x ? -1 : 0));
}

/* ---- tanh ---------------------------------------------------------------------------
   min(max(a, lo), hi) for a >= 0 (NaN, whose bits order above +inf, gives hi), on the
   bits as integers (nonnegative floats order like their bits). A float select would
   not do: gcc moves a multiply by a constant through a select, (c ? a : k) * b ->
   c ? a * b : k * b, and so multiplies the unclamped, maybe subnormal, value. */
static inline float gc_clamp_pos(float a, float lo, float hi) {
  int32_t i = gc_float_bits(a);
  const int32_t l = gc_float_bits(lo), h = gc_float_bits(hi);
  i = i < l ? l : i;
  i = i > h ? h : i;
  return gc_bits_float(i);
}

/* tanh(x), odd: computed on a = |x|, x's sign bit put back (-0 gives -0).
   a < 2^-12: tanh(x) = x (the x^3/3 term is under half an ulp): x itself, no multiply,
   so a subnormal x costs nothing. a < 0.625: a + a u Q(u), u = a^2 >= 2^-24, Q of
   degree 4 fitted to (tanh(a)/a - 1)/u (relative error 2^-27.8, Lawson-weighted least
   squares on Chebyshev nodes in float64). 0.625 <= a: 1 - 2e/(1 + e), e = exp(-2a) with
   a clamped to 9.1 (tanh rounds to 1 from 9.01 on), so e >= 1.2e-8 stays normal and
   inf gives 1. NaN is selected back at the end (the clamps send it to finite values).
   Max 1.39 ulp measured. */
static inline float gc_tanhf(float x) {
  const int32_t ix = gc_float_bits(x);
  const int32_t sign = ix & (int32_t)0x80000000u;
  const float a = gc_bits_float(ix & 0x7fffffff);
  const float as = gc_clamp_pos(a, 0x1p-12f, 0.625f);
  const float u = as * as;
  float q = -0.005704987198160687f;
  q = gc_fmaf(q, u, 0.020639087426741278f);
  q = gc_fmaf(q, u, -0.05373971514144993f);
  q = gc_fmaf(q, u, 0.1333144219885089f);
  q = gc_fmaf(q, u, -0.3333328194203847f);
  const float small = gc_fmaf(as, u * q, as);
  /* e = exp(-2a) with -2a in [-18.2, -1.25]: every value normal, so 2**n as a factor */
  float n;
  const float p = gc_exp_reduced(-2.0f * gc_clamp_pos(a, 0.625f, 9.1f), &n);
  const float e = p * gc_bits_float(((int32_t)n + 127) << 23);
  const float large = 1.0f - (2.0f * e) / (1.0f + e);
  float y = a < 0.625f ? small : large;
  y = a < 0x1p-12f ? a : y;
  y = x != x ? x : y;
  return gc_bits_float(gc_float_bits(y) | sign);
}

/* ---- sigmoid ------------------------------------------------------------------------
   1 / (1 + e) for x >= 0 and e / (1 + e) below, e = exp(-|x|) (never overflows): one
   float32 division, correctly rounded, so numpy's reference bit for bit given the same
   exp. Its operands and quotient are never subnormal (x86 divides those in microcode):
   where e < 2^-60 (x below -41.6), 1 + e rounds to 1 and the quotient is e itself, so e
   is taken as it is there (the subnormal ones below x = -87.3 included) and the
   division, whose result is not used, gets a normal numerator. (A double reciprocal and product, as cexpr.div's general division, gave the
   same bits at twice the instructions: the LSTM's cell is three sigmoids and two tanh.)
   One function, so that exp is written once per call site (three inlined copies slowed
   the C build). */
static inline float gc_sigmoidf(float x) {
  const float e = gc_expf(-__builtin_fabsf(x));
  const int tiny = e < 0x1p-60f;  /* 1 + e == 1 */
  const float num = x >= 0 ? 1.0f : (tiny ? 0x1p-60f : e);
  const float q = num / (1.0f + e);
  return x >= 0 ? q : (tiny ? e : q);
}

/* ---- erf ----------------------------------------------------------------------------
   erf(x), odd: computed on a = |x|, x's sign bit or-ed back (-0 gives -0). Three forms,
   all computed in every lane, one selected:
   - a subnormal: erf(a) = a 2/sqrt(pi) to far below an ulp, and a's bits are the integer
     i = a / 2^-149, so the result's bits are rint(i 2/sqrt(pi)): an int->float
     conversion, a product of normal floats and a float->int conversion, no subnormal
     arithmetic (a result of 2^23 or more is the bit pattern of a smallest normal, as in
     gc_expf). Other lanes run it on i = 0.
   - 2^-126 <= a < 1: a (c0 + u P(u)), u = a^2, P of degree 6 (Lawson-weighted minimax
     in float64 on Chebyshev nodes, relative error 2^-29.6). With FMA, c0 = 2/sqrt(pi)
     is split into hi = float(c0) and lo (P's constant term): fma(s, hi, s (lo + u P))
     rounds once where it counts; s = a 2^32 and the result times 2^-32, since for a
     near 2^-126 a lo would be subnormal and s lo is not (the final product is a normal
     float times a power of 2, exact). Without FMA, in double (below). u is taken from
     a clamped to 2^-40 (a subnormal square otherwise; below 2^-40, u P is 2^-80
     against lo, nothing).
   - 1 <= a: 1 - erfc(a), erfc(a) = 2^Q(a), Q of degree 6 in a - 1 fitted to log2 erfc
     weighted for the absolute error of erfc (2^-29.9, an ulp of the result is 2^-24),
     expanded at 1 so that its Horner terms do not cancel where erfc is large; 2^Q as
     2^n 2^f, |f| <= 1/2, 2^f of degree 6 (relative error 2^-29.0), 2^n as exponent
     bits (n in [-25, -3]). a is clamped to 3.95, where erf rounds to 1 (erfc < 2^-25),
     so +inf gives 1; NaN clamps to 3.95 too and is or-ed back to NaN at the end.
   Horner, not Estrin: these loops are throughput-bound (Estrin measured 4-7% slower).
   Max 1.28 ulp over every float32 with FMA, 1.19 without (x86-64). */
static inline float gc_erff(float x) {
  const int32_t ix = gc_float_bits(x);
  const int32_t iax = ix & 0x7fffffff;
  const float a = gc_bits_float(iax);
  const int32_t msub = (iax - 0x00800000) >> 31;  /* subnormal or zero: all ones */
  const float sub = gc_bits_float(__builtin_irintf((float)(iax & msub) * 1.12837916709551257f));
  /* a < 1 (NaN and a >= 1 clamp to 1: a finite dummy) */
  const float ap = gc_clamp_pos(a, 0x1p-126f, 1.0f);
  const float aq = gc_clamp_pos(a, 0x1p-40f, 1.0f);
  const float u = aq * aq;
  float p = 7.853883488756624e-05f;
  p = gc_fmaf(p, u, -0.0008010200884887742f);
  p = gc_fmaf(p, u, 0.005188328603167553f);
  p = gc_fmaf(p, u, -0.026853812493188276f);
  p = gc_fmaf(p, u, 0.11283585165162442f);
  p = gc_fmaf(p, u, -0.37612625826347224f);
#ifdef __FMA__
  p = gc_fmaf(p, u, 5.92058810866547e-08f);  /* lo = 2/sqrt(pi) - hi */
  const float s = ap * 0x1p32f;
  const float mid = gc_fmaf(s, 1.1283791065216064f, s * p) * 0x1p-32f;
#else
  /* without FMA s hi would be rounded by itself, up to an ulp of the result near a = 1
     (s hi ~ 1.13 s, the result ~ 0.84 s; 2.32 ulp measured): a (2/sqrt(pi) + u P) in
     double instead, a normal float converted, rounded once */
  const float mid = (float)((double)ap * (1.1283791670955126 + (double)(p * u)));
#endif
  /* 1 <= a */
  const float d = gc_clamp_pos(a, 1.0f, 3.95f) - 1.0f;
  float q = 0.00026772670173836607f;
  q = gc_fmaf(q, d, -0.0026345966478432074f);
  q = gc_fmaf(q, d, 0.014269540764584816f);
  q = gc_fmaf(q, d, -0.059872837160875145f);
  q = gc_fmaf(q, d, -1.2163626428439565f);
  q = gc_fmaf(q, d, -3.8072243384129876f);
  q = gc_fmaf(q, d, -2.668416706227442f);       /* in [-24.9, -2.67] */
  const float shift = 12582912.0f;  /* 1.5 * 2**23: adding it rounds to an integer */
  const float t = q + shift;        /* its bits are 0x4b400000 + n */
  const float f = q - (t - shift);
  float e = 0.00015353361912174313f;
  e = gc_fmaf(e, f, 0.0013398874414104413f);
  e = gc_fmaf(e, f, 0.009618437357660617f);
  e = gc_fmaf(e, f, 0.05550332471125908f);
  e = gc_fmaf(e, f, 0.24022647913629017f);
  e = gc_fmaf(e, f, 0.6931472028550669f);
  e = gc_fmaf(e, f, 1.0f);
  const float scale = gc_bits_float((int32_t)(((uint32_t)gc_float_bits(t) << 23)
                                              + (127u << 23) - (0x4b400000u << 23)));
  const float big = gc_fmaf(-e, scale, 1.0f);
  const float y = a < 1.0f ? mid : big;
  /* (a subnormal's lane: the other forms' bits cleared, sub's or-ed in; sub is +0
     elsewhere) */
  return gc_bits_float((gc_float_bits(y) & ~msub) | gc_float_bits(sub)
                       | (ix & (int32_t)0x80000000u) | (x != x ? -1 : 0));
}

/* ---- pow ----------------------------------------------------------------------------
   pow(x, y) = 2^(y log2|x|), computed in double, where float32's 24 bits are easy:
   where the result is neither 0 nor inf, |t| = |y log2|x|| <= 150, and t's absolute
   error stays below 2^-28 (0.03 ulp of the result), so the double result rounded once to
   float is within 0.53 ulp (measured; numpy's powf: 0.5). Numpy's (C99's) special cases
   are folded in with bit operations at the end.
   - log2|x| = k + log2(1 + f), k and f as in gc_logf (a subnormal x read through its
     bits, never multiplied); +inf and NaN folded into k by a max, 0 by adding -inf, so
     that l = k + f Q(f) is -inf, +inf or NaN there. Q of degree 12 fitted to
     log2(1 + f)/f on [sqrt(1/2) - 1, sqrt(2) - 1] (relative error 2^-35.8), in Estrin's
     form: this chain, unlike erf's, is latency-bound (Horner measured up to 25% slower).
     No division: f/(2 + f) and a shorter series would need a vdivpd, which costs more
     than the extra fmas.
   - t = y l: a subnormal y (which cvtps2pd would convert in microcode) runs as +-2^-126,
     which gives the same result (|t| <= 2^-118 for finite x: 1) and keeps 0 * inf out
     (x = 0 or inf). t is clamped to [-160, 130] (0 and inf beyond; NaN passes).
   - 2^t = 2^n 2^r, n = round(t) by the 1.5 * 2^52 add, |r| <= 1/2, 2^r = 1 + r P(r) of
     degree 6 (relative error 2^-28.9; 1 at r = 0, so exact powers of 2 stay exact and
     2^-150 rounds to 0 as numpy's does), 2^n from n's bits (n + 1023 in [863, 1153]).
     The double result converts to float once (cvtpd2ps rounds a subnormal float result
     correctly, at full speed).
   - then: x < 0 and y an odd integer: the sign bit; x < 0 finite and y not an integer:
     NaN; y = +-0, x = 1, or x = -1 with y = +-inf: 1 (even for NaN). |y| >= 2^24 is an
     even integer; below, y is whole when (float)(int)y == y, odd by the int's last bit.
   Max 0.53 ulp measured on every target (double arithmetic: FMA or not changes
   nothing measurable). */
static inline float gc_powf(float x, float y) {
  const int32_t ix = gc_float_bits(x), iy = gc_float_bits(y);
  const int32_t iax = ix & 0x7fffffff, iay = iy & 0x7fffffff;
  const float ax = gc_bits_float(iax), ay = gc_bits_float(iay);
  /* log2|x| = k + log2(1 + f) */
  const int32_t msub = (iax - 0x00800000) >> 31;  /* subnormal or zero */
  const int32_t is = (int32_t)((uint32_t)gc_float_bits((float)iax) - (149u << 23));
  const int32_t u = (int32_t)((uint32_t)((iax & ~msub) | (is & msub)) - 0x3f3504f3u);
  float k = (float)(u >> 23);
  const float g = ax - GC_FLT_MAXF;
  k = k > g ? k : g;                                 /* +inf, nan */
  k = k + (ax == 0.0f ? -INFINITY : 0.0f);           /* +-0 */
  const double f = (double)(gc_bits_float((u & 0x007fffff) + 0x3f3504f3) - 1.0f);
  const double f2 = f * f, f4 = f2 * f2, f8 = f4 * f4;
  const double q01 = gc_fma(f, -0x1.715476565d232p-1, 0x1.71547652a1e9bp+0);
  const double q23 = gc_fma(f, -0x1.71547097b7539p-2, 0x1.ec709ebb93dafp-2);
  const double q45 = gc_fma(f, -0x1.ec72b58d069b9p-3, 0x1.277651fc535cap-2);
  const double q67 = gc_fma(f, -0x1.714171a331ffep-3, 0x1.a63f445808065p-3);
  const double q89 = gc_fma(f, -0x1.252f3139dc677p-3, 0x1.45291a3653b3ap-3);
  const double qab = gc_fma(f, -0x1.24890649d4c41p-3, 0x1.2871d9c18cfb5p-3);
  const double q07 = gc_fma(f4, gc_fma(f2, q67, q45), gc_fma(f2, q23, q01));
  const double q8c = gc_fma(f4, 0x1.3ce8f6f6dfefep-4, gc_fma(f2, qab, q89));
  const double l = gc_fma(f, gc_fma(f8, q8c, q07), (double)k);
  /* t = y log2|x| */
  const float yc = gc_bits_float(iy | (((iay - 0x00800000) >> 31) & 0x00800000));
  double t = (double)yc * l;
  t = t > 130.0 ? 130.0 : t;
  t = t < -160.0 ? -160.0 : t;
  /* 2^t */
  const double shift = 0x1.8p52;   /* 1.5 * 2**52: adding it rounds to an integer */
  const double tn = t + shift;     /* its low bits are n's */
  const double r = t - (tn - shift);
  double p = gc_fma(r, 0x1.41fbbbf04a4bfp-13, 0x1.5f3e52f6ff327p-10);
  p = gc_fma(p, r, 0x1.3b2d4cf1e2f43p-7);
  p = gc_fma(p, r, 0x1.c6aee88e88213p-5);
  p = gc_fma(p, r, 0x1.ebfbdc3c304ffp-3);
  p = gc_fma(p, r, 0x1.62e430af271c8p-1);
  p = gc_fma(p, r, 1.0);
  const double scale = gc_bits_double((int64_t)(((uint64_t)gc_double_bits(tn) + 1023u) << 52));
  int32_t res = gc_float_bits((float)(p * scale));
  /* y: an integer? odd? (NaN clamps to 2^24 and is neither; inf is even) */
  const int32_t yi = (int32_t)gc_clamp_pos(ay, 0.0f, 0x1p24f);
  const int32_t ybig = -(ay >= 0x1p24f);
  const int32_t ywhole = -((float)yi == ay);
  res ^= ywhole & (yi << 31) & ix;                   /* x < 0, y odd: the sign */
  res |= -((x < 0.0f) & (ax != INFINITY)) & ~(ybig | ywhole);  /* nan */
  const int32_t one = -((ay == 0.0f) | (x == 1.0f) | ((x == -1.0f) & (ay == INFINITY)));
  return gc_bits_float((res & ~one) | (0x3f800000 & one));
}

/* ---- sin, cos -----------------------------------------------------------------------
   Reduced modulo pi in every lane, for the whole float range, exactly: x = m 2^(e-150)
   (m the 24-bit integer significand, e the exponent field), so x/pi = m V(e) modulo 2
   with V(e) = 2^(e-150)/pi mod 2 (a multiple of 2 in V times the integer m changes
   nothing). gc_inv_pi_hi/lo hold V(e) as two doubles (hi = V rounded, lo = V - hi
   rounded: 106 bits, from mpmath at 1000 bits; tests/test_cmath.py recomputes them),
   one entry per e in [115, 254], gathered per lane (vgatherdpd with AVX-512; gcc's
   generic tuning, x86-64-v3, emulates gathers with scalar loads, which still
   vectorizes the loop).
   With FMA: n = round(m hi) (the fma and the 1.5 * 2^52 add), and
   r = fma(m, lo, fma(m, hi, -n)): m hi - n is exact (a multiple of hi's last bit of
   magnitude <= 1/2 fits 53 bits), so r = x/pi - n with an absolute error near 2^-80,
   and the float32 x nearest a multiple of pi/2 (x = 16367173 2^72: r = 2^-30.9) keeps
   about 50 bits. Without FMA hi is split into its top 29 bits and the other 24, so
   that both products with m are exact, and summed in the order that keeps them so.
   Then sin(x) = (-1)^n sin(pi r), pi r in [-pi/2, pi/2] rounded to float, and one odd
   polynomial: sin s = s + s z P(z), z = s^2, P of degree 3 (Lawson-weighted minimax in
   float64 on Chebyshev nodes of [0, pi/2 (1 + 2^-20)], relative error 2^-27.3). cos is
   the same with x/pi + 1/2. (A reduction modulo pi/2 would need both a sin and a cos
   polynomial and a select per lane; the polynomial in double ran 20% slower with
   AVX-512.)
   Specials: |x| < 2^-12 (zeros, subnormals) gives x for sin (exact: x^3/6 is below half
   an ulp) and 1 for cos; those lanes compute on the table's first entry (e clamped to
   115, so that no float is ever subnormal) and are replaced with bit operations; inf
   and NaN clamp to e = 254 and are or-ed to NaN. The loads are unconditional (the index
   clamped, not selected): with a selected index gcc makes them masked loads, which its
   emulated gathers (AVX2, x86-64) cannot do, and the loop then does not vectorize.
   Max over every float32: 1.79 ulp (sin and cos) with FMA, 2.03 without. */
static const double gc_inv_pi_hi[140] = {
  0x1.45f306dc9c883p-37, 0x1.45f306dc9c883p-36, 0x1.45f306dc9c883p-35,
  0x1.45f306dc9c883p-34, 0x1.45f306dc9c883p-33, 0x1.45f306dc9c883p-32,
  0x1.45f306dc9c883p-31, 0x1.45f306dc9c883p-30, 0x1.45f306dc9c883p-29,
  0x1.45f306dc9c883p-28, 0x1.45f306dc9c883p-27, 0x1.45f306dc9c883p-26,
  0x1.45f306dc9c883p-25, 0x1.45f306dc9c883p-24, 0x1.45f306dc9c883p-23,
  0x1.45f306dc9c883p-22, 0x1.45f306dc9c883p-21, 0x1.45f306dc9c883p-20,
  0x1.45f306dc9c883p-19, 0x1.45f306dc9c883p-18, 0x1.45f306dc9c883p-17,
  0x1.45f306dc9c883p-16, 0x1.45f306dc9c883p-15, 0x1.45f306dc9c883p-14,
  0x1.45f306dc9c883p-13, 0x1.45f306dc9c883p-12, 0x1.45f306dc9c883p-11,
  0x1.45f306dc9c883p-10, 0x1.45f306dc9c883p-9, 0x1.45f306dc9c883p-8,
  0x1.45f306dc9c883p-7, 0x1.45f306dc9c883p-6, 0x1.45f306dc9c883p-5,
  0x1.45f306dc9c883p-4, 0x1.45f306dc9c883p-3, 0x1.45f306dc9c883p-2,
  0x1.45f306dc9c883p-1, 0x1.45f306dc9c883p+0, 0x1.17cc1b727220bp-1,
  0x1.17cc1b727220bp+0, 0x1.7cc1b727220a9p-3, 0x1.7cc1b727220a9p-2,
  0x1.7cc1b727220a9p-1, 0x1.7cc1b727220a9p+0, 0x1.f306dc9c882a5p-1,
  0x1.f306dc9c882a5p+0, 0x1.e60db9391054ap+0, 0x1.cc1b727220a95p+0,
  0x1.9836e4e44152ap+0, 0x1.306dc9c882a54p+0, 0x1.836e4e44152a0p-2,
  0x1.836e4e44152a0p-1, 0x1.836e4e44152a0p+0, 0x1.06dc9c882a540p+0,
  0x1.b727220a94fe1p-5, 0x1.b727220a94fe1p-4, 0x1.b727220a94fe1p-3,
  0x1.b727220a94fe1p-2, 0x1.b727220a94fe1p-1, 0x1.b727220a94fe1p+0,
  0x1.6e4e441529fc2p+0, 0x1.b9391054a7f0ap-1, 0x1.b9391054a7f0ap+0,
  0x1.727220a94fe14p+0, 0x1.c9c882a53f84fp-1, 0x1.c9c882a53f84fp+0,
  0x1.9391054a7f09dp+0, 0x1.27220a94fe13bp+0, 0x1.391054a7f09d6p-2,
  0x1.391054a7f09d6p-1, 0x1.391054a7f09d6p+0, 0x1.c882a53f84eb0p-2,
  0x1.c882a53f84eb0p-1, 0x1.c882a53f84eb0p+0, 0x1.91054a7f09d5fp+0,
  0x1.220a94fe13abfp+0, 0x1.1054a7f09d5f4p-2, 0x1.1054a7f09d5f4p-1,
  0x1.1054a7f09d5f4p+0, 0x1.054a7f09d5f48p-3, 0x1.054a7f09d5f48p-2,
  0x1.054a7f09d5f48p-1, 0x1.054a7f09d5f48p+0, 0x1.529fc2757d1f5p-5,
  0x1.529fc2757d1f5p-4, 0x1.529fc2757d1f5p-3, 0x1.529fc2757d1f5p-2,
  0x1.529fc2757d1f5p-1, 0x1.529fc2757d1f5p+0, 0x1.4a7f09d5f47d5p-1,
  0x1.4a7f09d5f47d5p+0, 0x1.29fc2757d1f53p-1, 0x1.29fc2757d1f53p+0,
  0x1.4fe13abe8fa9ap-2, 0x1.4fe13abe8fa9ap-1, 0x1.4fe13abe8fa9ap+0,
  0x1.3f84eafa3ea6ap-1, 0x1.3f84eafa3ea6ap+0, 0x1.fc2757d1f534ep-2,
  0x1.fc2757d1f534ep-1, 0x1.fc2757d1f534ep+0, 0x1.f84eafa3ea69cp+0,
  0x1.f09d5f47d4d37p+0, 0x1.e13abe8fa9a6fp+0, 0x1.c2757d1f534dep+0,
  0x1.84eafa3ea69bcp+0, 0x1.09d5f47d4d377p+0, 0x1.3abe8fa9a6ee0p-4,
  0x1.3abe8fa9a6ee0p-3, 0x1.3abe8fa9a6ee0p-2, 0x1.3abe8fa9a6ee0p-1,
  0x1.3abe8fa9a6ee0p+0, 0x1.d5f47d4d37703p-2, 0x1.d5f47d4d37703p-1,
  0x1.d5f47d4d37703p+0, 0x1.abe8fa9a6ee07p+0, 0x1.57d1f534ddc0ep+0,
  0x1.5f47d4d377037p-1, 0x1.5f47d4d377037p+0, 0x1.7d1f534ddc0dbp-1,
  0x1.7d1f534ddc0dbp+0, 0x1.f47d4d377036ep-1, 0x1.f47d4d377036ep+0,
  0x1.e8fa9a6ee06dbp+0, 0x1.d1f534ddc0db6p+0, 0x1.a3ea69bb81b6cp+0,
  0x1.47d4d377036d9p+0, 0x1.1f534ddc0db63p-1, 0x1.1f534ddc0db63p+0,
  0x1.f534ddc0db629p-3, 0x1.f534ddc0db629p-2, 0x1.f534ddc0db629p-1,
  0x1.f534ddc0db629p+0, 0x1.ea69bb81b6c53p+0, 0x1.d4d377036d8a5p+0,
  0x1.a9a6ee06db14bp+0, 0x1.534ddc0db6296p+0, 0x1.4d377036d8a56p-1,
  0x1.4d377036d8a56p+0, 0x1.34ddc0db6295ap-1,
};
static const double gc_inv_pi_lo[140] = {
  -0x1.6b01ec5417056p-91, -0x1.6b01ec5417056p-90, -0x1.6b01ec5417056p-89,
  -0x1.6b01ec5417056p-88, -0x1.6b01ec5417056p-87, -0x1.6b01ec5417056p-86,
  -0x1.6b01ec5417056p-85, -0x1.6b01ec5417056p-84, -0x1.6b01ec5417056p-83,
  -0x1.6b01ec5417056p-82, -0x1.6b01ec5417056p-81, -0x1.6b01ec5417056p-80,
  -0x1.6b01ec5417056p-79, -0x1.6b01ec5417056p-78, -0x1.6b01ec5417056p-77,
  -0x1.6b01ec5417056p-76, -0x1.6b01ec5417056p-75, -0x1.6b01ec5417056p-74,
  -0x1.6b01ec5417056p-73, -0x1.6b01ec5417056p-72, -0x1.6b01ec5417056p-71,
  -0x1.6b01ec5417056p-70, -0x1.6b01ec5417056p-69, -0x1.6b01ec5417056p-68,
  -0x1.6b01ec5417056p-67, -0x1.6b01ec5417056p-66, -0x1.6b01ec5417056p-65,
  -0x1.6b01ec5417056p-64, -0x1.6b01ec5417056p-63, -0x1.6b01ec5417056p-62,
  -0x1.6b01ec5417056p-61, -0x1.6b01ec5417056p-60, -0x1.6b01ec5417056p-59,
  -0x1.6b01ec5417056p-58, -0x1.6b01ec5417056p-57, -0x1.6b01ec5417056p-56,
  -0x1.6b01ec5417056p-55, -0x1.6b01ec5417056p-54, -0x1.ac07b1505c159p-55,
  -0x1.ac07b1505c159p-54, 0x1.3f84eafa3ea6ap-57, 0x1.3f84eafa3ea6ap-56,
  0x1.3f84eafa3ea6ap-55, 0x1.3f84eafa3ea6ap-54, 0x1.fc2757d1f534ep-56,
  0x1.fc2757d1f534ep-55, 0x1.fc2757d1f534ep-54, -0x1.ec54170565912p-60,
  -0x1.ec54170565912p-59, -0x1.ec54170565912p-58, -0x1.ec54170565912p-57,
  -0x1.ec54170565912p-56, -0x1.ec54170565912p-55, -0x1.ec54170565912p-54,
  0x1.d5f47d4d37703p-60, 0x1.d5f47d4d37703p-59, 0x1.d5f47d4d37703p-58,
  0x1.d5f47d4d37703p-57, 0x1.d5f47d4d37703p-56, 0x1.d5f47d4d37703p-55,
  0x1.d5f47d4d37703p-54, -0x1.505c1596447e5p-56, -0x1.505c1596447e5p-55,
  -0x1.505c1596447e5p-54, -0x1.4170565911f92p-55, -0x1.4170565911f92p-54,
  0x1.7d1f534ddc0dbp-54, -0x1.05c1596447e49p-54, -0x1.70565911f924fp-59,
  -0x1.70565911f924fp-58, -0x1.70565911f924fp-57, -0x1.70565911f924fp-56,
  -0x1.70565911f924fp-55, -0x1.70565911f924fp-54, 0x1.1f534ddc0db63p-54,
  -0x1.c1596447e493bp-54, 0x1.f534ddc0db629p-56, 0x1.f534ddc0db629p-55,
  0x1.f534ddc0db629p-54, -0x1.596447e493ad5p-58, -0x1.596447e493ad5p-57,
  -0x1.596447e493ad5p-56, -0x1.596447e493ad5p-55, 0x1.a6ee06db14acdp-60,
  0x1.a6ee06db14acdp-59, 0x1.a6ee06db14acdp-58, 0x1.a6ee06db14acdp-57,
  0x1.a6ee06db14acdp-56, 0x1.a6ee06db14acdp-55, -0x1.6447e493ad4cep-56,
  -0x1.6447e493ad4cep-55, 0x1.377036d8a5665p-55, 0x1.377036d8a5665p-54,
  0x1.bb81b6c52b328p-56, 0x1.bb81b6c52b328p-55, 0x1.bb81b6c52b328p-54,
  -0x1.11f924eb53362p-55, -0x1.11f924eb53362p-54, -0x1.1f924eb53361ep-57,
  -0x1.1f924eb53361ep-56, -0x1.1f924eb53361ep-55, -0x1.1f924eb53361ep-54,
  0x1.c0db6295993c4p-54, -0x1.f924eb53361dep-56, -0x1.f924eb53361dep-55,
  -0x1.f924eb53361dep-54, 0x1.b6c52b3278872p-59, 0x1.b6c52b3278872p-58,
  0x1.b6c52b3278872p-57, 0x1.b6c52b3278872p-56, 0x1.b6c52b3278872p-55,
  0x1.b6c52b3278872p-54, 0x1.b6295993c4390p-56, 0x1.b6295993c4390p-55,
  0x1.b6295993c4390p-54, -0x1.275a99b0ef1bfp-55, -0x1.275a99b0ef1bfp-54,
  -0x1.3ad4cd8778df8p-56, -0x1.3ad4cd8778df8p-55, 0x1.8a5664f10e410p-55,
  0x1.8a5664f10e410p-54, -0x1.d6a66c3bc6fbep-55, -0x1.d6a66c3bc6fbep-54,
  0x1.4acc9e21c8210p-56, 0x1.4acc9e21c8210p-55, 0x1.4acc9e21c8210p-54,
  -0x1.6a66c3bc6fbe0p-54, -0x1.a99b0ef1bef80p-55, -0x1.a99b0ef1bef80p-54,
  0x1.664f10e4107f9p-57, 0x1.664f10e4107f9p-56, 0x1.664f10e4107f9p-55,
  0x1.664f10e4107f9p-54, -0x1.3361de37df00dp-54, 0x1.993c439041fe5p-54,
  -0x1.9b0ef1bef806cp-55, -0x1.9b0ef1bef806cp-54, 0x1.93c439041fe51p-55,
  0x1.93c439041fe51p-54, -0x1.b0ef1bef806bap-55,
};

/* sin(pi (x/pi + half)) for |x|'s bits ix, before x's sign; half is 0 or 1/2 */
static inline float gc_sin_pi_reduced(int32_t ix, double half) {
  int32_t e = ix >> 23;
  e = e < 115 ? 115 : e;
  e = e > 254 ? 254 : e;
  const int64_t i = e - 115;   /* (a 64-bit index: gcc emulates the double gathers of
                                  AVX2 only for one) */
  const double m = (double)((ix & 0x007fffff) | 0x00800000);
  const double hi = gc_inv_pi_hi[i], lo = gc_inv_pi_lo[i];
  const double shift = 0x1.8p52;  /* 1.5 * 2**52: adding it rounds to an integer */
#ifdef __FMA__
  /* (for sin, fma(m, hi, shift): one rounding, to the nearest integer) */
  const double tn = half == 0.0 ? __builtin_fma(m, hi, shift) : __builtin_fma(m, hi, half) + shift;
  const double n = tn - shift;     /* tn's last bit is n's */
  const double r = __builtin_fma(m, lo, __builtin_fma(m, hi, half - n));
#else
  const double hh = gc_bits_double(gc_double_bits(hi) & (int64_t)0xffffffffff000000ull);
  const double p = m * hh, pl = m * (hi - hh);   /* both exact */
  const double tn = (p + (pl + half)) + shift;
  const double n = tn - shift;
  const double r = (((p - n) + half) + pl) + m * lo;
#endif
  const float s = (float)(r * 3.141592653589793);
  const float z = s * s;
  float q = gc_fmaf(z, 2.6057803097501164e-06f, -0.00019809602235909551f);
  q = gc_fmaf(q, z, 0.00833306647837162f);
  q = gc_fmaf(q, z, -0.16666659712791443f);
  const float v = gc_fmaf(s * z, q, s);
  return gc_bits_float(gc_float_bits(v) ^ ((int32_t)gc_double_bits(tn) << 31));
}

static inline float gc_sinf(float x) {
  const int32_t bx = gc_float_bits(x), ix = bx & 0x7fffffff;
  const int32_t tiny = (ix - 0x39800000) >> 31;      /* |x| < 2^-12: all ones */
  const int32_t bad = (0x7f7fffff - ix) >> 31;       /* inf, nan: all ones */
  const int32_t y = gc_float_bits(gc_sin_pi_reduced(ix, 0.0)) ^ (bx & (int32_t)0x80000000u);
  return gc_bits_float((y & ~tiny) | (bx & tiny) | bad);
}

static inline float gc_cosf(float x) {
  const int32_t ix = gc_float_bits(x) & 0x7fffffff;
  const int32_t tiny = (ix - 0x39800000) >> 31;
  const int32_t bad = (0x7f7fffff - ix) >> 31;
  const int32_t y = gc_float_bits(gc_sin_pi_reduced(ix, 0.5));
  return gc_bits_float((y & ~tiny) | (0x3f800000 & tiny) | bad);
}
