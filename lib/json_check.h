/* Strict JSON syntax check (RFC 8259) with bounded nesting, for untrusted payloads. */
#ifndef JSON_CHECK_H
#define JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0 if data is one well-formed JSON value nested at most max_depth deep; else -1 and why
 * ("expected ',' or ']' at byte 12"). */
int json_check(const uint8_t *data, size_t len, int max_depth, char *why, size_t whysize);

#endif
