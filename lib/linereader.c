#include "linereader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lr_init(struct linereader *r, int fd, size_t max_line)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->max_line = max_line ? max_line : LR_DEFAULT_MAX;
}

void lr_free(struct linereader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->len = r->start = 0;
}

ssize_t lr_fill(struct linereader *r)
{
	if (r->start > 0 && (r->start == r->len || r->len == r->cap)) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->cap - r->len < 4096) {
		size_t ncap = r->cap ? r->cap * 2 : 8192;
		/* never grow past one max line plus a read's worth */
		if (ncap > r->max_line + 65536)
			ncap = r->max_line + 65536;
		if (ncap > r->cap) {
			char *nb = realloc(r->buf, ncap + 1);
			if (!nb)
				return -1;
			r->buf = nb;
			r->cap = ncap;
		}
	}
	ssize_t n;
	do
		n = read(r->fd, r->buf + r->len, r->cap - r->len);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		r->eof = 1;
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

int lr_next(struct linereader *r, char **line, size_t *len)
{
	for (;;) {
		char *p = r->start < r->len ? memchr(r->buf + r->start, '\n', r->len - r->start) : NULL;
		if (r->skipping) {
			if (!p) {
				r->start = r->len = 0;
				return LR_NEED_MORE;
			}
			r->start = (size_t)(p - r->buf) + 1;
			r->skipping = 0;
			continue;
		}
		if (p) {
			size_t l = (size_t)(p - (r->buf + r->start));
			*p = 0;
			*line = r->buf + r->start;
			*len = l;
			r->start += l + 1;
			r->lineno++;
			if (l > r->max_line)
				return LR_TOOLONG;
			return LR_LINE;
		}
		size_t pending = r->len - r->start;
		if (pending > r->max_line) {
			r->lineno++;
			r->skipping = 1;
			r->start = r->len = 0;
			return LR_TOOLONG;
		}
		if (r->eof && pending > 0) {
			r->buf[r->len] = 0;
			*line = r->buf + r->start;
			*len = pending;
			r->start = r->len;
			r->lineno++;
			return LR_LINE;
		}
		return LR_NEED_MORE;
	}
}

int lr_getline(struct linereader *r, char **line, size_t *len)
{
	for (;;) {
		int k = lr_next(r, line, len);
		if (k != LR_NEED_MORE)
			return k;
		if (r->eof)
			return 0;
		ssize_t n = lr_fill(r);
		if (n < 0 && errno != EAGAIN)
			return -1;
	}
}
