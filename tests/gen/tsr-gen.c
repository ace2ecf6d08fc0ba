/*
 * tsr-gen.c — deterministic synthetic data for Tessera's tests, demos and
 * benchmarks.
 *
 *   tsr-gen demo OUT.raw [--scan NY,NX] [--sig SY,SX] [--seed N]
 *   tsr-gen demo-info [--scan NY,NX] [--sig SY,SX] [--seed N]
 *   tsr-gen random OUT.raw --shape A,B,... --dtype u1|u2|u4|u8|i1|i2|i4|i8|f4|f8
 *           [--big-endian] [--seed N] [--range LO,HI]
 *
 * `demo` writes a little-endian uint16 raw 4D-STEM dataset (nav y,x then sig
 * y,x, C order) that looks like a real scan of a polycrystalline film:
 *
 *  - a bright-field disk of radius min(SY,SX)/10 centred at (SY/2, SX/2),
 *    shifted at every scan position by a smooth "electric field" that is the
 *    gradient of a sinusoidal potential, so a centre-of-mass analysis shows a
 *    pattern of sources and sinks;
 *  - a thickness map (a linear gradient with a gentle wobble and a few round
 *    holes of vacuum): the bright field falls as exp(-t/mfp) and the
 *    scattered intensity rises as 1 - exp(-t/mfp);
 *  - a handful of Voronoi grains: grain 0 is amorphous (a diffuse ring), the
 *    others are crystalline, with Bragg disks on a hexagonal or square lattice
 *    at a per-grain angle, spacing and strength, so a ring (annular
 *    dark-field) detector images the grains and the holes;
 *  - a weak diffuse (Lorentzian) background and Poisson shot noise.
 *
 * Every parameter is derived from the seed alone and is printed as JSON by
 * `demo-info`.  `random` writes uniform random values of any dtype and byte
 * order, for benchmarks and tests.
 *
 * Invariants: output depends only on the arguments (one PRNG stream,
 * consumed in file order), never on timing or chunking; the dataset is
 * produced in chunks of frames, so memory stays bounded whatever its size.
 * Bad arguments exit with status 2 and one line on stderr; I/O errors exit 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DIMS 8
#define MAX_GRAINS 16
#define MAX_HOLES 8
#define CHUNK_BYTES ((size_t)4 << 20)

static const double PI = 3.14159265358979323846;

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("tsr-gen: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see 'tsr-gen --help')\n", stderr);
    exit(2);
}

static void io_error(const char *fmt, ...)
{
    va_list ap;
    fputs("tsr-gen: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static const char USAGE[] =
    "usage:\n"
    "  tsr-gen demo OUT.raw [--scan NY,NX] [--sig SY,SX] [--seed N]\n"
    "      synthetic 4D-STEM scan, little-endian uint16, C order (nav y,x, sig y,x);\n"
    "      defaults --scan 64,64 --sig 128,128 --seed 1\n"
    "  tsr-gen demo-info [--scan NY,NX] [--sig SY,SX] [--seed N]\n"
    "      print the demo's parameters as JSON\n"
    "  tsr-gen random OUT.raw --shape A,B,... --dtype u1|u2|u4|u8|i1|i2|i4|i8|f4|f8\n"
    "          [--big-endian] [--seed N] [--range LO,HI]\n"
    "      uniform random values in [LO, HI] (integers) or [LO, HI) (floats);\n"
    "      default range: the full type for integers up to 32 bit, [0, 2^32-1]\n"
    "      for u8, [-2^31, 2^31-1] for i8, [0, 1) for floats\n";

/* ------------------------------------------------------------------------ */
/* PRNG: splitmix64 seeds xoshiro256**                                       */
/* ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t s[4];
    bool has_spare;
    double spare;
} rng_t;

static void rng_init(rng_t *r, uint64_t seed)
{
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&sm);
    r->has_spare = false;
    r->spare = 0.0;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_u64(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static inline double rng_uniform(rng_t *r)
{
    return (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, span_minus_1], exactly (no modulo bias).  Spans up to 2^32
 * use Lemire's multiply-shift with rejection (no division on the fast path);
 * wider spans reject and take a modulo. */
static inline uint64_t rng_range_u64(rng_t *r, uint64_t span_minus_1)
{
    if (span_minus_1 == UINT64_MAX)
        return rng_u64(r);
    uint64_t span = span_minus_1 + 1;
    if (span <= ((uint64_t)1 << 32)) {
        uint64_t m = (rng_u64(r) >> 32) * span;
        uint32_t low = (uint32_t)m;
        if (low < span) {
            uint32_t threshold = (uint32_t)((((uint64_t)1 << 32) - span) % span);
            while (low < threshold) {
                m = (rng_u64(r) >> 32) * span;
                low = (uint32_t)m;
            }
        }
        return m >> 32;
    }
    uint64_t limit = UINT64_MAX - (UINT64_MAX % span);
    uint64_t x;
    do {
        x = rng_u64(r);
    } while (x >= limit);
    return x % span;
}

