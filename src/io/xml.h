/*
 * xml.h — a small, strict reader of XML metadata (the sidecar files and
 * embedded chunks some detector formats carry: EMPAD .xml, TIA .emi).
 *
 * It builds a tree of elements over the caller's text, keeping spans into
 * it (no copies): names, raw attribute text and the first run of character
 * data of each element.  Comments, processing instructions, DOCTYPE and
 * CDATA sections are skipped.  Malformed text (unclosed or mismatched tags,
 * a '<' where none belongs, nesting deeper than 64) is an error with the
 * byte offset.  Values are decoded (the five named entities and numeric
 * character references) only when asked for, into the caller's buffer.
 * Namespaces and DTDs are not interpreted.
 */
#ifndef TSR_IO_XML_H
#define TSR_IO_XML_H

#include "core/core.h"

typedef struct tsr__xml_node {
    const char *name;
    size_t name_len;
    const char *attrs; /* raw text between the name and '>' (or '/>') */
    size_t attrs_len;
    const char *text; /* the first run of character data, or NULL */
    size_t text_len;
    int parent, child, next; /* node indices; -1 for none */
} tsr__xml_node_t;

/* Node 0 is the document: its children are the top-level elements. */
typedef struct tsr__xml {
    tsr_ctx_t *ctx;
    tsr__xml_node_t *nodes;
    int n, cap;
} tsr__xml_t;

/* Parse text[0, len) (it must stay alive while x is used).  On error the
 * message (with the byte offset) goes to err and a TSR_E* code comes back;
 * x needs tsr__xml_free in every case. */
int tsr__xml_parse(tsr__xml_t *x, tsr_ctx_t *ctx, const char *text, size_t len, char *err,
                   size_t errlen);
void tsr__xml_free(tsr__xml_t *x);

/* The first child of node named name (any name if NULL), or -1. */
int tsr__xml_child(const tsr__xml_t *x, int node, const char *name);
/* The next sibling of node with the same name as node, or -1. */
int tsr__xml_next(const tsr__xml_t *x, int node);
/* Follow a '/'-separated path of child names from node ("a/b/c"), taking
 * the first child of each name; -1 if one is missing. */
int tsr__xml_path(const tsr__xml_t *x, int node, const char *path);
/* The first child of node named name whose attribute attr equals value. */
int tsr__xml_child_with(const tsr__xml_t *x, int node, const char *name, const char *attr,
                        const char *value);
/* The decoded, whitespace-trimmed text of node into out (n bytes, always
 * NUL-terminated, truncated if longer); false if node is -1. */
bool tsr__xml_text(const tsr__xml_t *x, int node, char *out, size_t n);
/* The decoded value of attribute attr of node into out; false if absent. */
bool tsr__xml_attr(const tsr__xml_t *x, int node, const char *attr, char *out, size_t n);
/* Whether node's name is name. */
bool tsr__xml_is(const tsr__xml_t *x, int node, const char *name);

#endif
