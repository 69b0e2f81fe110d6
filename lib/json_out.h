/* Compact JSON text of a jv, byte for byte what jv_dump_string(v, 0) of libjq 1.6 gives (keys
 * in jq's iteration order, jq's number formatting and string escapes), written straight into a
 * buffer or a FILE. jq's own dump appends to a jv string piece by piece (or calls fwrite(3) once
 * per character) and runs its bignum dtoa for every number: it cost more than everything else a
 * filter does with a line. */
#ifndef JSON_OUT_H
#define JSON_OUT_H

#include <jv.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* A growable byte buffer. Zero-initialise; free p when done. */
struct jbuf {
	char *p;
	size_t len, cap;
	int failed; /* an allocation failed: the content is incomplete */
	int borrowed; /* p is the caller's (a stack array of cap bytes), not from malloc */
};

/* Append v's JSON text (v borrowed) to b. 0, or -1 when memory ran out. */
int json_out_append(struct jbuf *b, jv v);
/* Append s[0..n) as a JSON string. 0 or -1. */
int json_out_string(struct jbuf *b, const char *s, size_t n);
/* Append the C string s[0..n) as jv_string_sized(s, n) would print: bytes that are not valid
 * UTF-8 become U+FFFD as jq makes them (ASCII, the common case, without a jv). 0 or -1. */
int json_out_cstring(struct jbuf *b, const char *s, size_t n);
/* Append d as jq prints a number. 0 or -1. */
int json_out_number(struct jbuf *b, double d);
/* Append raw bytes. 0 or -1. Inline while they fit (many small pieces a line: shadow-put's
 * documents call it ~100 times an update); jbuf_grow_add otherwise. */
int jbuf_grow_add(struct jbuf *b, const char *s, size_t n);
static inline int jbuf_add(struct jbuf *b, const char *s, size_t n)
{
	if (b->failed || b->len + n > b->cap)
		return jbuf_grow_add(b, s, n);
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}
/* Append a string literal. */
#define JBUF_LIT(b, lit) jbuf_add(b, lit, sizeof lit - 1)
/* Write v's JSON text (v borrowed) to f, unflushed. 0, or -1 on a write error. */
int json_out_fput(FILE *f, jv v);
/* The length of v's JSON text (v borrowed), without building it. */
size_t json_out_len(jv v);

#endif
