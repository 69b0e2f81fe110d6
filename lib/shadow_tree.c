#include "shadow_tree.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

#define SMALL 24 /* leaf text kept in the node: numbers, timestamps, short strings */

struct tnode {
	struct tnode **kid; /* an object's children, in jq's order */
	uint32_t n, cap;
	int obj;
	int null; /* a leaf that is null (in a request: delete) */
	char *text; /* a leaf's compact JSON text: small, or malloc'd */
	uint32_t tlen;
	char small[SMALL];
	uint32_t klen;
	char key[]; /* the key in the parent as JSON text, quotes included */
};

struct shadow_tdoc {
	struct tnode *state, *meta; /* objects */
	double version, timestamp;
};

/* memory ran out mid-change: the caller throws the tree away */
struct ctx {
	int oom;
	const char *ts; /* the update's timestamp as JSON text */
	size_t tslen;
};

static struct tnode *node_new(const char *key, size_t klen, int obj)
{
	struct tnode *n = calloc(1, sizeof *n + klen + 1);
	if (!n)
		return NULL;
	n->obj = obj;
	n->text = n->small;
	n->klen = (uint32_t)klen;
	memcpy(n->key, key, klen);
	return n;
}

static void node_free(struct tnode *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; i < n->n; i++)
		node_free(n->kid[i]);
	free(n->kid);
	if (n->text != n->small)
		free(n->text);
	free(n);
}

static void kids_clear(struct tnode *n)
{
	for (uint32_t i = 0; i < n->n; i++)
		node_free(n->kid[i]);
	n->n = 0;
}

static int leaf_set(struct tnode *n, const char *text, size_t len)
{
	if (n->obj) {
		kids_clear(n);
		n->obj = 0;
	}
	char *to = n->small;
	if (len > SMALL) {
		to = n->text != n->small ? realloc(n->text, len) : malloc(len);
		if (!to)
			return -1;
	} else if (n->text != n->small) {
		free(n->text);
	}
	memcpy(to, text, len);
	n->text = to;
	n->tlen = (uint32_t)len;
	return 0;
}

/* make n an empty object */
static void obj_clear(struct tnode *n)
{
	kids_clear(n);
	if (n->text != n->small)
		free(n->text);
	n->text = n->small;
	n->tlen = 0;
	n->obj = 1;
}

static long find(const struct tnode *o, const char *key, size_t klen)
{
	for (uint32_t i = 0; i < o->n; i++)
		if (o->kid[i]->klen == klen && memcmp(o->kid[i]->key, key, klen) == 0)
			return i;
	return -1;
}

static int append(struct tnode *o, struct tnode *c)
{
	if (o->n == o->cap) {
		uint32_t cap = o->cap ? o->cap * 2 : 4;
		struct tnode **k = realloc(o->kid, cap * sizeof *k);
		if (!k)
			return -1;
		o->kid = k;
		o->cap = cap;
	}
	o->kid[o->n++] = c;
	return 0;
}

static void remove_at(struct tnode *o, long i)
{
	node_free(o->kid[i]);
	memmove(o->kid + i, o->kid + i + 1, (o->n - (size_t)i - 1) * sizeof *o->kid);
	o->n--;
}

static struct tnode *clone(const struct tnode *n)
{
	struct tnode *c = node_new(n->key, n->klen, n->obj);
	if (!c)
		return NULL;
	if (!n->obj) {
		if (leaf_set(c, n->text, n->tlen) < 0)
			goto fail;
		return c;
	}
	for (uint32_t i = 0; i < n->n; i++) {
		struct tnode *k = clone(n->kid[i]);
		if (!k || append(c, k) < 0) {
			node_free(k);
			goto fail;
		}
	}
	return c;
fail:
	node_free(c);
	return NULL;
}

