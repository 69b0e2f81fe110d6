/* A small bounded CBOR (RFC 8949) reader and writer, enough for SenML CBOR, LwM2M CBOR and
 * single CBOR values. The reader never reads past its buffer, keeps no global state and reports
 * errors as static messages; nesting is bounded by the callers (they recurse, not the reader). */
#ifndef CBOR_H
#define CBOR_H

#include "obuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cbor_type {
	CBOR_UINT,   /* val */
	CBOR_NEGINT, /* the integer -1 - val */
	CBOR_BYTES,  /* str/len when definite; indef: chunks follow, read with cbor_string */
	CBOR_TEXT,
	CBOR_ARRAY,  /* val items, or indef */
	CBOR_MAP,    /* val pairs, or indef */
	CBOR_TAG,    /* val is the tag number; the tagged item follows */
	CBOR_BOOL,   /* b */
	CBOR_NULL,
	CBOR_UNDEFINED,
	CBOR_FLOAT,  /* f (half, single or double precision) */
	CBOR_SIMPLE, /* another simple value, val */
	CBOR_BREAK,  /* the end of an indefinite-length item */
};

struct cbor_item {
	enum cbor_type type;
	uint64_t val;
	bool indef;
	bool b;
	double f;
	const uint8_t *str;
	size_t len;
};

struct cbor_reader {
	const uint8_t *p, *end;
	const char *err; /* why the last call failed */
};

void cbor_reader_init(struct cbor_reader *r, const uint8_t *data, size_t len);
/* Read one item head (and a definite string's bytes). 0, or -1 with r->err. */
int cbor_read(struct cbor_reader *r, struct cbor_item *it);
/* Inside an array or map opened by it (left initialised to it->val): 1 if another element
 * (or pair) follows, 0 at the end (an indefinite item's break is consumed), -1 if truncated. */
int cbor_more(struct cbor_reader *r, const struct cbor_item *it, uint64_t *left);
/* The whole value of a string item: definite strings point into the buffer; indefinite ones are
 * concatenated into *owned (malloc'd, to free). 0 or -1. */
int cbor_string(struct cbor_reader *r, const struct cbor_item *it, const uint8_t **s, size_t *n,
                uint8_t **owned);
/* Skip the rest of the item whose head is it (its elements, chunks, tagged item). depth bounds
 * nesting. 0 or -1. */
int cbor_skip(struct cbor_reader *r, const struct cbor_item *it, int depth);
bool cbor_at_end(const struct cbor_reader *r);
/* The number whose head is it: an integer, a float, or tag 1 (epoch time) or tag 4 (decimal
 * fraction) around one. 0, or -1 if it is not a number. */
int cbor_number(struct cbor_reader *r, const struct cbor_item *it, double *d);

void cbor_put_head(struct obuf *o, int major, uint64_t v);
void cbor_put_uint(struct obuf *o, uint64_t v);
void cbor_put_int(struct obuf *o, int64_t v);
void cbor_put_bytes(struct obuf *o, const void *p, size_t n);
void cbor_put_text(struct obuf *o, const char *s, size_t n);
void cbor_put_array(struct obuf *o, size_t n);
void cbor_put_map(struct obuf *o, size_t n);
void cbor_put_bool(struct obuf *o, bool b);
void cbor_put_null(struct obuf *o);
/* The shortest of half, single and double precision that holds d exactly. */
void cbor_put_float(struct obuf *o, double d);

#endif