/* Standard normal (Marsaglia's polar method, the spare is kept). */
static double rng_normal(rng_t *r)
{
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * rng_uniform(r) - 1.0;
        v = 2.0 * rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->has_spare = true;
    return u * f;
}

/* Poisson noise.  Below POISSON_NORMAL_ABOVE counts, lambda is quantised to
 * 1/POISSON_STEPS (far below the noise) and each quantised lambda has a Walker
 * alias table over k = 0..POISSON_K-1 (the tail beyond, < 1e-7 at lambda 30,
 * folded into the last k): one 64-bit draw and no data-dependent branch per
 * sample.  This is an exact sampler of Poisson(quantised lambda); Knuth's
 * product method needs lambda + 1 uniforms and a mispredicted branch per
 * sample, which made a 64x64x128x128 demo take 1.5 s.  Above the threshold,
 * the normal approximation N(lambda, lambda), rounded. */
#define POISSON_NORMAL_ABOVE 30
#define POISSON_STEPS 64
#define POISSON_ROWS (POISSON_NORMAL_ABOVE * POISSON_STEPS)
#define POISSON_K 64
static uint32_t poisson_thr[POISSON_ROWS][POISSON_K];
static uint8_t poisson_alias[POISSON_ROWS][POISSON_K];

static void poisson_init(void)
{
    for (int row = 0; row < POISSON_ROWS; row++) {
        double lambda = (double)row / POISSON_STEPS;
        double pmf[POISSON_K], scaled[POISSON_K];
        double p = exp(-lambda), sum = 0.0;
        for (int k = 0; k < POISSON_K; k++) {
            pmf[k] = p;
            sum += p;
            p *= lambda / (k + 1);
        }
        pmf[POISSON_K - 1] += 1.0 - sum > 0.0 ? 1.0 - sum : 0.0;
        /* Vose's alias method: columns below 1 borrow from columns above. */
        int small[POISSON_K], large[POISSON_K], ns = 0, nl = 0;
        double total = 0.0;
        for (int k = 0; k < POISSON_K; k++)
            total += pmf[k];
        for (int k = 0; k < POISSON_K; k++) {
            scaled[k] = pmf[k] / total * POISSON_K;
            if (scaled[k] < 1.0)
                small[ns++] = k;
            else
                large[nl++] = k;
        }
        while (ns > 0 && nl > 0) {
            int s = small[--ns], l = large[--nl];
            poisson_thr[row][s] = (uint32_t)(scaled[s] * 4294967296.0);
            poisson_alias[row][s] = (uint8_t)l;
            scaled[l] -= 1.0 - scaled[s];
            if (scaled[l] < 1.0)
                small[ns++] = l;
            else
                large[nl++] = l;
        }
        /* What remains is 1 up to rounding: keep the column itself. */
        while (nl > 0) {
            int l = large[--nl];
            poisson_thr[row][l] = UINT32_MAX;
            poisson_alias[row][l] = (uint8_t)l;
        }
        while (ns > 0) {
            int s = small[--ns];
            poisson_thr[row][s] = UINT32_MAX;
            poisson_alias[row][s] = (uint8_t)s;
        }
    }
}

static inline uint32_t rng_poisson(rng_t *r, float lambda)
{
    if (lambda < (float)POISSON_NORMAL_ABOVE) {
        /* Row 0 (lambda 0) always gives 0; negative lambda counts as 0. */
        int row = lambda > 0.0f ? (int)(lambda * (float)POISSON_STEPS + 0.5f) : 0;
        if (row >= POISSON_ROWS)
            row = POISSON_ROWS - 1;
        uint64_t x = rng_u64(r);
        unsigned col = (unsigned)(x >> 58);
        return (uint32_t)x < poisson_thr[row][col] ? col : poisson_alias[row][col];
    }
    double x = floor((double)lambda + sqrt((double)lambda) * rng_normal(r) + 0.5);
    return x <= 0.0 ? 0 : (x >= 4294967295.0 ? UINT32_MAX : (uint32_t)x);
}

/* ------------------------------------------------------------------------ */
/* Argument parsing                                                          */
/* ------------------------------------------------------------------------ */

static uint64_t parse_u64(const char *opt, const char *s)
{
    if (*s == '\0' || *s == '-' || *s == '+')
        usage_error("%s: expected a non-negative integer, found '%s'", opt, s);
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        usage_error("%s: expected a non-negative integer, found '%s'", opt, s);
    return (uint64_t)v;
}