static size_t node_len(const struct tnode *n)
{
	if (!n->obj)
		return n->tlen;
	size_t len = 2 + (n->n ? n->n - 1 : 0);
	for (uint32_t i = 0; i < n->n; i++)
		len += n->kid[i]->klen + 1 + node_len(n->kid[i]);
	return len;
}

static void node_append(struct jbuf *b, const struct tnode *n)
{
	if (!n->obj) {
		jbuf_add(b, n->text, n->tlen);
		return;
	}
	jbuf_add(b, "{", 1);
	for (uint32_t i = 0; i < n->n; i++) {
		if (i)
			jbuf_add(b, ",", 1);
		jbuf_add(b, n->kid[i]->key, n->kid[i]->klen);
		jbuf_add(b, ":", 1);
		node_append(b, n->kid[i]);
	}
	jbuf_add(b, "}", 1);
}

/* ---- from jv ---- */

/* A key of a jv object as JSON text, in buf (or malloc'd: free *spill). */
struct keytext {
	char buf[256];
	struct jbuf b;
};

static int key_text(struct keytext *k, jv key)
{
	k->b = (struct jbuf){.p = k->buf, .cap = sizeof k->buf, .borrowed = 1};
	return json_out_string(&k->b, jv_string_value(key), (size_t)jv_string_length_bytes(jv_copy(key)));
}

static void key_done(struct keytext *k)
{
	if (!k->b.borrowed)
		free(k->b.p);
}

static int leaf_from_jv(struct tnode *n, jv v)
{
	char buf[512];
	struct jbuf b = {.p = buf, .cap = sizeof buf, .borrowed = 1};
	int rc = json_out_append(&b, v) < 0 ? -1 : leaf_set(n, b.p, b.len);
	if (!b.borrowed)
		free(b.p);
	return rc;
}

static struct tnode *from_jv(const char *key, size_t klen, jv v)
{
	int obj = jv_get_kind(v) == JV_KIND_OBJECT;
	struct tnode *n = node_new(key, klen, obj);
	if (!n)
		return NULL;
	if (!obj) {
		n->null = jv_get_kind(v) == JV_KIND_NULL;
		if (leaf_from_jv(n, v) < 0)
			goto fail;
		return n;
	}
	int bad = 0;
	jv_object_foreach(v, k, x) {
		struct keytext kt;
		if (!bad) {
			struct tnode *c = key_text(&kt, k) < 0 ? NULL : from_jv(kt.b.p, kt.b.len, x);
			if (!c || append(n, c) < 0) {
				node_free(c);
				bad = 1;
			}
			key_done(&kt);
		}
		jv_free(k);
		jv_free(x);
	}
	if (!bad)
		return n;
fail:
	node_free(n);
	return NULL;
}

static struct tnode *section_from_jv(jv doc, const char *name)
{
	jv v = jv_get_kind(doc) == JV_KIND_OBJECT ? jl_get(doc, name) : jv_invalid();
	struct tnode *n = jv_get_kind(v) == JV_KIND_OBJECT ? from_jv("", 0, v) : node_new("", 0, 1);
	jv_free(v);
	return n;
}

struct shadow_tdoc *shadow_tdoc_from_jv(jv doc)
{
	struct shadow_tdoc *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	int obj = jv_get_kind(doc) == JV_KIND_OBJECT;
	d->version = obj ? jl_num(doc, "version", 0) : 0;
	d->timestamp = obj ? jl_num(doc, "timestamp", 0) : 0;
	d->state = section_from_jv(doc, "state");
	d->meta = section_from_jv(doc, "metadata");
	if (!d->state || !d->meta) {
		shadow_tdoc_free(d);
		return NULL;
	}
	return d;
}

void shadow_tdoc_free(struct shadow_tdoc *d)
{
	if (!d)
		return;
	node_free(d->state);
	node_free(d->meta);
	free(d);
}

static void put_number(struct jbuf *b, double v)
{
	json_out_append(b, jv_number(v)); /* a number jv owns no memory */
}

