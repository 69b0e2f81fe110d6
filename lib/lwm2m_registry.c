#include "lwm2m_registry.h"

#include "corelink.h"
#include "fsutil.h"
#include "json_out.h"
#include "jsonl.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t hash_id(uint32_t id)
{
	uint64_t x = id * 0x9E3779B97F4A7C15ULL;
	return (size_t)(x >> 20);
}

/* Registrations per source IP address, so that one address cannot fill the table with endpoint
 * names of its own making: a chained hash of the addresses that have any. */
#define IP_BUCKETS 4096
struct lwm2m_ipcount {
	struct lwm2m_ipcount *next;
	uint8_t ip[16];
	unsigned n;
};

static void ip_key(const union lwm2m_addr *a, uint8_t ip[16])
{
	memset(ip, 0, 16);
	if (a->sa.sa_family == AF_INET)
		memcpy(ip, &a->sin.sin_addr, 4);
	else if (a->sa.sa_family == AF_INET6)
		memcpy(ip, &a->sin6.sin6_addr, 16);
}

static struct lwm2m_ipcount **ip_slot(const struct lwm2m_registry *r, const uint8_t ip[16])
{
	uint64_t h = 1469598103934665603ULL;
	for (int i = 0; i < 16; i++) {
		h ^= ip[i];
		h *= 1099511628211ULL;
	}
	struct lwm2m_ipcount **pp = &r->by_ip[h % IP_BUCKETS];
	while (*pp && memcmp((*pp)->ip, ip, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

unsigned lwm2m_registry_from(const struct lwm2m_registry *r, const union lwm2m_addr *a)
{
	uint8_t ip[16];
	if (!r->by_ip)
		return 0;
	ip_key(a, ip);
	struct lwm2m_ipcount **pp = ip_slot(r, ip);
	return *pp ? (*pp)->n : 0;
}

int lwm2m_reg_counted_under(const struct lwm2m_reg *g, const union lwm2m_addr *a)
{
	uint8_t ip[16];
	ip_key(a, ip);
	return memcmp(ip, g->src, 16) == 0;
}

static void ip_count(struct lwm2m_registry *r, struct lwm2m_reg *g)
{
	if (!r->by_ip && !(r->by_ip = calloc(IP_BUCKETS, sizeof *r->by_ip)))
		die(EXIT_TEMPORARY, "unable to allocate the address table");
	ip_key(&g->addr, g->src);
	struct lwm2m_ipcount **pp = ip_slot(r, g->src);
	if (!*pp) {
		if (!(*pp = calloc(1, sizeof **pp)))
			die(EXIT_TEMPORARY, "unable to allocate the address table");
		memcpy((*pp)->ip, g->src, 16);
	}
	(*pp)->n++;
}

static void ip_uncount(struct lwm2m_registry *r, const struct lwm2m_reg *g)
{
	struct lwm2m_ipcount **pp = ip_slot(r, g->src), *c = *pp;
	if (c && --c->n == 0) {
		*pp = c->next;
		free(c);
	}
}

static size_t hash_addr(const union lwm2m_addr *a)
{
	uint64_t h = 1469598103934665603ULL;
	const uint8_t *p;
	size_t n;
	if (a->sa.sa_family == AF_INET) {
		p = (const uint8_t *)&a->sin.sin_addr;
		n = sizeof a->sin.sin_addr;
	} else {
		p = (const uint8_t *)&a->sin6.sin6_addr;
		n = sizeof a->sin6.sin6_addr;
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	h = (h ^ a->sin.sin_port) * 0x9E3779B97F4A7C15ULL; /* sin_port and sin6_port coincide */
	return (size_t)(h >> 20);
}

void lwm2m_registry_init(struct lwm2m_registry *r)
{
	memset(r, 0, sizeof *r);
	r->jfd = -1;
}

static int grow(struct lwm2m_registry *r)
{
	size_t n = r->nbuckets ? r->nbuckets * 2 : 1024;
	struct lwm2m_reg **e = calloc(n, sizeof *e), **i = calloc(n, sizeof *i), **a = calloc(n, sizeof *a);
	if (!e || !i || !a) {
		free(e);
		free(i);
		free(a);
		return -1;
	}
	for (size_t b = 0; b < r->nbuckets; b++) {
		struct lwm2m_reg *g, *next;
		for (g = r->by_ep[b]; g; g = next) {
			next = g->next_ep;
			size_t h = hash_str(g->ep) & (n - 1);
			g->next_ep = e[h];
			e[h] = g;
		}
		for (g = r->by_id[b]; g; g = next) {
			next = g->next_id;
			size_t h = hash_id(g->id) & (n - 1);
			g->next_id = i[h];
			i[h] = g;
		}
		for (g = r->by_addr[b]; g; g = next) {
			next = g->next_addr;
			size_t h = hash_addr(&g->addr) & (n - 1);
			g->next_addr = a[h];
			a[h] = g;
		}
	}
	free(r->by_ep);
	free(r->by_id);
	free(r->by_addr);
	r->by_ep = e;
	r->by_id = i;
	r->by_addr = a;
	r->nbuckets = n;
	return 0;
}

struct lwm2m_reg *lwm2m_reg_by_ep(const struct lwm2m_registry *r, const char *ep)
{
	if (!r->nbuckets)
		return NULL;
	for (struct lwm2m_reg *g = r->by_ep[hash_str(ep) & (r->nbuckets - 1)]; g; g = g->next_ep)
		if (strcmp(g->ep, ep) == 0)
			return g;
	return NULL;
}

struct lwm2m_reg *lwm2m_reg_by_id(const struct lwm2m_registry *r, uint32_t id)
{
	if (!r->nbuckets || id == 0)
		return NULL;
	for (struct lwm2m_reg *g = r->by_id[hash_id(id) & (r->nbuckets - 1)]; g; g = g->next_id)
		if (g->id == id)
			return g;
	return NULL;
}

struct lwm2m_reg *lwm2m_reg_by_addr(const struct lwm2m_registry *r, const union lwm2m_addr *a)
{
	if (!r->nbuckets)
		return NULL;
	for (struct lwm2m_reg *g = r->by_addr[hash_addr(a) & (r->nbuckets - 1)]; g; g = g->next_addr)
		if (lwm2m_addr_equal(&g->addr, a))
			return g;
	return NULL;
}

void lwm2m_reg_addr_link(struct lwm2m_registry *r, struct lwm2m_reg *g)
{
	if (g->addr_linked || !r->nbuckets)
		return;
	size_t h = hash_addr(&g->addr) & (r->nbuckets - 1);
	g->next_addr = r->by_addr[h];
	r->by_addr[h] = g;
	g->addr_linked = 1;
}

void lwm2m_reg_addr_unlink(struct lwm2m_registry *r, struct lwm2m_reg *g)
{
	if (!g->addr_linked)
		return;
	for (struct lwm2m_reg **pp = &r->by_addr[hash_addr(&g->addr) & (r->nbuckets - 1)]; *pp; pp = &(*pp)->next_addr)
		if (*pp == g) {
			*pp = g->next_addr;
			break;
		}
	g->next_addr = NULL;
	g->addr_linked = 0;
}

uint32_t lwm2m_reg_id_parse(const char *s, size_t len)
{
	if (len != 8)
		return 0;
	uint32_t v = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return 0;
		v = v << 4 | (uint32_t)d;
	}
	return v;
}

void lwm2m_reg_id_str(uint32_t id, char buf[9])
{
	static const char hexd[] = "0123456789abcdef";
	for (int i = 0; i < 8; i++)
		buf[i] = hexd[(id >> (28 - 4 * i)) & 15];
	buf[8] = 0;
}

struct lwm2m_reg *lwm2m_reg_new(struct lwm2m_registry *r, const char *ep, uint32_t id)
{
	size_t n = strlen(ep);
	struct lwm2m_reg *g = calloc(1, sizeof *g + n + 1);
	if (!g)
		return NULL;
	memcpy(g->ep, ep, n + 1);
	while (id == 0 || lwm2m_reg_by_id(r, id))
		id = arc4random();
	g->id = id;
	g->version = 10;
	strcpy(g->binding, "U");
	return g;
}

void lwm2m_reg_insert(struct lwm2m_registry *r, struct lwm2m_reg *g)
{
	if (r->count >= r->nbuckets && grow(r) < 0 && !r->nbuckets)
		die(EXIT_TEMPORARY, "unable to allocate the registration table");
	size_t h = hash_str(g->ep) & (r->nbuckets - 1);
	g->next_ep = r->by_ep[h];
	r->by_ep[h] = g;
	h = hash_id(g->id) & (r->nbuckets - 1);
	g->next_id = r->by_id[h];
	r->by_id[h] = g;
	r->count++;
	ip_count(r, g);
}

void lwm2m_reg_unlink(struct lwm2m_registry *r, struct lwm2m_reg *g)
{
	struct lwm2m_reg **pp;
	lwm2m_reg_addr_unlink(r, g);
	for (pp = &r->by_ep[hash_str(g->ep) & (r->nbuckets - 1)]; *pp; pp = &(*pp)->next_ep)
		if (*pp == g) {
			*pp = g->next_ep;
			break;
		}
	for (pp = &r->by_id[hash_id(g->id) & (r->nbuckets - 1)]; *pp; pp = &(*pp)->next_id)
		if (*pp == g) {
			*pp = g->next_id;
			break;
		}
	g->next_ep = g->next_id = NULL;
	r->count--;
	ip_uncount(r, g);
}

void lwm2m_reg_free(struct lwm2m_reg *g)
{
	if (!g)
		return;
	free(g->objects);
	free(g->sms);
	free(g->identity);
	free(g);
}

struct lwm2m_reg *lwm2m_reg_first(const struct lwm2m_registry *r, size_t *bucket)
{
	for (*bucket = 0; *bucket < r->nbuckets; (*bucket)++)
		if (r->by_ep[*bucket])
			return r->by_ep[*bucket];
	return NULL;
}

struct lwm2m_reg *lwm2m_reg_next(const struct lwm2m_registry *r, struct lwm2m_reg *g, size_t *bucket)
{
	if (g->next_ep)
		return g->next_ep;
	for ((*bucket)++; *bucket < r->nbuckets; (*bucket)++)
		if (r->by_ep[*bucket])
			return r->by_ep[*bucket];
	return NULL;
}

void lwm2m_registry_free(struct lwm2m_registry *r, void (*on_free)(struct lwm2m_reg *, void *), void *ud)
{
	for (size_t b = 0; b < r->nbuckets; b++) {
		struct lwm2m_reg *g, *next;
		for (g = r->by_ep[b]; g; g = next) {
			next = g->next_ep;
			if (on_free)
				on_free(g, ud);
			lwm2m_reg_free(g);
		}
	}
	free(r->by_ep);
	free(r->by_id);
	for (size_t b = 0; r->by_ip && b < IP_BUCKETS; b++)
		for (struct lwm2m_ipcount *c = r->by_ip[b], *next; c; c = next) {
			next = c->next;
			free(c);
		}
	free(r->by_ip);
	if (r->jfd >= 0)
		close(r->jfd);
	free(r->jpend);
	free(r->by_addr);
	memset(r, 0, sizeof *r);
	r->jfd = -1;
}

/* The decimal digits of v at p; returns the end. */
static char *put_uint(char *p, unsigned long v)
{
	char t[20];
	int n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n)
		*p++ = t[--n];
	return p;
}

static char *put_lit(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

void lwm2m_addr_str(const union lwm2m_addr *a, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	if (a->sa.sa_family == AF_INET) {
		/* what inet_ntop and "%s:%u" print, without printf: every Register shows it */
		const uint8_t *ip = (const uint8_t *)&a->sin.sin_addr;
		char t[24], *p = t;
		for (int i = 0; i < 4; i++) {
			p = put_uint(p, ip[i]);
			*p++ = i < 3 ? '.' : ':';
		}
		p = put_uint(p, ntohs(a->sin.sin_port));
		size_t n = (size_t)(p - t) < size ? (size_t)(p - t) : size - 1;
		memcpy(buf, t, n);
		buf[n] = 0;
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->sin6.sin6_addr, host, sizeof host);
		snprintf(buf, size, "[%s]:%u", host, ntohs(a->sin6.sin6_port));
	} else {
		snprintf(buf, size, "unknown");
	}
}

int lwm2m_addr_parse(const char *s, union lwm2m_addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	memset(a, 0, sizeof *a);
	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host)
			return -1;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof host)
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
	}
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535 || end == colon + 1)
		return -1;
	if (inet_pton(AF_INET, host, &a->sin.sin_addr) == 1) {
		a->sin.sin_family = AF_INET;
		a->sin.sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a->sin6.sin6_addr) == 1) {
		a->sin6.sin6_family = AF_INET6;
		a->sin6.sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

int lwm2m_addr_equal(const union lwm2m_addr *a, const union lwm2m_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return 0;
	if (a->sa.sa_family == AF_INET)
		return a->sin.sin_port == b->sin.sin_port && a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return a->sin6.sin6_port == b->sin6.sin6_port &&
		       memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, sizeof a->sin6.sin6_addr) == 0;
	return 0;
}

