/* JSON lines with libjq's jv: parse one record per line, write one record per line. */
#ifndef JSONL_H
#define JSONL_H

#include <jv.h>
#include <stdio.h>

/* Parse a line that must hold exactly one JSON object. On failure: jv_invalid_with_msg with a
 * message fit for a log line ("malformed JSON: ...", "not a JSON object"). */
jv jsonl_parse_object(const char *line, size_t len);
/* Write v (consumed) compactly plus a newline to f and flush. 0, or -1 if the write failed. */
int jsonl_write(FILE *f, jv v);
/* The same without the flush, for a fully buffered f (a JSONL_BUFSIZE buffer, see
 * stdout_full_buffer) that its caller flushes before it blocks (waiting for input) or once per
 * committed batch. f is flushed before a line that would not fit: writes carry whole lines. */
int jsonl_put(FILE *f, jv v);
#define JSONL_BUFSIZE (1u << 16)
/* The same for a line already in JSON text, newline included. */
int jsonl_put_text(FILE *f, const char *line, size_t len);
/* The same to a file descriptor (sockets, pipes), writing fully. 0, or -1 with errno. */
int jsonl_write_fd(int fd, jv v);

struct linereader;
enum { JSONL_NONE = 0, JSONL_OBJECT = 1, JSONL_BAD = 2 };
/* Take r's next buffered line as a JSON object: JSONL_OBJECT with *out set; JSONL_BAD for a
 * line that was too long or malformed (already logged as a warning with its line number);
 * JSONL_NONE when no complete line is buffered. */
int jsonl_next_object(struct linereader *r, jv *out);

/* Borrowing getters on an object that stays alive: NULL/def when missing or of another kind. */
const char *jl_str(jv obj, const char *key);
double jl_num(jv obj, const char *key, double def);
int jl_has(jv obj, const char *key);
/* New reference to obj[key] (jv_invalid() when missing); obj is not consumed. */
jv jl_get(jv obj, const char *key);
/* A string jv for a message built like printf. */
jv jl_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
