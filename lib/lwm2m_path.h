/* LwM2M paths: /Object[/Instance[/Resource[/ResourceInstance]]]. */
#ifndef LWM2M_PATH_H
#define LWM2M_PATH_H

#include <stddef.h>
#include <stdint.h>

#define LWM2M_ID_MAX 65534 /* 65535 is reserved (MAX_ID) */

struct lwm2m_path {
	int len;         /* 0 (root "/") to 4 */
	uint16_t id[4];  /* object, instance, resource, resource instance */
};

/* Parse "/3/0/9" (or "3/0/9"); 0, or -1 if malformed or an id is out of range. */
int lwm2m_path_parse(const char *s, struct lwm2m_path *p);
/* Format into buf ("/3/0/9"; "/" for the root). Returns buf. */
char *lwm2m_path_str(const struct lwm2m_path *p, char *buf, size_t size);
/* 1 if a is b or an ancestor of b. */
int lwm2m_path_covers(const struct lwm2m_path *a, const struct lwm2m_path *b);

#define LWM2M_PATH_STRLEN 32

#endif
