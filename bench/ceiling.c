/*
 * ceiling.c — the ceiling baseline of the benchmark: the fastest honest way
 * to touch every byte of a file of u16 frames and sum them, with no engine.
 *
 *   ceiling PATH --frame-bytes B [--offset BYTES] [--frames N] [--threads T]
 *           [--block BYTES] [--method pread|mmap] [--unroll 1|8] [--no-fadvise]
 *           [--warmup N] [--repeat N] [--case LABEL]
 *
 * The frames (little-endian u16, B bytes each, starting at --offset) are
 * split into T contiguous shares, one per thread.  Each thread advises the
 * kernel of sequential access (posix_fadvise SEQUENTIAL on its share), then
 * preads its share in blocks of --block bytes (default 1 MiB, rounded down
 * to whole frames) into its own 64-byte-aligned buffer and adds every frame
 * into its own 64-byte-aligned u32 accumulator of one frame.  With
 * --unroll 8 (the default) eight frames are added in registers before the
 * accumulator is touched — the same trick as the engine's `sum` kernel, so
 * the ceiling is at least as clever as the thing it bounds.  The u32
 * accumulator is folded into a u64 one every 65536 frames (65536 · 65535 <
 * 2^32), and at the end the threads' u64 accumulators are added into one
 * frame-sized result, as a reduction would merge them.
 *
 * --method mmap is a second reference, not the ceiling: the file is mapped
 * (MADV_SEQUENTIAL) anew for each repetition, inside the timed region, and
 * each thread sums its share straight from the mapping; this shows the cost
 * of faulting the page cache into the address space instead of copying it.
 *
 * Timed: thread creation to the end of the reduction, per repetition, on the
 * monotonic clock (buffers are allocated by each thread inside the timed
 * region, as a per-worker buffer would be).  Output: one JSON line with the
 * same fields as tsr-bench (min/median/max seconds, GB/s = 1e9 bytes/s of
 * frame bytes, and "checksum": the total of every pixel).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_REPEAT 1000
#define FLUSH_FRAMES 65536

typedef struct job {
    /* in */
    int fd;
    const unsigned char *map; /* --method mmap */
    int64_t off;              /* first byte of the share */
    int64_t frames;           /* frames in the share */
    size_t frame_bytes;
    size_t block_frames;
    int unroll;
    bool fadvise;
    /* out */
    uint64_t *acc64; /* frame-sized, owned by the job */
    int err;
} job_t;

/* ---- kernels ------------------------------------------------------------ */

/* acc[p] += Σ_f src[f][p] over n frames of len pixels. */
static void add_frames(uint32_t *restrict acc, const uint16_t *restrict src, size_t n, size_t len,
                       int unroll)
{
    size_t f = 0;
    if (unroll == 8)
        for (; f + 8 <= n; f += 8) {
            const uint16_t *restrict s = src + f * len;
            for (size_t p = 0; p < len; p++)
                acc[p] += (uint32_t)s[p] + s[p + len] + s[p + 2 * len] + s[p + 3 * len] +
                          s[p + 4 * len] + s[p + 5 * len] + s[p + 6 * len] + s[p + 7 * len];
        }
    for (; f < n; f++) {
        const uint16_t *restrict s = src + f * len;
        for (size_t p = 0; p < len; p++)
            acc[p] += s[p];
    }
}

static void flush(uint64_t *restrict acc64, uint32_t *restrict acc, size_t len)
{
    for (size_t p = 0; p < len; p++) {
        acc64[p] += acc[p];
        acc[p] = 0;
    }
}

/* ---- worker ------------------------------------------------------------- */