const char *lwm2m_sec_name(int sec)
{
	static const char *const names[] = {"nosec", "psk", "rpk", "x509"};
	return sec >= 0 && sec < 4 ? names[sec] : "nosec";
}

static int sec_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, lwm2m_sec_name(i)) == 0)
			return i;
	return -1;
}

jv lwm2m_reg_objects_json(const struct lwm2m_reg *g)
{
	jv a = jv_array_sized((int)g->nobjects);
	char buf[16];
	for (uint32_t i = 0; i < g->nobjects; i++) {
		uint32_t k = g->objects[i];
		if ((k & 0xffff) == 0xffff)
			snprintf(buf, sizeof buf, "/%u", k >> 16);
		else
			snprintf(buf, sizeof buf, "/%u/%u", k >> 16, k & 0xffff);
		a = jv_array_append(a, jv_string(buf));
	}
	return a;
}

int lwm2m_reg_has_path(const struct lwm2m_reg *g, const uint16_t *id, int len)
{
	if (len == 0)
		return 1;
	uint32_t lo = (uint32_t)id[0] << 16, hi = lo | 0xffff;
	size_t a = 0, b = g->nobjects;
	while (a < b) { /* first key >= lo */
		size_t m = (a + b) / 2;
		if (g->objects[m] < lo)
			a = m + 1;
		else
			b = m;
	}
	for (size_t i = a; i < g->nobjects && g->objects[i] <= hi; i++) {
		if (len == 1 || (g->objects[i] & 0xffff) == id[1])
			return 1;
	}
	return 0;
}

