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
   1 / (1 + e) for x >= 0 and e / (1 + e) below, e = exp(-|x|) (never overflows), each
   quotient a double reciprocal and product rounded once, as graphc's float32 division
   (cexpr.div): numpy's reference bit for bit given the same exp. One function, so that
   exp is written once per call site (three inlined copies slowed the C build). */
static inline float gc_sigmoidf(float x) {
  const float e = gc_expf(-__builtin_fabsf(x));
  const double r = 1.0 / (double)(1.0f + e);
  return x >= 0 ? (float)r : (float)((double)e * r);
}