static void *worker(void *arg)
{
    job_t *j = arg;
    const size_t len = j->frame_bytes / 2;
    const size_t block = j->block_frames * j->frame_bytes;
    uint32_t *acc = aligned_alloc(64, (len * 4 + 63) / 64 * 64);
    unsigned char *buf = j->map ? NULL : aligned_alloc(64, (block + 63) / 64 * 64);
    j->acc64 = calloc(len, sizeof *j->acc64);
    if (!acc || !j->acc64 || (!j->map && !buf)) {
        j->err = ENOMEM;
        goto out;
    }
    memset(acc, 0, len * 4);
    if (j->fadvise && !j->map)
        posix_fadvise(j->fd, j->off, j->frames * (int64_t)j->frame_bytes, POSIX_FADV_SEQUENTIAL);

    int64_t done = 0, since_flush = 0;
    while (done < j->frames) {
        size_t n = j->block_frames;
        if ((int64_t)n > j->frames - done)
            n = (size_t)(j->frames - done);
        const int64_t off = j->off + done * (int64_t)j->frame_bytes;
        const void *src;
        if (j->map) {
            src = j->map + off;
        } else {
            size_t got = 0, want = n * j->frame_bytes;
            while (got < want) {
                ssize_t r = pread(j->fd, buf + got, want - got, off + (off_t)got);
                if (r <= 0) {
                    j->err = r < 0 ? errno : EIO;
                    goto out;
                }
                got += (size_t)r;
            }
            src = buf;
        }
        if (since_flush + (int64_t)n > FLUSH_FRAMES) {
            flush(j->acc64, acc, len);
            since_flush = 0;
        }
        add_frames(acc, src, n, len, j->unroll);
        since_flush += (int64_t)n;
        done += (int64_t)n;
    }
    flush(j->acc64, acc, len);
out:
    free(acc);
    free(buf);
    return NULL;
}

/* ---- main --------------------------------------------------------------- */