int shadow_tdoc_append(struct jbuf *b, const struct shadow_tdoc *d)
{
	jbuf_add(b, "{\"state\":", 9);
	node_append(b, d->state);
	jbuf_add(b, ",\"metadata\":", 12);
	node_append(b, d->meta);
	jbuf_add(b, ",\"version\":", 11);
	put_number(b, d->version);
	jbuf_add(b, ",\"timestamp\":", 13);
	put_number(b, d->timestamp);
	jbuf_add(b, "}", 1);
	return b->failed ? -1 : 0;
}

/* ---- applying an update: lib/shadow_doc.c's merge, meta_merge, meta_restrict, plain ---- */

/* the child of o under key, or a new detached one (*i = -1) made an object */
static struct tnode *child_obj(struct ctx *c, struct tnode *o, const char *key, size_t klen, long *i)
{
	*i = o ? find(o, key, klen) : -1;
	if (*i >= 0) {
		struct tnode *k = o->kid[*i];
		if (!k->obj)
			obj_clear(k);
		return k;
	}
	struct tnode *k = node_new(key, klen, 1);
	if (!k)
		c->oom = 1;
	return k;
}

/* Merge the request section src into the object dst: null deletes, objects merge, anything
 * else replaces; objects left empty disappear. */
static void merge(struct ctx *c, struct tnode *dst, const struct tnode *src)
{
	for (uint32_t j = 0; j < src->n && !c->oom; j++) {
		const struct tnode *s = src->kid[j];
		long i = find(dst, s->key, s->klen);
		if (s->null) {
			if (i >= 0)
				remove_at(dst, i);
		} else if (s->obj) {
			struct tnode *sub = child_obj(c, dst, s->key, s->klen, &i);
			if (!sub)
				return;
			merge(c, sub, s);
			if (sub->n == 0) {
				if (i >= 0)
					remove_at(dst, i);
				else
					node_free(sub);
			} else if (i < 0 && append(dst, sub) < 0) {
				node_free(sub);
				c->oom = 1;
			}
		} else if (i >= 0) {
			if (leaf_set(dst->kid[i], s->text, s->tlen) < 0)
				c->oom = 1;
		} else {
			struct tnode *n = node_new(s->key, s->klen, 0);
			if (!n || leaf_set(n, s->text, s->tlen) < 0 || append(dst, n) < 0) {
				node_free(n);
				c->oom = 1;
			}
		}
	}
}

static const char TS_KEY[] = "\"timestamp\"";
#define TS_KLEN (sizeof TS_KEY - 1)

/* n becomes {"timestamp": the update's time} */
static void stamp(struct ctx *c, struct tnode *n)
{
	if (n->obj && n->n == 1 && !n->kid[0]->obj && n->kid[0]->klen == TS_KLEN &&
	    memcmp(n->kid[0]->key, TS_KEY, TS_KLEN) == 0) {
		if (leaf_set(n->kid[0], c->ts, c->tslen) < 0)
			c->oom = 1;
		return;
	}
	obj_clear(n);
	struct tnode *t = node_new(TS_KEY, TS_KLEN, 0);
	if (!t || leaf_set(t, c->ts, c->tslen) < 0 || append(n, t) < 0) {
		node_free(t);
		c->oom = 1;
	}
}

/* Stamp every leaf of the request section src into the object meta. */
static void meta_merge(struct ctx *c, struct tnode *meta, const struct tnode *src)
{
	for (uint32_t j = 0; j < src->n && !c->oom; j++) {
		const struct tnode *s = src->kid[j];
		long i = find(meta, s->key, s->klen);
		if (s->null) {
			if (i >= 0)
				remove_at(meta, i);
			continue;
		}
		struct tnode *sub = i >= 0 ? meta->kid[i] : node_new(s->key, s->klen, 1);
		if (!sub) {
			c->oom = 1;
			return;
		}
		if (s->obj) {
			if (!sub->obj)
				obj_clear(sub);
			meta_merge(c, sub, s);
		} else {
			stamp(c, sub);
		}
		if (i < 0 && append(meta, sub) < 0) {
			node_free(sub);
			c->oom = 1;
		}
	}
}

