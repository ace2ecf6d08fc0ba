/*
 * blo.c — NanoMegas ASTAR blockfiles (.blo).
 *
 * Layout (little-endian), as documented by HyperSpy's and LiberTEM's readers
 * and checked on the sample files:
 *
 *   0    "IMGBLO"                      6 bytes
 *   6    magic u16                     0x0102 (classic) or 0x0103 (newer)
 *   8    Data_offset_1 u32             virtual bright-field image (NX*NY)
 *   12   Data_offset_2 u32             first frame record
 *   16   unknown u32
 *   20   DP_SZ u16                     frames are DP_SZ x DP_SZ
 *   22   DP_rotation u16
 *   24   NX u16, 26 NY u16             scan: NY rows of NX positions
 *   28   Scan_rotation u16             1/100 degree
 *   30   SX f64, 38 SY f64             scan step, nm
 *   46   Beam_energy u32               V
 *   50   SDP u16                       detector: 100 / SDP cm per pixel
 *   52   Camera_length u32
 *   56   Acquisition_time f64          days since 1899-12-30 (UTC)
 *   64   8 + 14 f64                    centering and distortion terms
 *   240  Note: text up to Data_offset_1 (NUL padded)
 *
 * Each frame record is a 6-byte header (bytes AA 55, then the u32 image
 * number) followed by the pixels, so frames sit at a fixed stride of
 * DP_SZ^2 * bytes + 6 from Data_offset_2: one segment of the shared strided
 * reader.  Pixels are u8, or u16 when the Note of a 0x0103 file says
 * "Blo Bit Depth: 16 bits".  Where the Note says nothing, the record headers
 * decide: the bit depth whose stride puts AA 55 at the second record wins.
 * The record headers of the first, second and last images are checked.
 */
#include "io/dataset.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#define BLO_HEADER 240
#define BLO_NOTE_MAX 65536
#define BLO_REC_HDR 6

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "", "scan shape (default: NY,NX from the header)", false},
    {"sig_shape", "shape", "", "frame shape (default: DP_SZ,DP_SZ from the header)", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
};

static const char *const exts[] = {"blo", NULL};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static double rdf64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int probe(const char *path, const uint8_t *head, size_t n)
{
    if (n >= 8 && memcmp(head, "IMGBLO", 6) == 0) {
        uint16_t m = rd16(head + 6);
        return m == 0x0102 || m == 0x0103 ? 100 : 60;
    }
    /* A .blo without the signature: claim it weakly, so that open names the
     * bad field instead of "no format recognises". */
    const char *dot = strrchr(path, '.');
    return dot && strcasecmp(dot, ".blo") == 0 ? 10 : 0;
}

/* "Blo Bit Depth: 16 bits" in the Note (case-insensitive), or 0. */
static int note_bit_depth(const char *note)
{
    for (const char *line = note; line && *line;) {
        while (*line == '\r' || *line == '\n' || *line == ' ' || *line == '\t')
            line++;
        const char *key = "blo bit depth";
        size_t k = strlen(key);
        if (strncasecmp(line, key, k) == 0) {
            const char *p = line + k;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == ':') {
                char *end;
                long v = strtol(p + 1, &end, 10);
                while (*end == ' ')
                    end++;
                if (end != p + 1 && strncasecmp(end, "bit", 3) == 0)
                    return (int)v;
            }
        }
        line = strpbrk(line, "\r\n");
    }
    return 0;
}

/* Whether the record header of image i (0-based) starts with AA 55. */
static int record_ok(const tsr__file_t *f, int64_t off2, int64_t stride, int64_t i, bool *ok,
                     uint8_t found[2])
{
    int64_t at = off2 + i * stride;
    *ok = false;
    if (at + BLO_REC_HDR > f->size)
        return 0;
    uint8_t b[BLO_REC_HDR];
    if (tsr__file_pread(f, b, sizeof b, at))
        return TSR_EIO;
    found[0] = b[0];
    found[1] = b[1];
    *ok = b[0] == 0xAA && b[1] == 0x55;
    return 0;
}

/* Serial date (days since 1899-12-30, UTC) as ISO 8601, or "" if absurd. */
static void serial_date_iso(double serial, char *out, size_t n)
{
    out[0] = 0;
    if (!isfinite(serial) || serial <= 0 || serial > 2958465.0) /* 9999-12-31 */
        return;
    double secs = (serial - 25569.0) * 86400.0; /* 25569 = days to 1970-01-01 */
    time_t t = (time_t)floor(secs);
    int micro = (int)llround((secs - floor(secs)) * 1e6);
    if (micro >= 1000000) {
        t += 1;
        micro -= 1000000;
    }
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return;
    char buf[40];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%06dZ", buf, micro);
}

