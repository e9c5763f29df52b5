/* Max pooling and its two gradient ops, and the convolutions' column copies, for the
 * numpy backend, over NCHW planes.
 *
 * numpy has no loop for a window op: the reference implementations (graphc/ops/linalg.py)
 * build (N, C, Ho, Wo, kh, kw) views and reduce over them, which is slow for what is a
 * few compares per output. Here each window's max is found once, by the reference's
 * rule (torch's): scanning the window row-major, the first element greater than the
 * best so far, a NaN taken whenever seen, padding skipped. Each function does the
 * planes [p0, p1) of its arrays, so that threads can share the work.
 *
 *   max_pool2d:        y[i, j] = x[pick(i, j)]              (-inf for a window of padding)
 *   max_pool2d_grad:   dx = 0; dx[pick(i, j)] += g[i, j]
 *   max_pool2d_gather: y[i, j] = h[pick(i, j)]              (0 for a window of padding)
 *
 * A convolution is GEMMs over columns (im2col): row (c, a, b) of the columns holds,
 * for every image n and output position (i, j), x[n, c, i*sh - ph + a*dh, j*sw - pw +
 * b*dw] (0 in the padding), at column i*wo + j of image n's matrix (per image) or at
 * column n*ho*wo + i*wo + j of one matrix (the weight gradient's). numpy builds them as a
 * six-axis strided copy after padding the input, at a third of the bandwidth of the
 * runs of wo elements written here; the input gradient adds columns back (col2im),
 * offsets (a, b) in row-major order as the reference does, so the sums are the same.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t h, w, ho, wo, kh, kw, sh, sw, ph, pw;
    int64_t n, c, dh, dw;  /* the convolutions' (pooling: dilation 1; n, c unused) */
    int64_t per_image;     /* the columns' layout: see COLUMN_OPS */
} Geometry;

/* the output columns [*j0, *j1) whose input column j*sw + off lies in [0, w) */
static void valid_columns(const Geometry *g, int64_t off, int64_t *j0, int64_t *j1) {
    *j0 = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    *j1 = g->w - 1 - off < 0 ? 0 : (g->w - 1 - off) / g->sw + 1;
    if (*j1 > g->wo)
        *j1 = g->wo;
    if (*j0 > *j1)
        *j0 = *j1;
}

/* one 2x2 tile's pick, as pick_row's rule: best, and k its place (0..3, row-major) */
#define TILE_PICK(T)                                                                     \
    T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];               \
    T best = a, k = 0;  /* k a T, not an int: one vector width for the whole loop */      \
    int take;                                                                           \
    take = (b > best) | (b != b); best = take ? b : best; k = take ? 1 : k;             \
    take = (c > best) | (c != c); best = take ? c : best; k = take ? 2 : k;             \
    take = (d > best) | (d != d); best = take ? d : best; k = take ? 3 : k;

/* pick_row: for output row i of one plane, the index in the plane of each window's
 * chosen element (-1 for a window of padding only) into idx[0..wo). The scan goes
 * over the window offsets (a, b) row-major, as the rule wants, and within one offset
 * over every output column at once, which vectorizes. best[] is scratch. */