/* Metadata (meta, may be NULL) shaped exactly like state: one {"timestamp"} per leaf. */
static struct tnode *meta_restrict(struct ctx *c, const struct tnode *meta, const struct tnode *state)
{
	struct tnode *out = node_new(state->key, state->klen, 1);
	if (!out) {
		c->oom = 1;
		return NULL;
	}
	for (uint32_t i = 0; i < state->n && !c->oom; i++) {
		const struct tnode *s = state->kid[i];
		long mi = meta && meta->obj ? find(meta, s->key, s->klen) : -1;
		const struct tnode *m = mi >= 0 ? meta->kid[mi] : NULL;
		struct tnode *n = NULL;
		if (s->obj) {
			n = meta_restrict(c, m, s);
		} else if (m && m->obj && (mi = find(m, TS_KEY, TS_KLEN)) >= 0) {
			n = node_new(s->key, s->klen, 1);
			struct tnode *t = n ? clone(m->kid[mi]) : NULL;
			if (!t || append(n, t) < 0) {
				node_free(t);
				node_free(n);
				n = NULL;
			}
		} else {
			n = node_new(s->key, s->klen, 1);
			if (n)
				stamp(c, n);
		}
		if (!n || append(out, n) < 0) {
			node_free(n);
			c->oom = 1;
		}
	}
	return out;
}

/* Does merging the request section sec into cur (may be NULL) keep the shape that meta_merge
 * gives the metadata: no null and no empty object in sec, and no leaf of cur turned into an
 * object? Then the metadata needs no meta_restrict. */
static int plain(const struct tnode *sec, const struct tnode *cur)
{
	for (uint32_t j = 0; j < sec->n; j++) {
		const struct tnode *s = sec->kid[j];
		if (s->null || (s->obj && s->n == 0))
			return 0;
		if (s->obj) {
			long i = cur && cur->obj ? find(cur, s->key, s->klen) : -1;
			const struct tnode *sub = i >= 0 ? cur->kid[i] : NULL;
			if (!((!sub || sub->obj) && plain(s, sub)))
				return 0;
		}
	}
	return 1;
}

/* Apply one request section (NULL when absent; null clears) to the document's section. */
static void section(struct ctx *c, struct shadow_tdoc *d, const char *key, size_t klen, const struct tnode *sec)
{
	if (!sec)
		return;
	long si = find(d->state, key, klen), mi = find(d->meta, key, klen);
	if (!sec->obj) {
		if (si >= 0)
			remove_at(d->state, si);
		if (mi >= 0)
			remove_at(d->meta, mi);
		return;
	}
	struct tnode *cur = si >= 0 ? d->state->kid[si] : NULL;
	int same_shape = plain(sec, cur);
	cur = child_obj(c, d->state, key, klen, &si);
	struct tnode *m = child_obj(c, d->meta, key, klen, &mi);
	if (!cur || !m) {
		if (si < 0)
			node_free(cur);
		if (mi < 0)
			node_free(m);
		return;
	}
	merge(c, cur, sec);
	meta_merge(c, m, sec);
	if (cur->n == 0) {
		if (si >= 0)
			remove_at(d->state, si);
		else
			node_free(cur);
		if (mi >= 0)
			remove_at(d->meta, mi);
		else
			node_free(m);
		return;
	}
	if (si < 0 && append(d->state, cur) < 0) {
		node_free(cur);
		c->oom = 1;
	}
	if (!same_shape) {
		struct tnode *r = meta_restrict(c, m, cur);
		if (!r) {
			c->oom = 1;
		} else if (mi >= 0) {
			node_free(d->meta->kid[mi]);
			d->meta->kid[mi] = r;
		} else {
			node_free(m);
			m = r;
		}
	}
	if (mi < 0 && (!m || append(d->meta, m) < 0)) {
		node_free(m);
		c->oom = 1;
	}
}