static json_t *axis(const char *name, double scale, const char *units)
{
    return json_pack("{s:s, s:f, s:f, s:s}", "name", name, "scale", scale, "offset", 0.0, "units",
                     units);
}

static int open_blo(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    int file = tsr__dataset_add_file(a, a->path);
    if (file < 0)
        return file;
    const tsr__file_t *f = &ds->files[file];
    uint8_t h[BLO_HEADER];
    if (f->size < BLO_HEADER)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: truncated blockfile: the header needs %d bytes, the file has %lld",
                           a->path, BLO_HEADER, (long long)f->size);
    if (tsr__file_pread(f, h, sizeof h, 0))
        return tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the header", a->path);
    if (memcmp(h, "IMGBLO", 6) != 0) {
        char found[32];
        size_t k = 0;
        for (int i = 0; i < 6 && k + 5 < sizeof found; i++)
            k += (size_t)snprintf(found + k, sizeof found - k, isprint(h[i]) ? "%c" : "\\x%02x",
                                  h[i]);
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: not a blockfile: ID is '%s', expected 'IMGBLO'", a->path, found);
    }
    unsigned magic = rd16(h + 6);
    if (magic != 0x0102 && magic != 0x0103)
        return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                           "%s: blockfile MAGIC is 0x%04x, expected 0x0102 or 0x0103", a->path,
                           magic);
    int64_t off1 = rd32(h + 8), off2 = rd32(h + 12);
    int64_t dp = rd16(h + 20), nx = rd16(h + 24), ny = rd16(h + 26);
    if (dp == 0 || nx == 0 || ny == 0)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: blockfile header: DP_SZ = %lld, NX = %lld, NY = %lld; all must "
                           "be at least 1",
                           a->path, (long long)dp, (long long)nx, (long long)ny);
    if (off1 < BLO_HEADER || off1 > f->size)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: blockfile Data_offset_1 = %lld, expected %d to %lld (the file "
                           "size)",
                           a->path, (long long)off1, BLO_HEADER, (long long)f->size);
    if (off2 < off1 || off2 > f->size)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: blockfile Data_offset_2 = %lld, expected %lld (Data_offset_1) to "
                           "%lld (the file size)",
                           a->path, (long long)off2, (long long)off1, (long long)f->size);

    /* The Note. */
    size_t note_len = (size_t)(off1 - BLO_HEADER);
    if (note_len > BLO_NOTE_MAX)
        note_len = BLO_NOTE_MAX;
    char *note = tsr__malloc(a->ctx, note_len + 1);
    if (!note)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    if (note_len && tsr__file_pread(f, note, note_len, BLO_HEADER)) {
        tsr__free(a->ctx, note);
        return tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the Note", a->path);
    }
    note[note_len] = 0;
    /* Latin-1 text: keep ASCII, replace the rest, so that it is valid JSON. */
    for (size_t i = 0; i < note_len && note[i]; i++)
        if ((unsigned char)note[i] >= 0x80 ||
            ((unsigned char)note[i] < 0x20 && !strchr("\r\n\t", note[i])))
            note[i] = '?';

    int rc = 0;
    int bits = note_bit_depth(note);
    int64_t npix = dp * dp, nimg = nx * ny, stride = 0;
    uint8_t found[2] = {0, 0};
    bool ok;
    if (bits != 0 && bits != 8 && bits != 16) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: blockfile Note says 'Blo Bit Depth: %d bits'; 8 and 16 are "
                         "supported",
                         a->path, bits);
        goto done;
    }
    /* Record 0 must start with AA 55 at Data_offset_2. */
    if ((rc = record_ok(f, off2, 0, 0, &ok, found)))
        goto ioerr;
    if (!ok) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         off2 + BLO_REC_HDR > f->size
                             ? "%s: truncated blockfile: no frame at Data_offset_2 = %lld (file "
                               "size %lld)"
                             : "%s: blockfile frame record 0 at Data_offset_2 = %lld (file size "
                               "%lld) does not start with AA 55 (found %02X %02X)",
                         a->path, (long long)off2, (long long)f->size, found[0], found[1]);
        goto done;
    }
    if (bits == 0) {
        /* No bit depth in the Note: the stride that finds record 1 wins. */
        bits = 8;
        if (nimg > 1) {
            bool ok16 = false;
            if ((rc = record_ok(f, off2, npix + BLO_REC_HDR, 1, &ok, found)))
                goto ioerr;
            if (!ok && (rc = record_ok(f, off2, 2 * npix + BLO_REC_HDR, 1, &ok16, found)))
                goto ioerr;
            if (ok16)
                bits = 16;
        }
    }
    stride = npix * (bits / 8) + BLO_REC_HDR;
    int64_t avail = (f->size - off2) / stride;
    ds->image_count = avail < nimg ? avail : nimg;
    /* The second and the last record present must start with AA 55. */
    int64_t checks[2] = {1, ds->image_count - 1};
    for (int c = 0; c < 2; c++) {
        int64_t i = checks[c];
        if (i < 1 || i >= ds->image_count)
            continue;
        if ((rc = record_ok(f, off2, stride, i, &ok, found)))
            goto ioerr;
        if (!ok) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: blockfile frame record %lld at byte %lld does not start with "
                             "AA 55 (found %02X %02X): DP_SZ = %lld at %d bits per pixel does "
                             "not match the data",
                             a->path, (long long)i, (long long)(off2 + i * stride), found[0],
                             found[1], (long long)dp, bits);
            goto done;
        }
    }
    ds->dtype = bits == 16 ? TSR_U16 : TSR_U8;
    ds->big_endian = false;
    tsr_shape_t nav = {.ndim = 2, .dims = {ny, nx}}, sig = {.ndim = 2, .dims = {dp, dp}};
    if (ds->image_count < nimg && !tsr_params_get(a->params, "nav_shape")) {
        char need[32]; /* the sizes may need more than 63 bits */
        int64_t nb;
        if (tsr__mul_i64(nimg, stride, &nb))
            snprintf(need, sizeof need, "%lld", (long long)nb);
        else
            snprintf(need, sizeof need, "%.4g", (double)nimg * (double)stride);
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: truncated blockfile: NY x NX = %lld x %lld frames of %lld x %lld "
                         "%s (+%d header bytes each) need %s bytes from Data_offset_2 = %lld, "
                         "the file has %lld (%lld whole frames; set nav_shape to read them)",
                         a->path, (long long)ny, (long long)nx, (long long)dp, (long long)dp,
                         bits == 16 ? "u16" : "u8", BLO_REC_HDR, need, (long long)off2,
                         (long long)(f->size - off2), (long long)avail);
        goto done;
    }
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        goto done;
    if ((rc = tsr__dataset_add_segment(a, file, 0, ds->image_count, off2 + BLO_REC_HDR, stride)))
        goto done;

    /* Metadata. */
    double sx = rdf64(h + 30), sy = rdf64(h + 38), serial = rdf64(h + 56);
    unsigned sdp = rd16(h + 50);
    char when[64];
    serial_date_iso(serial, when, sizeof when);
    json_t *hdr = json_pack(
        "{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:f, s:i, s:s}",
        "magic", (int)magic, "data_offset_1", (json_int_t)off1, "data_offset_2", (json_int_t)off2,
        "unknown1", (json_int_t)rd32(h + 16), "dp_sz", (json_int_t)dp, "dp_rotation",
        (json_int_t)rd16(h + 22), "nx", (json_int_t)nx, "ny", (json_int_t)ny, "scan_rotation",
        (json_int_t)rd16(h + 28), "sx", isfinite(sx) ? sx : 0.0, "sy", isfinite(sy) ? sy : 0.0,
        "beam_energy", (json_int_t)rd32(h + 46), "sdp", (json_int_t)sdp, "camera_length",
        (json_int_t)rd32(h + 52), "acquisition_time", isfinite(serial) ? serial : 0.0, "bit_depth",
        bits, "note", note);
    json_t *m =
        json_pack("{s:o, s:s, s:f, s:f}", "header", hdr, "detector", "NanoMegas ASTAR (blockfile)",
                  "beam_energy_keV", rd32(h + 46) * 1e-3, "scan_rotation_deg", rd16(h + 28) * 1e-2);
    if (m && when[0])
        json_object_set_new(m, "acquisition_time", json_string(when));
    if (m) {
        json_t *navc = json_pack("[o, o]", axis("y", isfinite(sy) ? sy : 1.0, "nm"),
                                 axis("x", isfinite(sx) ? sx : 1.0, "nm"));
        json_t *cal = json_pack("{s:o}", "nav", navc);
        /* SDP = 0: the file holds no detector calibration. */
        if (cal && sdp)
            json_object_set_new(
                cal, "sig",
                json_pack("[o, o]", axis("dy", 100.0 / sdp, "cm"), axis("dx", 100.0 / sdp, "cm")));
        json_object_set_new(m, "calibration", cal);
    }
    rc = tsr__dataset_set_meta(a, m);
    goto done;
ioerr:
    rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read a frame record header", a->path);
done:
    tsr__free(a->ctx, note);
    return rc;
}

const tsr__reader_def_t tsr__format_blo = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "blo",
    .description = "NanoMegas ASTAR blockfile (.blo): 8- or 16-bit frames with 6-byte record "
                   "headers",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_blo,
};