jv lwm2m_reg_json(const struct lwm2m_reg *g)
{
	char id[9], addr[64];
	lwm2m_reg_id_str(g->id, id);
	lwm2m_addr_str(&g->addr, addr, sizeof addr);
	jv o = jv_object();
	o = jv_object_set(o, jv_string("ep"), jv_string(g->ep));
	o = jv_object_set(o, jv_string("reg"), jv_string(id));
	o = jv_object_set(o, jv_string("lt"), jv_number(g->lt));
	o = jv_object_set(o, jv_string("lwm2m"), jv_string_fmt("%u.%u", g->version / 10, g->version % 10));
	o = jv_object_set(o, jv_string("b"), jv_string(g->binding));
	o = jv_object_set(o, jv_string("queue"), jv_bool(g->queue));
	if (g->sms)
		o = jv_object_set(o, jv_string("sms"), jv_string(g->sms));
	o = jv_object_set(o, jv_string("objects"), lwm2m_reg_objects_json(g));
	if (g->nct) {
		jv ct = jv_array();
		for (int i = 0; i < g->nct; i++)
			ct = jv_array_append(ct, jv_number(g->ct[i]));
		o = jv_object_set(o, jv_string("ct"), ct);
	}
	o = jv_object_set(o, jv_string("addr"), jv_string(addr));
	o = jv_object_set(o, jv_string("sec"), jv_string(lwm2m_sec_name(g->sec)));
	if (g->identity)
		o = jv_object_set(o, jv_string("identity"), jv_string(g->identity));
	return o;
}

