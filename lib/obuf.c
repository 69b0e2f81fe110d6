#include "obuf.h"

#include <stdlib.h>
#include <string.h>

void obuf_put(struct obuf *b, const void *data, size_t n)
{
	if (b->err || n == 0)
		return;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->err = true;
				return;
			}
			cap *= 2;
		}
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->err = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void obuf_byte(struct obuf *b, uint8_t c)
{
	obuf_put(b, &c, 1);
}