static double parse_double(const char *opt, const char *s)
{
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v))
        usage_error("%s: expected a number, found '%s'", opt, s);
    return v;
}

/* "A,B,C" -> dims; every entry a positive integer. */
static int parse_shape(const char *opt, const char *s, uint64_t *dims, int max_dims)
{
    int n = 0;
    const char *p = s;
    char buf[64];
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof buf)
            usage_error("%s: expected comma-separated positive integers, found '%s'", opt, s);
        if (n == max_dims)
            usage_error("%s: at most %d dimensions, found '%s'", opt, max_dims, s);
        memcpy(buf, p, len);
        buf[len] = '\0';
        uint64_t v = parse_u64(opt, buf);
        if (v == 0 || v > ((uint64_t)1 << 32))
            usage_error("%s: every dimension must be in 1..2^32, found '%s'", opt, s);
        dims[n++] = v;
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

typedef struct {
    const char *out;
    uint64_t scan[2], sig[2];
    uint64_t seed;
    uint64_t shape[MAX_DIMS];
    int ndim;
    const char *dtype;
    bool big_endian;
    bool has_range;
    double range_lo, range_hi;
    const char *range_text;
} args_t;

static const char *need_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        usage_error("option %s needs a value", argv[*i]);
    return argv[++*i];
}

static void parse_args(const char *mode, int argc, char **argv, args_t *a, bool want_out)
{
    a->out = NULL;
    a->scan[0] = a->scan[1] = 64;
    a->sig[0] = a->sig[1] = 128;
    a->seed = 1;
    a->ndim = 0;
    a->dtype = NULL;
    a->big_endian = false;
    a->has_range = false;
    bool is_demo = strcmp(mode, "random") != 0;

    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--seed") == 0) {
            a->seed = parse_u64("--seed", need_value(argc, argv, &i));
        } else if (is_demo && strcmp(arg, "--scan") == 0) {
            if (parse_shape("--scan", need_value(argc, argv, &i), a->scan, 2) != 2)
                usage_error("--scan: expected NY,NX, found '%s'", argv[i]);
        } else if (is_demo && strcmp(arg, "--sig") == 0) {
            if (parse_shape("--sig", need_value(argc, argv, &i), a->sig, 2) != 2)
                usage_error("--sig: expected SY,SX, found '%s'", argv[i]);
        } else if (!is_demo && strcmp(arg, "--shape") == 0) {
            a->ndim = parse_shape("--shape", need_value(argc, argv, &i), a->shape, MAX_DIMS);
        } else if (!is_demo && strcmp(arg, "--dtype") == 0) {
            a->dtype = need_value(argc, argv, &i);
        } else if (!is_demo && strcmp(arg, "--big-endian") == 0) {
            a->big_endian = true;
        } else if (!is_demo && strcmp(arg, "--range") == 0) {
            const char *v = need_value(argc, argv, &i);
            const char *comma = strchr(v, ',');
            char lo[64];
            if (!comma || (size_t)(comma - v) >= sizeof lo)
                usage_error("--range: expected LO,HI, found '%s'", v);
            memcpy(lo, v, (size_t)(comma - v));
            lo[comma - v] = '\0';
            a->range_lo = parse_double("--range", lo);
            a->range_hi = parse_double("--range", comma + 1);
            if (!(a->range_lo <= a->range_hi))
                usage_error("--range: LO must not exceed HI, found '%s'", v);
            a->has_range = true;
            a->range_text = v;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            usage_error("unknown option '%s' for '%s'", arg, mode);
        } else if (want_out && a->out == NULL) {
            a->out = arg;
        } else {
            usage_error("unexpected argument '%s' for '%s'", arg, mode);
        }
    }
    if (want_out && a->out == NULL)
        usage_error("'%s' needs an output path", mode);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        io_error("cannot open '%s' for writing: %s", path, strerror(errno));
    return f;
}

static void write_all(FILE *f, const char *path, const void *buf, size_t n)
{
    if (n && fwrite(buf, 1, n, f) != n)
        io_error("cannot write '%s': %s", path, strerror(errno));
}

static void close_out(FILE *f, const char *path)
{
    if (fclose(f) != 0)
        io_error("cannot write '%s': %s", path, strerror(errno));
}

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        io_error("out of memory (%zu bytes)", n);
    return p;
}

/* ------------------------------------------------------------------------ */
/* Demo model                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
    double y, x; /* Voronoi seed, in scan pixels */
    bool crystalline;
    bool hexagonal;
    double angle;    /* radians, of the first lattice vector, from +x toward +y */
    double spacing;  /* detector pixels */
    double strength; /* relative Bragg intensity, 0..1 */
} grain_t;

typedef struct {
    double y, x, r; /* in scan pixels */
} hole_t;

