#include "lwm2m_path.h"

#include <stdio.h>

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

char *lwm2m_path_str(const struct lwm2m_path *p, char *buf, size_t size)
{
	size_t n = 0;
	if (p->len == 0)
		snprintf(buf, size, "/");
	for (int i = 0; i < p->len && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "/%u", p->id[i]);
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
