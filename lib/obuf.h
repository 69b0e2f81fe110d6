/* A growable output buffer for encoders. Once an allocation fails err is set and later puts do
 * nothing, so callers check once at the end. */
#ifndef OBUF_H
#define OBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct obuf {
	uint8_t *p;
	size_t len, cap;
	bool err;
};

void obuf_put(struct obuf *b, const void *data, size_t n);
void obuf_byte(struct obuf *b, uint8_t c);

#endif
