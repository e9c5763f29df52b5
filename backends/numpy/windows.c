/* Max pooling and its two gradient ops for the numpy backend, over NCHW planes.
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
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t h, w, ho, wo, kh, kw, sh, sw, ph, pw;
} Geometry;

#define WINDOW_OPS(T, SUFFIX)                                                            \
static int64_t pick_##SUFFIX(const T *x, const Geometry *g, int64_t i, int64_t j) {     \
    int64_t best = -1;                                                                  \
    T value = 0;                                                                        \
    for (int64_t a = 0; a < g->kh; a++) {                                               \
        int64_t r = i * g->sh - g->ph + a;                                              \
        if (r < 0 || r >= g->h)                                                         \
            continue;                                                                   \
        for (int64_t b = 0; b < g->kw; b++) {                                           \
            int64_t c = j * g->sw - g->pw + b;                                          \
            if (c < 0 || c >= g->w)                                                     \
                continue;                                                               \
            T v = x[r * g->w + c];                                                      \
            if (best < 0 || v > value || v != v) {                                      \
                best = r * g->w + c;                                                    \
                value = v;                                                              \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    return best;                                                                        \
}                                                                                       \
                                                                                        \
void max_pool2d_##SUFFIX(int64_t p0, int64_t p1, const T *x, T *y, const Geometry *g) { \
    for (int64_t p = p0; p < p1; p++) {                                                 \
        const T *xp = x + p * g->h * g->w;                                              \
        T *yp = y + p * g->ho * g->wo;                                                  \
        for (int64_t i = 0; i < g->ho; i++)                                             \
            for (int64_t j = 0; j < g->wo; j++) {                                       \
                int64_t k = pick_##SUFFIX(xp, g, i, j);                                 \
                yp[i * g->wo + j] = k < 0 ? -INFINITY : xp[k];                          \
            }                                                                           \
    }                                                                                   \
}                                                                                       \
                                                                                        \
void max_pool2d_grad_##SUFFIX(int64_t p0, int64_t p1, const T *x, const T *dy, T *dx,   \
                              const Geometry *g) {                                      \
    for (int64_t p = p0; p < p1; p++) {                                                 \
        const T *xp = x + p * g->h * g->w, *gp = dy + p * g->ho * g->wo;                \
        T *dxp = dx + p * g->h * g->w;                                                  \
        memset(dxp, 0, sizeof(T) * g->h * g->w);                                        \
        for (int64_t i = 0; i < g->ho; i++)                                             \
            for (int64_t j = 0; j < g->wo; j++) {                                       \
                int64_t k = pick_##SUFFIX(xp, g, i, j);                                 \
                if (k >= 0)                                                             \
                    dxp[k] += gp[i * g->wo + j];                                        \
            }                                                                           \
    }                                                                                   \
}                                                                                       \
                                                                                        \
void max_pool2d_gather_##SUFFIX(int64_t p0, int64_t p1, const T *x, const T *h, T *y,   \
                                const Geometry *g) {                                    \
    for (int64_t p = p0; p < p1; p++) {                                                 \
        const T *xp = x + p * g->h * g->w, *hp = h + p * g->h * g->w;                   \
        T *yp = y + p * g->ho * g->wo;                                                  \
        for (int64_t i = 0; i < g->ho; i++)                                             \
            for (int64_t j = 0; j < g->wo; j++) {                                       \
                int64_t k = pick_##SUFFIX(xp, g, i, j);                                 \
                yp[i * g->wo + j] = k < 0 ? 0 : hp[k];                                  \
            }                                                                           \
    }                                                                                   \
}

WINDOW_OPS(float, f32)
WINDOW_OPS(double, f64)