typedef struct {
    uint64_t ny, nx, sy, sx, seed;
    double cy, cx, radius;
    double shift_amp, fx, fy; /* field: see shift_at() */
    double i0;                /* bright-field counts per pixel in vacuum */
    double mfp;               /* thickness in units of the mean free path */
    double t0, t_grad_x, t_grad_y, t_wobble;
    double bragg_frac, bragg_g0;
    double bg_frac, bg_q0;
    double amorph_frac, amorph_q, amorph_w;
    int n_grains, n_holes;
    grain_t grains[MAX_GRAINS];
    hole_t holes[MAX_HOLES];
} demo_t;

static void demo_init(demo_t *d, const args_t *a)
{
    d->ny = a->scan[0];
    d->nx = a->scan[1];
    d->sy = a->sig[0];
    d->sx = a->sig[1];
    d->seed = a->seed;
    double smin = (double)(d->sy < d->sx ? d->sy : d->sx);
    double nmin = (double)(d->ny < d->nx ? d->ny : d->nx);
    d->cy = (double)d->sy / 2.0;
    d->cx = (double)d->sx / 2.0;
    d->radius = smin / 10.0 > 1.0 ? smin / 10.0 : 1.0;
    d->shift_amp = smin / 40.0 > 0.5 ? smin / 40.0 : 0.5;
    d->fx = 1.5;
    d->fy = 1.0;
    d->i0 = 150.0;
    d->mfp = 0.6;
    d->t0 = 0.3;
    d->t_grad_x = 0.35;
    d->t_grad_y = 0.2;
    d->t_wobble = 0.05;
    d->bragg_frac = 0.12;
    d->bragg_g0 = 4.0 * d->radius;
    d->bg_frac = 0.006;
    d->bg_q0 = 2.0 * d->radius;
    d->amorph_frac = 0.02;
    d->amorph_q = 3.0 * d->radius;
    d->amorph_w = 0.6 * d->radius;

    /* Everything random about the sample comes from one splitmix stream
     * (distinct from the noise stream, which xoshiro runs from the seed). */
    uint64_t sm = a->seed ^ 0x5eed5eed5eed5eedULL;
#define U01() ((double)(splitmix64(&sm) >> 11) * 0x1.0p-53)
    d->n_grains = 7;
    for (int g = 0; g < d->n_grains; g++) {
        grain_t *gr = &d->grains[g];
        gr->y = U01() * (double)d->ny;
        gr->x = U01() * (double)d->nx;
        gr->crystalline = g != 0;
        gr->hexagonal = (g % 2) == 1;
        gr->angle = U01() * (gr->hexagonal ? PI / 3.0 : PI / 2.0);
        gr->spacing = d->radius * (2.5 + 0.5 * U01());
        gr->strength = gr->crystalline ? 0.35 + 0.65 * U01() : 0.0;
    }
    d->n_holes = 3;
    for (int h = 0; h < d->n_holes; h++) {
        hole_t *ho = &d->holes[h];
        ho->y = (0.15 + 0.7 * U01()) * (double)d->ny;
        ho->x = (0.15 + 0.7 * U01()) * (double)d->nx;
        ho->r = (0.04 + 0.04 * U01()) * nmin;
        if (ho->r < 0.5)
            ho->r = 0.5;
    }
#undef U01
}

/* Beam shift (dy, dx) in detector pixels at scan position (iy, ix): the
 * gradient of the potential sin(2 pi fx u) sin(2 pi fy v), u = ix/nx,
 * v = iy/ny, normalised to amplitude shift_amp. */
static void shift_at(const demo_t *d, double iy, double ix, double *dy, double *dx)
{
    double u = ix / (double)d->nx, v = iy / (double)d->ny;
    *dx = d->shift_amp * cos(2 * PI * d->fx * u) * sin(2 * PI * d->fy * v);
    *dy = d->shift_amp * sin(2 * PI * d->fx * u) * cos(2 * PI * d->fy * v);
}

/* Sample thickness (in mean free paths) at a scan position: a gradient with a
 * wobble, zero inside holes (with a one-pixel soft edge). */
static double thickness_at(const demo_t *d, double iy, double ix)
{
    double u = ix / (double)d->nx, v = iy / (double)d->ny;
    double t = d->t0 + d->t_grad_x * u + d->t_grad_y * v +
               d->t_wobble * sin(2 * PI * 2.3 * u + 0.7) * sin(2 * PI * 1.7 * v + 0.3);
    double keep = 1.0;
    for (int h = 0; h < d->n_holes; h++) {
        double r = hypot(iy - d->holes[h].y, ix - d->holes[h].x);
        double c = r - d->holes[h].r + 0.5; /* 0 inside, 1 outside */
        c = c < 0 ? 0 : (c > 1 ? 1 : c);
        keep *= c;
    }
    return t * keep;
}

