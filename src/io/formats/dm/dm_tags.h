/*
 * dm_tags.h — the tag tree of Gatan DigitalMicrograph DM3 and DM4 files.
 *
 * A DM file is a header (version, size, byte order) followed by one root tag
 * group.  A group holds named or unnamed entries, each either a group or a
 * data tag; a data tag carries a type description (the "info array") and its
 * value: a simple number, a string, a struct of numbers or an array.  Sizes
 * and type descriptions are big-endian, 4 bytes wide in DM3 and 8 in DM4;
 * values are in the byte order the header names.
 *
 * tsr__dm_parse reads the whole tree into memory without reading large
 * arrays (such as the pixel data): for those it keeps the file offset and
 * byte size.  Short arrays of 16-bit characters (DM's strings) are decoded
 * to UTF-8.  Every size is checked against the file before it is used, so
 * malformed files give an error naming the tag, never a crash.
 */
#ifndef TSR_FORMATS_DM_TAGS_H
#define TSR_FORMATS_DM_TAGS_H

#include "core/core.h"
#include "platform/os.h"

/* Encoded element types of DM tags. */
enum {
    TSR__DM_SHORT = 2,
    TSR__DM_LONG = 3,
    TSR__DM_USHORT = 4,
    TSR__DM_ULONG = 5,
    TSR__DM_FLOAT = 6,
    TSR__DM_DOUBLE = 7,
    TSR__DM_BOOL = 8,
    TSR__DM_CHAR = 9,
    TSR__DM_OCTET = 10,
    TSR__DM_INT64 = 11,
    TSR__DM_UINT64 = 12,
    TSR__DM_STRUCT = 15,
    TSR__DM_STRING = 18,
    TSR__DM_ARRAY = 20,
};

typedef enum {
    TSR__DM_NODE_GROUP,
    TSR__DM_NODE_VALUE,  /* one simple number */
    TSR__DM_NODE_STRING, /* type 18: bytes */
    TSR__DM_NODE_STRUCT, /* a struct of simple numbers */
    TSR__DM_NODE_ARRAY,  /* an array (of simple types, structs, strings or arrays) */
} tsr__dm_kind_t;

/* Field values kept for structs (e.g. a pixel size (x, y)). */
#define TSR__DM_STRUCT_KEEP 4

typedef struct tsr__dm_node {
    int64_t name;              /* offset into the tree's text pool ("" for unnamed) */
    int64_t str;               /* UTF-8 text (strings, short 16-bit char arrays), or -1 */
    int32_t parent;            /* -1 for the root */
    int32_t first, last, next; /* children (groups), -1 = none */
    int32_t n_children;
    tsr__dm_kind_t kind;
    int type;                           /* VALUE: simple type; ARRAY: element type */
    int64_t count;                      /* ARRAY: elements; STRUCT: fields; STRING: bytes */
    int64_t offset;                     /* file offset of the value */
    int64_t bytes;                      /* byte size of the value */
    double num;                         /* VALUE: the number */
    double fields[TSR__DM_STRUCT_KEEP]; /* STRUCT: the first fields */
} tsr__dm_node_t;

typedef struct tsr__dm_tree {
    tsr_ctx_t *ctx;
    int version;           /* 3 or 4 */
    bool little_endian;    /* byte order of values */
    int64_t size_field;    /* the header's file size field */
    tsr__dm_node_t *nodes; /* nodes[0] is the root group */
    int32_t n_nodes, cap_nodes;
    char *text;
    int64_t n_text, cap_text;
} tsr__dm_tree_t;

/* Parse the file f (path for messages) into t.  Errors: TSR_ECORRUPT (with
 * the tag path, offset, expected and found values), TSR_EUNSUPPORTED (a
 * version other than 3 and 4), TSR_ENOMEM, TSR_EIO.  t is always
 * initialised; free it with tsr__dm_tree_free even on error. */
int tsr__dm_parse(tsr_ctx_t *ctx, const tsr__file_t *f, const char *path, tsr__dm_tree_t *t,
                  char *err, size_t errlen);
void tsr__dm_tree_free(tsr__dm_tree_t *t);

/* The name of a node ("" for unnamed entries). */
const char *tsr__dm_name(const tsr__dm_tree_t *t, int32_t node);
/* The text of a node, or NULL if it has none. */
const char *tsr__dm_str(const tsr__dm_tree_t *t, int32_t node);
/* The child of a group by name (first match) or by position; -1 if none. */
int32_t tsr__dm_child(const tsr__dm_tree_t *t, int32_t node, const char *name);
int32_t tsr__dm_child_at(const tsr__dm_tree_t *t, int32_t node, int64_t i);
/* Follow a NULL-terminated list of names from node; -1 if any is missing. */
int32_t tsr__dm_find_v(const tsr__dm_tree_t *t, int32_t node, const char *const *path);
#define tsr__dm_find(t, node, ...) \
    tsr__dm_find_v((t), (node), (const char *const[]){__VA_ARGS__, NULL})
/* The number at node (a VALUE), or false. */
bool tsr__dm_num(const tsr__dm_tree_t *t, int32_t node, double *out);
/* Byte size of one element of a simple type; 0 for others. */
size_t tsr__dm_simple_size(int type);

#endif