/* A JSON string literal of s (quotes, backslashes, control characters escaped). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static void usage(void)
{
    fputs("usage: ceiling PATH --frame-bytes B [--offset BYTES] [--frames N] [--threads T]\n"
          "               [--block BYTES] [--method pread|mmap] [--unroll 1|8] [--no-fadvise]\n"
          "               [--warmup N] [--repeat N] [--case LABEL]\n",
          stderr);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *label = "ceiling", *method = "pread";
    int64_t frame_bytes = 0, offset = 0, frames = -1, threads = 1, block = 1 << 20, unroll = 8;
    int64_t warmup = 1, repeat = 5;
    bool fadvise = true;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (a[0] != '-') {
            path = a;
            continue;
        }
        if (!strcmp(a, "--no-fadvise")) {
            fadvise = false;
            continue;
        }
        if (!v) {
            fprintf(stderr, "ceiling: %s needs a value\n", a);
            usage();
            return 2;
        }
        if (!strcmp(a, "--frame-bytes"))
            ok = parse_int(v, 2, INT64_MAX, &frame_bytes) && frame_bytes % 2 == 0;
        else if (!strcmp(a, "--offset"))
            ok = parse_int(v, 0, INT64_MAX, &offset);
        else if (!strcmp(a, "--frames"))
            ok = parse_int(v, 0, INT64_MAX, &frames);
        else if (!strcmp(a, "--threads"))
            ok = parse_int(v, 1, MAX_THREADS, &threads);
        else if (!strcmp(a, "--block"))
            ok = parse_int(v, 1, INT64_MAX, &block);
        else if (!strcmp(a, "--unroll"))
            ok = parse_int(v, 1, 8, &unroll) && (unroll == 1 || unroll == 8);
        else if (!strcmp(a, "--warmup"))
            ok = parse_int(v, 0, MAX_REPEAT, &warmup);
        else if (!strcmp(a, "--repeat"))
            ok = parse_int(v, 1, MAX_REPEAT, &repeat);
        else if (!strcmp(a, "--method"))
            ok = !strcmp(method = v, "pread") || !strcmp(v, "mmap");
        else if (!strcmp(a, "--case"))
            label = v;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "ceiling: bad option or value: %s %s\n", a, v);
            usage();
            return 2;
        }
        i++;
    }
    if (!path || frame_bytes == 0) {
        usage();
        return 2;
    }

    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        fprintf(stderr, "ceiling: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (frames < 0)
        frames = (st.st_size - offset) / frame_bytes;
    if (offset + frames * frame_bytes > st.st_size) {
        fprintf(stderr, "ceiling: %s holds %lld bytes, fewer than %lld frames of %lld\n", path,
                (long long)st.st_size, (long long)frames, (long long)frame_bytes);
        return 1;
    }
    size_t block_frames = (size_t)(block / frame_bytes);
    if (block_frames == 0)
        block_frames = 1;

    const size_t len = (size_t)frame_bytes / 2;
    uint64_t *total = calloc(len, sizeof *total);
    double times[MAX_REPEAT];
    uint64_t checksum = 0;
    job_t jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    if (!total) {
        fprintf(stderr, "ceiling: out of memory\n");
        return 1;
    }

    for (int64_t r = 0; r < warmup + repeat; r++) {
        double t0 = now_s();
        const unsigned char *map = NULL;
        if (!strcmp(method, "mmap")) {
            /* mapped anew each time, so every repetition pays the faults */
            void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) {
                fprintf(stderr, "ceiling: mmap %s: %s\n", path, strerror(errno));
                return 1;
            }
            madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
            map = m;
        }
        for (int64_t t = 0; t < threads; t++) {
            int64_t f0 = frames * t / threads, f1 = frames * (t + 1) / threads;
            jobs[t] = (job_t){.fd = fd,
                              .map = map,
                              .off = offset + f0 * frame_bytes,
                              .frames = f1 - f0,
                              .frame_bytes = (size_t)frame_bytes,
                              .block_frames = block_frames,
                              .unroll = (int)unroll,
                              .fadvise = fadvise};
            if (pthread_create(&tid[t], NULL, worker, &jobs[t])) {
                fprintf(stderr, "ceiling: cannot start a thread\n");
                return 1;
            }
        }
        memset(total, 0, len * sizeof *total);
        int err = 0;
        for (int64_t t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            if (jobs[t].err)
                err = jobs[t].err;
            else
                for (size_t p = 0; p < len; p++)
                    total[p] += jobs[t].acc64[p];
            free(jobs[t].acc64);
        }
        if (map)
            munmap((void *)map, (size_t)st.st_size);
        double t1 = now_s();
        if (err) {
            fprintf(stderr, "ceiling: reading %s: %s\n", path, strerror(err));
            return 1;
        }
        if (r >= warmup)
            times[r - warmup] = t1 - t0;
        if (r == 0)
            for (size_t p = 0; p < len; p++)
                checksum += total[p];
    }

    double sorted[MAX_REPEAT];
    memcpy(sorted, times, (size_t)repeat * sizeof *times);
    qsort(sorted, (size_t)repeat, sizeof *sorted, cmp_double);
    const double tmin = sorted[0], tmax = sorted[repeat - 1];
    const double tmed =
        repeat % 2 ? sorted[repeat / 2] : 0.5 * (sorted[repeat / 2 - 1] + sorted[repeat / 2]);
    const double bytes = (double)frames * (double)frame_bytes;

    printf("{\"tool\":\"ceiling\",\"case\":");
    json_str(label);
    printf(",\"method\":\"%s\",\"path\":", method);
    json_str(path);
    printf(",\"threads\":%lld,\"block_bytes\":%lld,\"unroll\":%lld,\"fadvise\":%s,"
           "\"native\":%s,\"status\":\"ok\",\"frames\":%lld,\"frame_bytes\":%lld,"
           "\"bytes\":%.0f,\"warmup\":%lld,\"repeat\":%lld,\"times_s\":[",
           (long long)threads, (long long)(block_frames * (size_t)frame_bytes), (long long)unroll,
           fadvise ? "true" : "false",
#ifdef CEILING_NATIVE
           "true",
#else
           "false",
#endif
           (long long)frames, (long long)frame_bytes, bytes, (long long)warmup, (long long)repeat);
    for (int64_t i = 0; i < repeat; i++)
        printf("%s%.6f", i ? "," : "", times[i]);
    printf("],\"min_s\":%.6f,\"median_s\":%.6f,\"max_s\":%.6f,\"gbps_median\":%.4f,"
           "\"gbps_min\":%.4f,\"gbps_max\":%.4f,\"checksum\":%llu}\n",
           tmin, tmed, tmax, bytes / tmed / 1e9, bytes / tmax / 1e9, bytes / tmin / 1e9,
           (unsigned long long)checksum);
    free(total);
    close(fd);
    return 0;
}