static int grain_at(const demo_t *d, double iy, double ix)
{
    int best = 0;
    double bd = INFINITY;
    for (int g = 0; g < d->n_grains; g++) {
        double dd = (iy - d->grains[g].y) * (iy - d->grains[g].y) +
                    (ix - d->grains[g].x) * (ix - d->grains[g].x);
        if (dd < bd) {
            bd = dd;
            best = g;
        }
    }
    return best;
}

/* Add a disk of the given amplitude with a one-pixel anti-aliased edge. */
static void add_disk(float *lam, uint64_t sy, uint64_t sx, double cy, double cx, double r,
                     double amp)
{
    double y0 = floor(cy - r - 1), y1 = ceil(cy + r + 1);
    double x0 = floor(cx - r - 1), x1 = ceil(cx + r + 1);
    if (y1 < 0 || x1 < 0 || y0 >= (double)sy || x0 >= (double)sx)
        return;
    long ya = y0 < 0 ? 0 : (long)y0, yb = y1 >= (double)sy ? (long)sy - 1 : (long)y1;
    long xa = x0 < 0 ? 0 : (long)x0, xb = x1 >= (double)sx ? (long)sx - 1 : (long)x1;
    double rin = r - 0.5 > 0 ? (r - 0.5) * (r - 0.5) : 0, rout = (r + 0.5) * (r + 0.5);
    for (long y = ya; y <= yb; y++) {
        double ddy = ((double)y - cy) * ((double)y - cy);
        float *row = lam + (size_t)y * sx;
        for (long x = xa; x <= xb; x++) {
            double d2 = ddy + ((double)x - cx) * ((double)x - cx);
            if (d2 >= rout)
                continue;
            if (d2 <= rin)
                row[x] += (float)amp;
            else
                row[x] += (float)(amp * (r + 0.5 - sqrt(d2)));
        }
    }
}

/* Strength of one reflection, a fixed pseudo-random factor in 0.4..1 per
 * grain and lattice point (a stand-in for structure factor and excitation). */
static double reflection_factor(uint64_t seed, int g, long h, long k)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)g << 48) ^ ((uint64_t)(h + 1024) << 24) ^
                 (uint64_t)(k + 1024);
    return 0.4 + 0.6 * (double)(splitmix64(&s) >> 11) * 0x1.0p-53;
}

/* Expected counts of frame (iy, ix) into lam (sy*sx floats). bg and ring are
 * the precomputed diffuse background and amorphous-ring profiles. */
static void demo_frame(const demo_t *d, uint64_t iy, uint64_t ix, const float *bg,
                       const float *ring, float *lam)
{
    size_t npix = (size_t)(d->sy * d->sx);
    double y = (double)iy, x = (double)ix;
    double t = thickness_at(d, y, x);
    double trans = exp(-t / d->mfp), scat = 1.0 - trans;
    int g = grain_at(d, y, x);
    const grain_t *gr = &d->grains[g];
    double dy, dx;
    shift_at(d, y, x, &dy, &dx);
    double cy = d->cy + dy, cx = d->cx + dx;

    float kb = (float)(d->i0 * d->bg_frac * scat);
    float ka = gr->crystalline ? 0.0f : (float)(d->i0 * d->amorph_frac * scat);
    for (size_t p = 0; p < npix; p++)
        lam[p] = kb * bg[p] + ka * ring[p];

    add_disk(lam, d->sy, d->sx, cy, cx, d->radius, d->i0 * trans);

    if (gr->crystalline && scat > 0) {
        double a1y = gr->spacing * sin(gr->angle), a1x = gr->spacing * cos(gr->angle);
        double ang2 = gr->angle + (gr->hexagonal ? PI / 3.0 : PI / 2.0);
        double a2y = gr->spacing * sin(ang2), a2x = gr->spacing * cos(ang2);
        double reach = hypot((double)d->sy, (double)d->sx) / 2.0 + d->radius + 2.0;
        long nmax = (long)ceil(2.0 * reach / gr->spacing) + 1;
        for (long h = -nmax; h <= nmax; h++) {
            for (long k = -nmax; k <= nmax; k++) {
                if (h == 0 && k == 0)
                    continue;
                double gy = (double)h * a1y + (double)k * a2y;
                double gx = (double)h * a1x + (double)k * a2x;
                double gl = hypot(gy, gx);
                if (gl > reach)
                    continue;
                double amp = d->i0 * d->bragg_frac * gr->strength * scat *
                             exp(-(gl / d->bragg_g0) * (gl / d->bragg_g0)) *
                             reflection_factor(d->seed, g, h, k);
                add_disk(lam, d->sy, d->sx, cy + gy, cx + gx, d->radius, amp);
            }
        }
    }
}