static int fail(struct shadow_error *err, int code, const char *message)
{
	err->code = code;
	err->message = message;
	return -1;
}

/* The accepted body's metadata: a timestamp for every leaf of the request (nulls included). */
static void meta_of(struct jbuf *b, const struct tnode *v, const char *ts, size_t tslen)
{
	if (!v->obj) {
		jbuf_add(b, "{\"timestamp\":", 13);
		jbuf_add(b, ts, tslen);
		jbuf_add(b, "}", 1);
		return;
	}
	jbuf_add(b, "{", 1);
	for (uint32_t i = 0; i < v->n; i++) {
		if (i)
			jbuf_add(b, ",", 1);
		jbuf_add(b, v->kid[i]->key, v->kid[i]->klen);
		jbuf_add(b, ":", 1);
		meta_of(b, v->kid[i], ts, tslen);
	}
	jbuf_add(b, "}", 1);
}

/* shadow_tag(accepted body, thing, shadow, "accepted") as text */
static void accepted_line(struct jbuf *b, jv req, const struct tnode *rt, const char *thing, const char *shadow,
                          double version, const struct ctx *c)
{
	jbuf_add(b, "{\"thing\":", 9);
	if (thing)
		json_out_string(b, thing, strlen(thing));
	else
		jbuf_add(b, "null", 4);
	if (shadow) {
		jbuf_add(b, ",\"shadow\":", 10);
		json_out_string(b, shadow, strlen(shadow));
	}
	jbuf_add(b, ",\"result\":\"accepted\",\"state\":", 29);
	node_append(b, rt);
	jbuf_add(b, ",\"metadata\":", 12);
	if (rt->obj)
		meta_of(b, rt, c->ts, c->tslen);
	else
		jbuf_add(b, "{}", 2);
	jbuf_add(b, ",\"version\":", 11);
	put_number(b, version);
	jbuf_add(b, ",\"timestamp\":", 13);
	jbuf_add(b, c->ts, c->tslen);
	jv tok = jl_get(req, "clientToken");
	if (jv_get_kind(tok) == JV_KIND_STRING) {
		jbuf_add(b, ",\"clientToken\":", 15);
		json_out_append(b, tok);
	}
	jv_free(tok);
	jbuf_add(b, "}\n", 2);
}

struct shadow_rtree {
	struct tnode *state; /* an object: its members desired and/or reported, objects or null */
};

int shadow_tdoc_apply(struct shadow_tdoc *d, jv req, const struct shadow_rtree *fast, time_t now,
                      const char *thing, const char *shadow, struct jbuf *line, jv *delta,
                      struct shadow_error *err)
{
	*delta = jv_invalid();
	jv want = jl_get(req, "version");
	int conflict = jv_get_kind(want) == JV_KIND_NUMBER && jv_number_value(want) != d->version;
	jv_free(want);
	if (conflict)
		return fail(err, 409, "Version conflict");

	char ts[32];
	struct jbuf tb = {.p = ts, .cap = sizeof ts, .borrowed = 1};
	put_number(&tb, (double)now);
	struct ctx c = {0, tb.p, tb.len};