int lwm2m_reg_json_text(struct jbuf *b, const struct lwm2m_reg *g)
{
	/* the members in lwm2m_reg_json's order: jq prints an object's keys in insertion order */
	char t[96], *p;
	JBUF_LIT(b, "\"ep\":");
	json_out_cstring(b, g->ep, strlen(g->ep));
	p = put_lit(t, ",\"reg\":\"");
	lwm2m_reg_id_str(g->id, p);
	p = put_lit(p + 8, "\",\"lt\":");
	p = put_uint(p, g->lt);
	p = put_lit(p, ",\"lwm2m\":\"");
	p = put_uint(p, g->version / 10u);
	*p++ = '.';
	p = put_uint(p, g->version % 10u);
	p = put_lit(p, "\",\"b\":");
	jbuf_add(b, t, (size_t)(p - t));
	json_out_cstring(b, g->binding, strlen(g->binding));
	if (g->queue)
		JBUF_LIT(b, ",\"queue\":true");
	else
		JBUF_LIT(b, ",\"queue\":false");
	if (g->sms) {
		JBUF_LIT(b, ",\"sms\":");
		json_out_cstring(b, g->sms, strlen(g->sms));
	}
	JBUF_LIT(b, ",\"objects\":[");
	for (uint32_t i = 0; i < g->nobjects; i++) {
		uint32_t k = g->objects[i];
		p = t;
		if (i)
			*p++ = ',';
		*p++ = '"';
		*p++ = '/';
		p = put_uint(p, k >> 16);
		if ((k & 0xffff) != 0xffff) {
			*p++ = '/';
			p = put_uint(p, k & 0xffff);
		}
		*p++ = '"';
		jbuf_add(b, t, (size_t)(p - t));
	}
	JBUF_LIT(b, "]");
	if (g->nct) {
		p = put_lit(t, ",\"ct\":[");
		for (int i = 0; i < g->nct; i++) {
			if (i)
				*p++ = ',';
			p = put_uint(p, g->ct[i]);
		}
		*p++ = ']';
		jbuf_add(b, t, (size_t)(p - t));
	}
	char addr[64];
	lwm2m_addr_str(&g->addr, addr, sizeof addr);
	JBUF_LIT(b, ",\"addr\":");
	json_out_string(b, addr, strlen(addr));
	p = put_lit(t, ",\"sec\":\"");
	p = put_lit(p, lwm2m_sec_name(g->sec));
	*p++ = '"';
	jbuf_add(b, t, (size_t)(p - t));
	if (g->identity) {
		JBUF_LIT(b, ",\"identity\":");
		json_out_cstring(b, g->identity, strlen(g->identity));
	}
	return b->failed ? -1 : 0;
}

