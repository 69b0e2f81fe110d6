#include "lwm2m_path.h"

#include <string.h>

int lwm2m_path_parse(const char *s, struct lwm2m_path *p)
{
	p->len = 0;
	if (*s == '/')
		s++;
	while (*s) {
		if (p->len == 4 || *s < '0' || *s > '9')
			return -1;
		unsigned long v = 0;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (unsigned long)(*s++ - '0');
			if (v > LWM2M_ID_MAX)
				return -1;
		}
		p->id[p->len++] = (uint16_t)v;
		if (*s == '/') {
			s++;
			if (!*s)
				return -1;
		} else if (*s) {
			return -1;
		}
	}
	return 0;
}

/* By hand rather than snprintf per level: it is called for every value of every notification. */
char *lwm2m_path_str(const struct lwm2m_path *p, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	char tmp[sizeof p->id / sizeof p->id[0] * 6 + 2];
	size_t n = 0;
	if (p->len == 0)
		tmp[n++] = '/';
	for (int i = 0; i < p->len && i < 4; i++) {
		char d[5];
		int k = 0;
		unsigned v = p->id[i];
		do
			d[k++] = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		tmp[n++] = '/';
		while (k)
			tmp[n++] = d[--k];
	}
	if (n >= size) /* cut like snprintf */
		n = size - 1;
	memcpy(buf, tmp, n);
	buf[n] = 0;
	return buf;
}

int lwm2m_path_covers(const struct lwm2m_path *a, const struct lwm2m_path *b)
{
	if (a->len > b->len)
		return 0;
	for (int i = 0; i < a->len; i++)
		if (a->id[i] != b->id[i])
			return 0;
	return 1;
}