	/* the request's state once as a tree: every walk below is then free of jq's calls */
	struct tnode *own = NULL;
	if (!fast) {
		jv rstate = jl_get(req, "state");
		own = from_jv("", 0, rstate);
		jv_free(rstate);
		if (!own)
			return fail(err, 500, "Internal service failure"); /* d is intact */
	}
	const struct tnode *rt = fast ? fast->state : own;
	const struct tnode *rdes = rt, *rrep = rt; /* null clears both */
	if (rt->obj) {
		long i = find(rt, "\"desired\"", 9), j = find(rt, "\"reported\"", 10);
		rdes = i >= 0 ? rt->kid[i] : NULL;
		rrep = j >= 0 ? rt->kid[j] : NULL;
	}
	/* the merged state is at most the state before plus the request's state (every byte of
	 * the result comes from one or the other, and a comma per added key from the request's
	 * own punctuation): only a document that might pass the limit is changed on a copy */
	struct shadow_tdoc *work = d, copy = {0};
	if (node_len(d->state) + node_len(rt) + 16 > SHADOW_MAX_STATE) {
		copy.state = clone(d->state);
		copy.meta = clone(d->meta);
		if (!copy.state || !copy.meta) {
			node_free(copy.state);
			node_free(copy.meta);
			node_free(own);
			return fail(err, 500, "Internal service failure"); /* d is intact */
		}
		work = &copy;
	}
	section(&c, work, "\"desired\"", 9, rdes);
	section(&c, work, "\"reported\"", 10, rrep);
	int publish_delta = rdes && rdes->obj;
	int rc = 0;
	if (c.oom) {
		rc = fail(err, 500, "Internal service failure");
	} else if (work == &copy && node_len(copy.state) > SHADOW_MAX_STATE) {
		rc = fail(err, 413, "The payload exceeds the maximum size allowed");
	} else if (work == &copy) {
		node_free(d->state);
		node_free(d->meta);
		d->state = copy.state;
		d->meta = copy.meta;
		copy.state = copy.meta = NULL;
	}
	node_free(copy.state);
	node_free(copy.meta);
	if (rc < 0) {
		node_free(own);
		return rc;
	}
	d->version += 1;
	d->timestamp = (double)now;
	accepted_line(line, req, rt, thing, shadow, d->version, &c);
	node_free(own);
	if (line->failed)
		return fail(err, 500, "Internal service failure");
	if (publish_delta) {
		/* deltas follow desired updates, the rarer kind: shadow_delta on the jv document */
		struct jbuf b = {0};
		shadow_tdoc_append(&b, d);
		jv doc = b.failed ? jv_invalid() : jsonl_parse_object(b.p, b.len);
		free(b.p);
		if (!jv_is_valid(doc)) {
			jv_free(doc);
			return fail(err, 500, "Internal service failure");
		}
		*delta = shadow_delta(doc, now);
		jv_free(doc);
		jv token = jl_get(req, "clientToken");
		if (jv_is_valid(*delta) && jv_get_kind(token) == JV_KIND_STRING)
			*delta = jv_object_set(*delta, jv_string("clientToken"), token);
		else
			jv_free(token);
	}
	return 0;
}

/* ---- the common request line, parsed straight into a tree ---- */

void shadow_rtree_free(struct shadow_rtree *r)
{
	if (r) {
		node_free(r->state);
		free(r);
	}
}

struct fp {
	const char *s, *e;
};