static int journal_path(const char *path, char buf[PATH_MAX])
{
	if (snprintf(buf, PATH_MAX, "%s.journal", path) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* A saved line: the registration as the events show it, with the times that decide expiry
 * (what jq printed for lwm2m_reg_json plus registered and updated), newline included. */
static int saved_text(struct jbuf *b, const struct lwm2m_reg *g)
{
	JBUF_LIT(b, "{");
	lwm2m_reg_json_text(b, g);
	JBUF_LIT(b, ",\"registered\":");
	json_out_number(b, g->registered);
	JBUF_LIT(b, ",\"updated\":");
	json_out_number(b, g->updated);
	JBUF_LIT(b, "}\n");
	return b->failed ? -1 : 0;
}

int lwm2m_registry_save(struct lwm2m_registry *r, const char *path)
{
	struct jbuf buf = {0};
	buf.cap = 4096 + r->count * 256;
	if (!(buf.p = malloc(buf.cap)))
		return -1;
	size_t b;
	for (struct lwm2m_reg *g = lwm2m_reg_first(r, &b); g; g = lwm2m_reg_next(r, g, &b))
		if (saved_text(&buf, g) < 0) {
			free(buf.p);
			errno = ENOMEM;
			return -1;
		}
	int rc = fs_write_atomic(path, buf.p, buf.len);
	int e = errno;
	free(buf.p);
	if (rc < 0) {
		errno = e;
		return -1;
	}
	/* Everything the journal says is in the file now. Replaying it again (killed before this
	 * truncation) gives the same registrations: each line sets or removes one endpoint. */
	char jp[PATH_MAX];
	r->jlines = 0;
	r->jplen = r->jplines = 0; /* the lines not yet written describe changes the saved file holds */
	if (r->jfd >= 0)
		return ftruncate(r->jfd, 0);
	if (journal_path(path, jp) < 0 || (truncate(jp, 0) < 0 && errno != ENOENT))
		return -1;
	return 0;
}

/* Open the journal for appending; a line torn by a kill mid-write is ended first, so that it
 * spoils only itself and not the next one. */
static int journal_open(struct lwm2m_registry *r, const char *path)
{
	char jp[PATH_MAX];
	if (journal_path(path, jp) < 0)
		return -1;
	int fd = open(jp, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	struct stat st;
	char last = '\n';
	if (fstat(fd, &st) < 0 || (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1) ||
	    (last != '\n' && write(fd, "\n", 1) != 1)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	r->jfd = fd;
	return 0;
}

/* Whole lines out (nlines of them, counted in jlines). */
static int journal_write(struct lwm2m_registry *r, const char *p, size_t n, size_t nlines)
{
	ssize_t w;
	do
		w = write(r->jfd, p, n);
	while (w < 0 && errno == EINTR);
	int e = errno;
	if (w == (ssize_t)n) {
		r->jlines += nlines;
		return 0;
	}
	if (w >= 0) {
		/* short write (disk full): end the torn line so the next one stands alone */
		if (write(r->jfd, "\n", 1) < 0) {
		}
		e = ENOSPC;
	}
	errno = e;
	return -1;
}

int lwm2m_registry_journal(struct lwm2m_registry *r, const char *path, const struct lwm2m_reg *g,
                           enum lwm2m_journal_op op)
{
	if (r->jfd < 0 && journal_open(r, path) < 0)
		return -1;
	char stack[1024];
	struct jbuf b = {.p = stack, .cap = sizeof stack, .borrowed = 1};
	if (op == LWM2M_JOURNAL_DEL) {
		char t[32];
		JBUF_LIT(&b, "{\"op\":\"del\",\"ep\":");
		json_out_cstring(&b, g->ep, strlen(g->ep));
		memcpy(t, ",\"reg\":\"", 8);
		lwm2m_reg_id_str(g->id, t + 8);
		memcpy(t + 16, "\"}\n", 3);
		jbuf_add(&b, t, 19);
	} else {
		saved_text(&b, g);
	}
	if (b.failed) {
		if (!b.borrowed)
			free(b.p);
		errno = ENOMEM;
		return -1;
	}
	int rc = 0;
	if (r->jdefer) {
		if (r->jplen + b.len > r->jpcap) {
			size_t ncap = r->jpcap ? r->jpcap * 2 : 16384;
			while (ncap < r->jplen + b.len)
				ncap *= 2;
			char *np = realloc(r->jpend, ncap);
			if (!np) {
				rc = -1;
				errno = ENOMEM;
			} else {
				r->jpend = np;
				r->jpcap = ncap;
			}
		}
		if (rc == 0) {
			memcpy(r->jpend + r->jplen, b.p, b.len);
			r->jplen += b.len;
			r->jplines++;
		}
	} else {
		rc = journal_write(r, b.p, b.len, 1);
	}
	int e = errno;
	if (!b.borrowed)
		free(b.p);
	errno = e;
	return rc;
}

int lwm2m_registry_journal_flush(struct lwm2m_registry *r)
{
	if (!r->jplen)
		return 0;
	int rc = journal_write(r, r->jpend, r->jplen, r->jplines);
	r->jplen = r->jplines = 0;
	return rc;
}

int lwm2m_registry_journal_sync(struct lwm2m_registry *r)
{
	if (lwm2m_registry_journal_flush(r) < 0)
		return -1;
	return r->jfd >= 0 ? fdatasync(r->jfd) : 0;
}

static int version_parse(const char *s)
{
	if (!s || s[0] < '1' || s[0] > '9' || s[1] != '.' || s[2] < '0' || s[2] > '9' || s[3])
		return -1;
	return (s[0] - '0') * 10 + (s[2] - '0');
}

/* One saved line back into a registration; NULL (logged) if it does not make sense. */
static struct lwm2m_reg *from_json(struct lwm2m_registry *r, jv o, unsigned long lineno, const char *path)
{
	const char *ep = jl_str(o, "ep"), *id = jl_str(o, "reg"), *addr = jl_str(o, "addr");
	const char *b = jl_str(o, "b"), *sec = jl_str(o, "sec");
	int ver = version_parse(jl_str(o, "lwm2m"));
	uint32_t rid = id ? lwm2m_reg_id_parse(id, strlen(id)) : 0;
	/* a lifetime outside uint32_t cannot be converted */
	double lt = jl_num(o, "lt", 86400);
	union lwm2m_addr a;
	if (!ep || !*ep || strlen(ep) > LWM2M_EP_MAX || !rid || !addr || lwm2m_addr_parse(addr, &a) < 0 ||
	    !b || strlen(b) >= 8 || ver < 0 || !(lt >= 0 && lt <= UINT32_MAX) || lwm2m_reg_by_ep(r, ep) ||
	    lwm2m_reg_by_id(r, rid)) {
		log_warn("%s: line %lu: not a registration I can restore, skipped", path, lineno);
		return NULL;
	}
	struct lwm2m_reg *g = lwm2m_reg_new(r, ep, rid);
	if (!g)
		return NULL;
	g->addr = a;
	g->lt = (uint32_t)lt;
	g->version = (uint8_t)ver;
	snprintf(g->binding, sizeof g->binding, "%s", b);
	jv q = jl_get(o, "queue");
	g->queue = jv_get_kind(q) == JV_KIND_TRUE;
	jv_free(q);
	g->sec = (uint8_t)(sec && sec_parse(sec) > 0 ? sec_parse(sec) : 0);
	g->registered = jl_num(o, "registered", 0);
	g->updated = jl_num(o, "updated", 0);
	const char *sms = jl_str(o, "sms"), *ident = jl_str(o, "identity");
	if (sms)
		g->sms = strdup(sms);
	if (ident)
		g->identity = strdup(ident);
	jv ct = jl_get(o, "ct");
	if (jv_get_kind(ct) == JV_KIND_ARRAY) {
		jv_array_foreach(ct, i, c) {
			double f = jv_get_kind(c) == JV_KIND_NUMBER ? jv_number_value(c) : -1;
			if (f >= 0 && f <= UINT16_MAX && g->nct < 4)
				g->ct[g->nct++] = (uint16_t)f;
			jv_free(c);
		}
	}
	jv_free(ct);
	jv objs = jl_get(o, "objects");
	if (jv_get_kind(objs) == JV_KIND_ARRAY) {
		int n = jv_array_length(jv_copy(objs));
		g->objects = n > 0 ? calloc((size_t)n, sizeof *g->objects) : NULL;
		jv_array_foreach(objs, i, s) {
			unsigned o1, i1;
			char extra;
			if (g->objects && jv_get_kind(s) == JV_KIND_STRING) {
				const char *p = jv_string_value(s);
				if (sscanf(p, "/%u/%u%c", &o1, &i1, &extra) == 2 && o1 <= 65534 && i1 <= 65534)
					g->objects[g->nobjects++] = o1 << 16 | i1;
				else if (sscanf(p, "/%u%c", &o1, &extra) == 1 && o1 <= 65534)
					g->objects[g->nobjects++] = o1 << 16 | 0xffff;
			}
			jv_free(s);
		}
		/* lwm2m_reg_has_path searches the list: a file edited by hand may not be in order */
		g->nobjects = (uint32_t)lwm2m_objects_sort(g->objects, g->nobjects);
	}
	jv_free(objs);
	return g;
}

/* Apply the lines of a saved file (journal 0) or of its journal (1). */
static void apply_lines(struct lwm2m_registry *r, char *data, size_t len, const char *path, int journal)
{
	unsigned long lineno = 0;
	char *p = data, *end = data + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		if (n > 0) {
			jv o = jsonl_parse_object(p, n);
			if (!jv_is_valid(o)) {
				jv msg = jv_invalid_get_msg(o);
				log_warn("%s: line %lu: %s", path, lineno,
				         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "invalid");
				jv_free(msg);
				p += n + 1;
				continue;
			}
			const char *op = jl_str(o, "op"), *ep = jl_str(o, "ep"), *id = jl_str(o, "reg");
			struct lwm2m_reg *old = journal && ep ? lwm2m_reg_by_ep(r, ep) : NULL;
			if (journal && op && strcmp(op, "del") == 0) {
				if (old && id && old->id == lwm2m_reg_id_parse(id, strlen(id))) {
					lwm2m_reg_unlink(r, old);
					lwm2m_reg_free(old);
				}
			} else if (op) {
				log_warn("%s: line %lu: unknown op, skipped", path, lineno);
			} else {
				if (old) { /* a Register or Update after the save */
					lwm2m_reg_unlink(r, old);
					lwm2m_reg_free(old);
				}
				struct lwm2m_reg *g = from_json(r, o, lineno, path);
				if (g)
					lwm2m_reg_insert(r, g);
			}
			jv_free(o);
		}
		p += n + 1;
	}
}

long lwm2m_registry_load(struct lwm2m_registry *r, const char *path, double now,
                         void (*expired)(struct lwm2m_reg *, void *), void *ud)
{
	char *data, jp[PATH_MAX];
	size_t len;
	int saved = fs_read_file(path, &data, &len, (size_t)1 << 31) == 0;
	if (!saved && errno != ENOENT)
		return -1;
	if (saved) {
		apply_lines(r, data, len, path, 0);
		free(data);
	}
	if (journal_path(path, jp) < 0)
		return -1;
	if (fs_read_file(jp, &data, &len, (size_t)1 << 31) == 0) {
		apply_lines(r, data, len, jp, 1);
		free(data);
		saved = 1;
	} else if (errno != ENOENT) {
		return -1;
	}
	if (!saved) {
		errno = ENOENT;
		return -1;
	}
	/* collected first: unlinking while walking is not allowed */
	struct lwm2m_reg *g, **gone = NULL;
	size_t b, ngone = 0, cap = 0;
	for (g = lwm2m_reg_first(r, &b); g; g = lwm2m_reg_next(r, g, &b)) {
		if (g->updated + g->lt > now)
			continue;
		if (ngone == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct lwm2m_reg **ng = realloc(gone, ncap * sizeof *ng);
			if (!ng)
				break; /* the tick drops what is left */
			gone = ng;
			cap = ncap;
		}
		gone[ngone++] = g;
	}
	for (size_t i = 0; i < ngone; i++) {
		lwm2m_reg_unlink(r, gone[i]);
		if (expired)
			expired(gone[i], ud);
		lwm2m_reg_free(gone[i]);
	}
	free(gone);
	return (long)r->count;
}