static void demo_profiles(const demo_t *d, float *bg, float *ring)
{
    for (uint64_t y = 0; y < d->sy; y++) {
        for (uint64_t x = 0; x < d->sx; x++) {
            double q = hypot((double)y - d->cy, (double)x - d->cx);
            size_t p = (size_t)(y * d->sx + x);
            bg[p] = (float)(1.0 / (1.0 + (q / d->bg_q0) * (q / d->bg_q0)));
            double z = (q - d->amorph_q) / d->amorph_w;
            ring[p] = (float)exp(-0.5 * z * z);
        }
    }
}

static uint64_t checked_mul(uint64_t a, uint64_t b, const char *what)
{
    if (a != 0 && b > UINT64_MAX / a)
        usage_error("%s is too large", what);
    return a * b;
}

static int cmd_demo(const args_t *a)
{
    demo_t d;
    demo_init(&d, a);
    poisson_init();
    uint64_t npix = checked_mul(d.sy, d.sx, "--sig");
    uint64_t nframes = checked_mul(d.ny, d.nx, "--scan");
    uint64_t frame_bytes = checked_mul(npix, 2, "--sig");
    uint64_t total = checked_mul(nframes, frame_bytes, "the dataset");
    if (npix > ((uint64_t)1 << 28))
        usage_error("--sig: at most 2^28 pixels per frame, found %" PRIu64, npix);

    double t_start = now_s();
    float *bg = xmalloc((size_t)npix * sizeof(float));
    float *ring = xmalloc((size_t)npix * sizeof(float));
    float *lam = xmalloc((size_t)npix * sizeof(float));
    size_t chunk_frames = (size_t)(CHUNK_BYTES / frame_bytes);
    if (chunk_frames == 0)
        chunk_frames = 1;
    uint8_t *chunk = xmalloc(chunk_frames * (size_t)frame_bytes);
    demo_profiles(&d, bg, ring);

    rng_t rng;
    rng_init(&rng, a->seed);
    FILE *f = open_out(a->out);
    uint64_t saturated = 0;
    size_t in_chunk = 0;
    for (uint64_t i = 0; i < nframes; i++) {
        demo_frame(&d, i / d.nx, i % d.nx, bg, ring, lam);
        uint8_t *o = chunk + in_chunk * (size_t)frame_bytes;
        for (size_t p = 0; p < (size_t)npix; p++) {
            uint32_t c = rng_poisson(&rng, lam[p]);
            if (c > 65535) {
                c = 65535;
                saturated++;
            }
            uint16_t v = (uint16_t)c;
            o[2 * p] = (uint8_t)(v & 0xff);
            o[2 * p + 1] = (uint8_t)(v >> 8);
        }
        if (++in_chunk == chunk_frames || i + 1 == nframes) {
            write_all(f, a->out, chunk, in_chunk * (size_t)frame_bytes);
            in_chunk = 0;
        }
    }
    close_out(f, a->out);
    free(bg);
    free(ring);
    free(lam);
    free(chunk);
    fprintf(stderr,
            "tsr-gen: wrote %s: demo 4D-STEM, nav %" PRIu64 "x%" PRIu64 ", sig %" PRIu64 "x%" PRIu64
            ", dtype <u2, %" PRIu64 " bytes, seed %" PRIu64
            "%s in %.2f s (open with --set nav_shape=%" PRIu64 ",%" PRIu64
            " --set sig_shape=%" PRIu64 ",%" PRIu64 " --set dtype=<u2)\n",
            a->out, d.ny, d.nx, d.sy, d.sx, total, a->seed,
            saturated ? " (some pixels saturated)" : "", now_s() - t_start, d.ny, d.nx, d.sy, d.sx);
    return 0;
}