static void fws(struct fp *p)
{
	while (p->s < p->e && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

/* at a '"': the string with its quotes (no backslash in the line: the fast path's condition) */
static int fstr(struct fp *p, const char **b, size_t *n)
{
	const char *q = memchr(p->s + 1, '"', (size_t)(p->e - p->s - 1));
	if (!q)
		return -1;
	*b = p->s;
	*n = (size_t)(q + 1 - p->s);
	p->s = q + 1;
	return 0;
}

/* a scalar value as a jv (strings, numbers, true, false, null), or jv_invalid() */
static jv fscalar(struct fp *p, const char **b, size_t *n)
{
	const char *s = p->s;
	if (s >= p->e)
		return jv_invalid();
	if (*s == '"') {
		if (fstr(p, b, n) < 0)
			return jv_invalid();
		return jv_string_sized(*b + 1, (int)*n - 2);
	}
	static const struct {
		const char *w;
		size_t n;
	} lit[] = {{"true", 4}, {"false", 5}, {"null", 4}};
	for (int i = 0; i < 3; i++)
		if ((size_t)(p->e - s) >= lit[i].n && memcmp(s, lit[i].w, lit[i].n) == 0) {
			p->s += lit[i].n;
			*b = s;
			*n = lit[i].n;
			return i == 0 ? jv_true() : i == 1 ? jv_false() : jv_null();
		}
	char buf[64];
	size_t k = 0;
	while (p->s < p->e && strchr("0123456789+-.eE", *p->s) && *p->s)
		p->s++;
	k = (size_t)(p->s - s);
	if (k == 0 || k >= sizeof buf)
		return jv_invalid();
	memcpy(buf, s, k);
	buf[k] = 0;
	*b = NULL; /* a number: its text is jq's form of the value, not the input's */
	*n = 0;
	return jv_number(strtod(buf, NULL));
}

/* Parse an object (at '{') into o. -1: not for the fast path (a duplicate key, anything
 * unexpected). */
static int fobj(struct fp *p, struct tnode *o)
{
	p->s++;
	fws(p);
	if (p->s < p->e && *p->s == '}') {
		p->s++;
		return 0;
	}
	for (;;) {
		const char *kb;
		size_t kn;
		fws(p);
		if (p->s >= p->e || *p->s != '"' || fstr(p, &kb, &kn) < 0 || find(o, kb, kn) >= 0)
			return -1;
		fws(p);
		if (p->s >= p->e || *p->s != ':')
			return -1;
		p->s++;
		fws(p);
		if (p->s >= p->e)
			return -1;
		struct tnode *c;
		if (*p->s == '{') {
			c = node_new(kb, kn, 1);
			if (!c || fobj(p, c) < 0 || append(o, c) < 0) {
				node_free(c);
				return -1;
			}
		} else {
			const char *vb;
			size_t vn;
			jv v = fscalar(p, &vb, &vn);
			if (!jv_is_valid(v))
				return -1;
			c = node_new(kb, kn, 0);
			int bad = !c;
			if (c) {
				c->null = jv_get_kind(v) == JV_KIND_NULL;
				bad = vb ? leaf_set(c, vb, vn) < 0 : leaf_from_jv(c, v) < 0;
			}
			jv_free(v);
			if (bad || append(o, c) < 0) {
				node_free(c);
				return -1;
			}
		}
		fws(p);
		if (p->s < p->e && *p->s == ',') {
			p->s++;
			continue;
		}
		if (p->s < p->e && *p->s == '}') {
			p->s++;
			return 0;
		}
		return -1;
	}
}

/* levels of objects: a scalar is 0, {"a":1} is 1 */
static int depth_of(const struct tnode *n)
{
	int d = 0;
	if (!n->obj)
		return 0;
	for (uint32_t i = 0; i < n->n; i++) {
		int c = depth_of(n->kid[i]);
		if (c > d)
			d = c;
	}
	return d + 1;
}

/* skip any value (objects included; no arrays and no backslashes in the line) */
static int fskip(struct fp *p)
{
	if (p->s < p->e && *p->s == '{') {
		struct tnode *t = node_new("", 0, 1);
		int rc = t ? fobj(p, t) : -1;
		node_free(t);
		return rc;
	}
	const char *b;
	size_t n;
	jv v = fscalar(p, &b, &n);
	int rc = jv_is_valid(v) ? 0 : -1;
	jv_free(v);
	return rc;
}

int shadow_rtree_parse(const char *line, size_t len, jv *req, struct shadow_rtree **out)
{
	/* plain lines only: ASCII, no escapes, no arrays (then the text of every string is what jq
	 * prints for it, and no array needs checking for null); anything else takes jq's way */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == '\\' || c == '[' || c >= 0x7f)
			return 0;
	}
	struct fp p = {line, line + len};
	fws(&p);
	if (p.s >= p.e || *p.s != '{')
		return 0;
	p.s++;
	static const char *names[] = {"thing", "shadow", "clientToken", "version"};
	jv v[4] = {jv_invalid(), jv_invalid(), jv_invalid(), jv_invalid()};
	struct tnode *state = NULL;
	int ok = 0;
	fws(&p);
	if (p.s < p.e && *p.s == '}') {
		p.s++;
		goto done; /* no thing, no state: refused the usual way */
	}
	for (;;) {
		const char *kb;
		size_t kn;
		fws(&p);
		if (p.s >= p.e || *p.s != '"' || fstr(&p, &kb, &kn) < 0)
			goto done;
		fws(&p);
		if (p.s >= p.e || *p.s != ':')
			goto done;
		p.s++;
		fws(&p);
		int which = -1;
		for (int i = 0; i < 4; i++)
			if (kn == strlen(names[i]) + 2 && memcmp(kb + 1, names[i], kn - 2) == 0)
				which = i;
		if (which >= 0) {
			const char *b;
			size_t n;
			if (jv_is_valid(v[which]))
				goto done; /* a duplicate: jq keeps the last; let it */
			v[which] = fscalar(&p, &b, &n);
			if (!jv_is_valid(v[which]))
				goto done;
		} else if (kn == 7 && memcmp(kb, "\"state\"", 7) == 0) {
			if (state || p.s >= p.e || *p.s != '{')
				goto done;
			state = node_new("", 0, 1);
			if (!state || fobj(&p, state) < 0)
				goto done;
		} else if (fskip(&p) < 0) {
			goto done;
		}
		fws(&p);
		if (p.s < p.e && *p.s == ',') {
			p.s++;
			continue;
		}
		if (p.s < p.e && *p.s == '}') {
			p.s++;
			break;
		}
		goto done;
	}
	fws(&p);
	if (p.s != p.e || !state)
		goto done;
	/* shadow_check_update_text's checks, as a gate: what fails them takes the slow path, which
	 * refuses it with AWS's message */
	if (jv_get_kind(v[0]) != JV_KIND_STRING || !shadow_thing_name_ok(jv_string_value(v[0])))
		goto done;
	jv_kind k = jv_get_kind(v[1]);
	if (!(k == JV_KIND_INVALID || k == JV_KIND_NULL ||
	      (k == JV_KIND_STRING && shadow_shadow_name_ok(jv_string_value(v[1])))))
		goto done;
	k = jv_get_kind(v[2]);
	if (!(k == JV_KIND_INVALID || k == JV_KIND_NULL ||
	      (k == JV_KIND_STRING && strlen(jv_string_value(v[2])) <= SHADOW_MAX_TOKEN)))
		goto done;
	k = jv_get_kind(v[3]);
	if (!(k == JV_KIND_INVALID || k == JV_KIND_NULL ||
	      (k == JV_KIND_NUMBER && jv_is_integer(v[3]) && jv_number_value(v[3]) >= 0 &&
	       jv_number_value(v[3]) <= 9007199254740992.0)))
		goto done;
	for (uint32_t i = 0; i < state->n; i++) {
		const struct tnode *s = state->kid[i];
		int named = (s->klen == 9 && memcmp(s->key, "\"desired\"", 9) == 0) ||
		            (s->klen == 10 && memcmp(s->key, "\"reported\"", 10) == 0);
		if (!named || !(s->obj || s->null) || (s->obj && depth_of(s) > SHADOW_MAX_DEPTH))
			goto done;
	}
	if (node_len(state) > SHADOW_MAX_STATE)
		goto done;
	jv r = jv_object();
	for (int i = 0; i < 4; i++)
		if (jv_is_valid(v[i])) {
			r = jv_object_set(r, jv_string(names[i]), v[i]);
			v[i] = jv_invalid();
		}
	struct shadow_rtree *t = malloc(sizeof *t);
	if (!t) {
		jv_free(r);
		goto done;
	}
	t->state = state;
	state = NULL;
	*req = r;
	*out = t;
	ok = 1;
done:
	for (int i = 0; i < 4; i++)
		jv_free(v[i]);
	node_free(state);
	return ok;
}
