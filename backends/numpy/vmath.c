/* graphc's own float32 math functions for native kernels (backends/numpy/cmath.py says
   why). Each is static inline and branch-free: every lane of a vector does the same
   work, so a loop calling one vectorizes under `omp simd` once it is inlined, and no
   input takes a slower path than another. No function multiplies or divides with a
   subnormal operand or result: x86 finishes those in microcode, about 15x slower per
   vector instruction (adds and int<->float conversions are not affected). Subnormal
   results are built as integers; subnormal inputs are read through their bits. */

#if defined(__FMA__)
#define GC_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))  /* one rounding, one instruction */
#define GC_FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
/* no FMA unit: fmaf would be a libm call, which does not vectorize */
#define GC_FMAF(a, b, c) ((a) * (b) + (c))
#define GC_FMA(a, b, c) ((a) * (b) + (c))
#endif

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

/* ---- exp ----------------------------------------------------------------------------
   n = round(x / ln 2) by the 1.5 * 2**23 trick (rintf does not vectorize on plain
   x86-64); r = x - n ln 2 with ln 2 split in two (Cody and Waite), n * C1 exact;
   exp(r) on [-ln 2 / 2, ln 2 / 2] as 1 + r + r**2 P(r), P of degree 5 (the Cephes
   library's published coefficients); 2**n added to the exponent field. Above
   88.7228 the result is inf, at -104 and below 0 (exp(-104) is under half the
   smallest subnormal), NaN gives NaN, as numpy. */
static inline float gc_expf(float x) {
  const float hi = 88.72283935546875f;
  /* |x| clamped to 104 (two bit operations and one select; NaN gives +-104, sent back
     at the end): k stays in [-150, 150], and past hi the result is replaced anyway */
  const float ax = __builtin_fabsf(x);
  const float xc = __builtin_copysignf(ax < 104.0f ? ax : 104.0f, x);
  const float shift = 12582912.0f;  /* 1.5 * 2**23: adding it rounds to an integer */
  const float n = GC_FMAF(xc, 1.44269504088896341f, shift) - shift;
  float r = GC_FMAF(n, -0.693359375f, xc);  /* ln 2 = C1 + C2, n * C1 exact */
  r = GC_FMAF(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = GC_FMAF(p, r, 1.3981999507e-3f);
  p = GC_FMAF(p, r, 8.3334519073e-3f);
  p = GC_FMAF(p, r, 4.1665795894e-2f);
  p = GC_FMAF(p, r, 1.6666665459e-1f);
  p = GC_FMAF(p, r, 5.0000001201e-1f);
  p = GC_FMAF(p, r * r, r) + 1.0f;  /* exp(r), in [0.707, 1.415] */
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