#define WINDOW_OPS(T, SUFFIX)                                                            \
static void pick_row_##SUFFIX(const T *restrict x, const Geometry *g, int64_t i,         \
                              T *restrict best, int64_t *restrict idx) {                \
    for (int64_t j = 0; j < g->wo; j++)                                                 \
        idx[j] = -1;                                                                    \
    for (int64_t a = 0; a < g->kh; a++) {                                               \
        int64_t r = i * g->sh - g->ph + a;                                              \
        if (r < 0 || r >= g->h)                                                         \
            continue;                                                                   \
        const T *restrict row = x + r * g->w;                                                  \
        for (int64_t b = 0; b < g->kw; b++) {                                           \
            /* the columns j whose window column c = j*sw - pw + b lies in [0, w) */     \
            int64_t off = b - g->pw, j0, j1;                                            \
            valid_columns(g, off, &j0, &j1);                                            \
            _Pragma("omp simd")                                                         \
            for (int64_t j = j0; j < j1; j++) {                                         \
                int64_t c = j * g->sw + off;                                            \
                T v = row[c], cur = best[j];                                            \
                int64_t chosen = idx[j];                                                \
                int take = (chosen < 0) | (v > cur) | (v != v);  /* no branches */      \
                best[j] = take ? v : cur;                                               \
                idx[j] = take ? r * g->w + c : chosen;                                  \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* The common 2x2 window at stride 2 without padding, which tiles the plane: each output \
 * compares its four elements in registers, by the same rule, and the gradient writes   \
 * its four places (no scatter, no index arrays). Rows and columns past the tiling (an  \
 * odd size) belong to no window: zero in dx. */                                        \
static void tiles_op_##SUFFIX(int op, int64_t p0, int64_t p1, const T *x, const T *in,  \
                              T *out, const Geometry *g) {                              \
    int64_t w = g->w, plane = g->h * g->w, pooled = g->ho * g->wo;                      \
    for (int64_t p = p0; p < p1; p++) {                                                 \
        const T *xp = x + p * plane;                                                    \
        T *dxp = out + p * plane;                                                       \
        if (op == 1 && (g->h != 2 * g->ho || w != 2 * g->wo))                           \
            memset(dxp, 0, sizeof(T) * plane);                                          \
        for (int64_t i = 0; i < g->ho; i++) {                                           \
            const T *restrict r0 = xp + 2 * i * w, *restrict r1 = r0 + w;               \
            const T *restrict gi = in == NULL ? NULL : in + p * pooled + i * g->wo;     \
            const T *restrict hp = in == NULL ? NULL : in + p * plane + 2 * i * w;      \
            T *restrict y = out + p * pooled + i * g->wo;                               \
            T *restrict d0 = dxp + 2 * i * w, *restrict d1 = d0 + w;                    \
            if (op == 0) {                                                              \
                _Pragma("omp simd")                                                     \
                for (int64_t j = 0; j < g->wo; j++) {                                   \
                    TILE_PICK(T)                                                        \
                    y[j] = best;                                                        \
                }                                                                       \
            } else if (op == 1) {                                                       \
                _Pragma("omp simd")                                                     \
                for (int64_t j = 0; j < g->wo; j++) {                                   \
                    TILE_PICK(T)                                                        \
                    T v = gi[j];                                                        \
                    d0[2 * j] = k == 0 ? v : 0;                                         \
                    d0[2 * j + 1] = k == 1 ? v : 0;                                     \
                    d1[2 * j] = k == 2 ? v : 0;                                         \
                    d1[2 * j + 1] = k == 3 ? v : 0;                                     \
                }                                                                       \
            } else {  /* the picks first, in y: one loop of eight strided reads did not \
                       * vectorize (gcc 12) */                                          \
                _Pragma("omp simd")                                                     \
                for (int64_t j = 0; j < g->wo; j++) {                                   \
                    TILE_PICK(T)                                                        \
                    y[j] = k;                                                           \
                }                                                                       \
                _Pragma("omp simd")                                                     \
                for (int64_t j = 0; j < g->wo; j++) {                                   \
                    T k = y[j];                                                         \
                    T h0 = hp[2 * j], h1 = hp[2 * j + 1];                               \
                    T h2 = hp[w + 2 * j], h3 = hp[w + 2 * j + 1];                       \
                    T v = h0;                                                           \
                    v = k == 1 ? h1 : v;                                                \
                    v = k == 2 ? h2 : v;                                                \
                    y[j] = k == 3 ? h3 : v;                                             \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* op 0: y = x at the picks; op 1: dx += g at the picks; op 2: y = h at the picks */    \
static void window_op_##SUFFIX(int op, int64_t p0, int64_t p1, const T *x, const T *in, \
                               T *out, const Geometry *g) {                             \
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0) { \
        tiles_op_##SUFFIX(op, p0, p1, x, in, out, g);                                   \
        return;                                                                         \
    }                                                                                   \
    T *best = malloc(sizeof(T) * g->wo);                                                \
    int64_t *idx = malloc(sizeof(int64_t) * g->wo);                                     \
    if (best == NULL || idx == NULL)                                                    \
        abort();                                                                        \
    int64_t plane = g->h * g->w, pooled = g->ho * g->wo;                                \
    for (int64_t p = p0; p < p1; p++) {                                                 \
        const T *xp = x + p * plane;                                                    \
        if (op == 1)                                                                    \
            memset(out + p * plane, 0, sizeof(T) * plane);                              \
        for (int64_t i = 0; i < g->ho; i++) {                                           \
            pick_row_##SUFFIX(xp, g, i, best, idx);                                     \
            for (int64_t j = 0; j < g->wo; j++) {                                       \
                int64_t k = idx[j], o = p * pooled + i * g->wo + j;                     \
                if (op == 0)                                                            \
                    out[o] = k < 0 ? -INFINITY : xp[k];                                 \
                else if (op == 1 && k >= 0)                                             \
                    out[p * plane + k] += in[o];                                        \
                else if (op == 2)                                                       \
                    out[o] = k < 0 ? 0 : in[p * plane + k];                             \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    free(best);                                                                         \
    free(idx);                                                                          \
}                                                                                       \
                                                                                        \
void max_pool2d_##SUFFIX(int64_t p0, int64_t p1, const T *x, T *y, const Geometry *g) { \
    window_op_##SUFFIX(0, p0, p1, x, NULL, y, g);                                       \
}                                                                                       \
void max_pool2d_grad_##SUFFIX(int64_t p0, int64_t p1, const T *x, const T *dy, T *dx,   \
                              const Geometry *g) {                                      \
    window_op_##SUFFIX(1, p0, p1, x, dy, dx, g);                                        \
}                                                                                       \
void max_pool2d_gather_##SUFFIX(int64_t p0, int64_t p1, const T *x, const T *h, T *y,   \
                                const Geometry *g) {                                    \
    window_op_##SUFFIX(2, p0, p1, x, h, y, g);                                          \
}

/* im2col: the planes p = n*C + c in [p0, p1) of x copied into their columns; col2im:
 * the same planes of dx, zeroed and then each column element added back to its place.
 * Two layouts of the columns: one matrix (C*kh*kw, N*ho*wo), rows (c, a, b), for the
 * weight gradient's one GEMM over every image; or per image (N, C*kh*kw, ho*wo), whose
 * GEMMs write the convolution (and read its input gradient) in NCHW as they are,
 * without a transposing copy, and whose rows are ho*wo apart instead of N*ho*wo (a
 * power of two of 256 KB put the CNN's 27 rows in one cache set). */
#define COLUMN_OPS(T, SUFFIX)                                                            \
static T *column_row_##SUFFIX(T *cols, const Geometry *g, int64_t p, int64_t a, int64_t b) { \
    int64_t positions = g->ho * g->wo, n = p / g->c, c = p % g->c;                     \
    int64_t row = (c * g->kh + a) * g->kw + b;                                          \
    if (g->per_image)                                                                   \
        return cols + (n * g->c * g->kh * g->kw + row) * positions;                     \
    return cols + row * (g->n * positions) + n * positions;                             \
}                                                                                       \
void im2col_##SUFFIX(int64_t p0, int64_t p1, const T *x, T *cols, const Geometry *g) {  \
    for (int64_t p = p0; p < p1; p++) {                                                 \
        const T *xp = x + p * g->h * g->w;                                              \
        for (int64_t a = 0; a < g->kh; a++)                                             \
            for (int64_t b = 0; b < g->kw; b++) {                                       \
                T *restrict dst = column_row_##SUFFIX(cols, g, p, a, b);                \
                int64_t off = b * g->dw - g->pw, j0, j1;                                \
                valid_columns(g, off, &j0, &j1);                                        \
                for (int64_t i = 0; i < g->ho; i++, dst += g->wo) {                     \
                    int64_t r = i * g->sh - g->ph + a * g->dh;                          \
                    if (r < 0 || r >= g->h) {                                           \
                        memset(dst, 0, sizeof(T) * g->wo);                              \
                        continue;                                                       \
                    }                                                                   \
                    const T *restrict row = xp + r * g->w;                              \
                    for (int64_t j = 0; j < j0; j++)                                    \
                        dst[j] = 0;                                                     \
                    _Pragma("omp simd")                                                 \
                    for (int64_t j = j0; j < j1; j++)                                   \
                        dst[j] = row[j * g->sw + off];                                  \
                    for (int64_t j = j1; j < g->wo; j++)                                \
                        dst[j] = 0;                                                     \
                }                                                                       \
            }                                                                           \
    }                                                                                   \
}                                                                                       \
void col2im_##SUFFIX(int64_t p0, int64_t p1, const T *cols, T *dx, const Geometry *g) { \
    for (int64_t p = p0; p < p1; p++) {                                                 \
        T *dxp = dx + p * g->h * g->w;                                                  \
        memset(dxp, 0, sizeof(T) * g->h * g->w);                                        \
        for (int64_t a = 0; a < g->kh; a++)                                             \
            for (int64_t b = 0; b < g->kw; b++) {                                       \
                const T *restrict src = column_row_##SUFFIX((T *)cols, g, p, a, b);     \
                int64_t off = b * g->dw - g->pw, j0, j1;                                \
                valid_columns(g, off, &j0, &j1);                                        \
                for (int64_t i = 0; i < g->ho; i++, src += g->wo) {                     \
                    int64_t r = i * g->sh - g->ph + a * g->dh;                          \
                    if (r < 0 || r >= g->h)                                             \
                        continue;                                                       \
                    T *restrict row = dxp + r * g->w;                                   \
                    _Pragma("omp simd")                                                 \
                    for (int64_t j = j0; j < j1; j++)                                   \
                        row[j * g->sw + off] += src[j];                                 \
                }                                                                       \
            }                                                                           \
    }                                                                                   \
}

WINDOW_OPS(float, f32)
WINDOW_OPS(double, f64)
COLUMN_OPS(float, f32)
COLUMN_OPS(double, f64)