static int cmd_demo_info(const args_t *a)
{
    demo_t d;
    demo_init(&d, a);
    uint64_t npix = checked_mul(d.sy, d.sx, "--sig");
    uint64_t total = checked_mul(checked_mul(d.ny, d.nx, "--scan"), checked_mul(npix, 2, "--sig"),
                                 "the dataset");
    printf("{\n");
    printf("  \"kind\": \"demo\",\n");
    printf("  \"nav_shape\": [%" PRIu64 ", %" PRIu64 "],\n", d.ny, d.nx);
    printf("  \"sig_shape\": [%" PRIu64 ", %" PRIu64 "],\n", d.sy, d.sx);
    printf("  \"dtype\": \"<u2\",\n");
    printf("  \"seed\": %" PRIu64 ",\n", d.seed);
    printf("  \"bytes\": %" PRIu64 ",\n", total);
    printf("  \"disk\": {\"cy\": %.17g, \"cx\": %.17g, \"r\": %.17g},\n", d.cy, d.cx, d.radius);
    printf("  \"shift\": {\"amplitude_px\": %.17g, \"fx\": %.17g, \"fy\": %.17g,\n", d.shift_amp,
           d.fx, d.fy);
    printf("            \"formula\": \"u = ix/nx, v = iy/ny; dx = A cos(2 pi fx u) sin(2 pi fy v); "
           "dy = A sin(2 pi fx u) cos(2 pi fy v)\"},\n");
    printf("  \"intensity\": {\"i0\": %.17g, \"mfp\": %.17g, \"bright_field\": \"i0 exp(-t/mfp)\", "
           "\"scattered\": \"1 - exp(-t/mfp)\"},\n",
           d.i0, d.mfp);
    printf("  \"thickness\": {\"t0\": %.17g, \"grad_x\": %.17g, \"grad_y\": %.17g, \"wobble\": "
           "%.17g,\n",
           d.t0, d.t_grad_x, d.t_grad_y, d.t_wobble);
    printf("                \"formula\": \"t0 + grad_x u + grad_y v + wobble sin(2 pi 2.3 u + 0.7) "
           "sin(2 pi 1.7 v + 0.3), 0 in holes\"},\n");
    printf("  \"holes\": [");
    for (int h = 0; h < d.n_holes; h++)
        printf("%s{\"y\": %.6f, \"x\": %.6f, \"r\": %.6f}", h ? ", " : "", d.holes[h].y,
               d.holes[h].x, d.holes[h].r);
    printf("],\n");
    printf("  \"grains\": [\n");
    for (int g = 0; g < d.n_grains; g++) {
        const grain_t *gr = &d.grains[g];
        printf("    {\"y\": %.6f, \"x\": %.6f, \"lattice\": \"%s\", \"angle_deg\": %.6f, "
               "\"spacing_px\": %.6f, \"strength\": %.6f}%s\n",
               gr->y, gr->x,
               gr->crystalline ? (gr->hexagonal ? "hexagonal" : "square") : "amorphous",
               gr->angle * 180.0 / PI, gr->spacing, gr->strength, g + 1 < d.n_grains ? "," : "");
    }
    printf("  ],\n");
    printf("  \"bragg\": {\"fraction\": %.17g, \"g0_px\": %.17g},\n", d.bragg_frac, d.bragg_g0);
    printf("  \"background\": {\"fraction\": %.17g, \"q0_px\": %.17g, \"profile\": "
           "\"1/(1+(q/q0)^2)\"},\n",
           d.bg_frac, d.bg_q0);
    printf("  \"amorphous_ring\": {\"fraction\": %.17g, \"q_px\": %.17g, \"width_px\": %.17g},\n",
           d.amorph_frac, d.amorph_q, d.amorph_w);
    printf(
        "  \"noise\": \"poisson (alias sampling below %d counts, normal approximation above)\",\n",
        POISSON_NORMAL_ABOVE);
    printf("  \"suggested\": {\"com\": {\"cy\": %.17g, \"cx\": %.17g, \"r\": %.17g}, "
           "\"annular\": {\"cy\": %.17g, \"cx\": %.17g, \"ri\": %.17g, \"ro\": %.17g}}\n",
           d.cy, d.cx, d.radius + d.shift_amp + 1, d.cy, d.cx, d.radius + d.shift_amp + 2,
           (double)(d.sy < d.sx ? d.sy : d.sx) / 2.0);
    printf("}\n");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Random data                                                               */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int size;
    char kind; /* 'u', 'i', 'f' */
} dtype_info_t;

static const dtype_info_t DTYPES[] = {
    {"u1", 1, 'u'}, {"u2", 2, 'u'}, {"u4", 4, 'u'}, {"u8", 8, 'u'}, {"i1", 1, 'i'},
    {"i2", 2, 'i'}, {"i4", 4, 'i'}, {"i8", 8, 'i'}, {"f4", 4, 'f'}, {"f8", 8, 'f'},
};

static void store(uint8_t *o, uint64_t bits, int size, bool big)
{
    for (int b = 0; b < size; b++) {
        int shift = 8 * (big ? size - 1 - b : b);
        o[b] = (uint8_t)(bits >> shift);
    }
}

