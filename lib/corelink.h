/* CoRE Link Format (RFC 6690) as LwM2M uses it: the Register/Update payload and Discover answers.
 * The parser never reads past the buffer, needs no NUL terminator and bounds what it keeps, so a
 * hostile payload costs at most its own size. */
#ifndef CORELINK_H
#define CORELINK_H

#include <stddef.h>
#include <stdint.h>

#define CORELINK_MAX_PARAMS 16   /* parameters kept per link; more are a format error */
#define CORELINK_MAX_LINKS 8192  /* links per payload */

struct corelink_param {
	const char *name, *value; /* value NULL for a bare parameter ("obs") */
	size_t name_len, value_len;
	int quoted;               /* value was a quoted-string (escapes left in place) */
};

struct corelink {
	const char *uri; /* between < and > */
	size_t uri_len;
	size_t nparams;
	struct corelink_param params[CORELINK_MAX_PARAMS];
};

struct corelink_iter {
	const char *p, *end;
	unsigned nlinks;
	char err[96]; /* why corelink_next returned -1 */
};

void corelink_iter_init(struct corelink_iter *it, const char *data, size_t len);
/* 1: *out holds the next link (pointers into the buffer); 0: end; -1: malformed (it->err). */
int corelink_next(struct corelink_iter *it, struct corelink *out);
/* The first parameter called name, or NULL. */
const struct corelink_param *corelink_param(const struct corelink *l, const char *name);

/* What an LwM2M client announces in its Register/Update payload. */
#define LWM2M_LINKS_MAX_CT 8
struct lwm2m_links {
	uint32_t *objects;   /* (object << 16) | instance, instance 0xffff for "/O"; sorted, unique */
	size_t nobjects;
	uint16_t ct[LWM2M_LINKS_MAX_CT]; /* content formats from the rt="oma.lwm2m" link */
	size_t nct;
	char root[64];       /* alternate path ("" for "/") */
};

#define LWM2M_LINK_NOINST 0xffffu

/* Parse a Register/Update payload. 0, or -1 with a reason in err. Links that are not object or
 * instance paths (resources, other roots) are ignored, as the spec asks servers to be lenient. */
int lwm2m_links_parse(const char *data, size_t len, struct lwm2m_links *out, char *err, size_t errlen);
void lwm2m_links_free(struct lwm2m_links *l);
/* Sort the object keys above and drop repeats; the new count. */
size_t lwm2m_objects_sort(uint32_t *objects, size_t n);

#endif