static int cmd_random(const args_t *a)
{
    if (a->ndim == 0)
        usage_error("'random' needs --shape A,B,...");
    if (a->dtype == NULL)
        usage_error("'random' needs --dtype (u1 u2 u4 u8 i1 i2 i4 i8 f4 f8)");
    const dtype_info_t *dt = NULL;
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, a->dtype) == 0)
            dt = &DTYPES[i];
    if (!dt)
        usage_error("--dtype: unknown dtype '%s' (expected u1 u2 u4 u8 i1 i2 i4 i8 f4 f8)",
                    a->dtype);

    uint64_t count = 1;
    for (int i = 0; i < a->ndim; i++)
        count = checked_mul(count, a->shape[i], "--shape");
    uint64_t total = checked_mul(count, (uint64_t)dt->size, "--shape");

    /* Integer range [lo, hi] as signed 128-bit-free arithmetic: keep lo as
     * int64 for signed, uint64 for unsigned types. */
    double lo, hi;
    if (dt->kind == 'f') {
        lo = 0.0;
        hi = 1.0;
    } else if (dt->kind == 'u') {
        lo = 0.0;
        hi = dt->size == 8 ? 4294967295.0 : ldexp(1.0, 8 * dt->size) - 1.0;
    } else {
        int bits = dt->size == 8 ? 32 : 8 * dt->size;
        lo = -ldexp(1.0, bits - 1);
        hi = ldexp(1.0, bits - 1) - 1.0;
    }
    if (a->has_range) {
        if (dt->kind != 'f') {
            double tlo = dt->kind == 'u' ? 0.0 : -ldexp(1.0, 8 * dt->size - 1);
            double thi = dt->kind == 'u' ? ldexp(1.0, 8 * dt->size) - 1.0
                                         : ldexp(1.0, 8 * dt->size - 1) - 1.0;
            if (a->range_lo != floor(a->range_lo) || a->range_hi != floor(a->range_hi))
                usage_error("--range: integer dtype %s needs integer bounds, found '%s'", dt->name,
                            a->range_text);
            if (a->range_lo < tlo || a->range_hi > thi ||
                (dt->size == 8 && (fabs(a->range_lo) > 0x1p53 || fabs(a->range_hi) > 0x1p53)))
                usage_error("--range: '%s' does not fit dtype %s", a->range_text, dt->name);
        }
        lo = a->range_lo;
        hi = a->range_hi;
    }

    double t_start = now_s();
    rng_t rng;
    rng_init(&rng, a->seed);
    size_t chunk_elems = CHUNK_BYTES / (size_t)dt->size;
    uint8_t *chunk = xmalloc(chunk_elems * (size_t)dt->size);
    FILE *f = open_out(a->out);
    uint64_t done = 0;
    uint64_t span_minus_1 = (uint64_t)(hi - lo); /* exact: |bounds| <= 2^53 or full 32 bit */
    while (done < count) {
        size_t n = (size_t)(count - done < chunk_elems ? count - done : chunk_elems);
        for (size_t i = 0; i < n; i++) {
            uint64_t bits;
            if (dt->kind == 'f') {
                double v = lo + (hi - lo) * rng_uniform(&rng);
                if (dt->size == 4) {
                    float fv = (float)v;
                    if (fv >= (float)hi && hi > lo)
                        fv = nextafterf((float)hi, (float)lo);
                    uint32_t u;
                    memcpy(&u, &fv, 4);
                    bits = u;
                } else {
                    memcpy(&bits, &v, 8);
                }
            } else if (dt->kind == 'u') {
                bits = (uint64_t)lo + rng_range_u64(&rng, span_minus_1);
            } else {
                int64_t v = (int64_t)lo + (int64_t)rng_range_u64(&rng, span_minus_1);
                bits = (uint64_t)v;
            }
            store(chunk + i * (size_t)dt->size, bits, dt->size, a->big_endian);
        }
        write_all(f, a->out, chunk, n * (size_t)dt->size);
        done += n;
    }
    close_out(f, a->out);
    free(chunk);

    fprintf(stderr, "tsr-gen: wrote %s: random %s%s, shape ", a->out, a->big_endian ? ">" : "<",
            dt->name);
    for (int i = 0; i < a->ndim; i++)
        fprintf(stderr, "%s%" PRIu64, i ? "x" : "", a->shape[i]);
    fprintf(stderr, ", range [%.17g, %.17g%c, %" PRIu64 " bytes, seed %" PRIu64 " in %.2f s\n", lo,
            hi, dt->kind == 'f' ? ')' : ']', total, a->seed, now_s() - t_start);
    return 0;
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc < 2)
        usage_error("missing command (demo, demo-info or random)");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    args_t a;
    if (strcmp(cmd, "demo") == 0) {
        parse_args(cmd, argc, argv, &a, true);
        return cmd_demo(&a);
    }
    if (strcmp(cmd, "demo-info") == 0) {
        parse_args(cmd, argc, argv, &a, false);
        return cmd_demo_info(&a);
    }
    if (strcmp(cmd, "random") == 0) {
        parse_args(cmd, argc, argv, &a, true);
        return cmd_random(&a);
    }
    usage_error("unknown command '%s' (expected demo, demo-info or random)", cmd);
    return 2;
}
