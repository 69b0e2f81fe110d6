/* Load OMA LwM2M DDF XML files (the registry's object definitions) with expat. Only what the
 * codecs need is kept: object id, name, single/multiple; per resource id, name, type,
 * operations, single/multiple, mandatory. */
#include "log.h"
#include "lwm2m_path.h"
#include "objmodel.h"
#include "objmodel_table.h"

#include <dirent.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DDF_MAX_FILE (4u << 20)
#define DDF_TEXT_MAX 255
#define DDF_MAX_RES 4096

struct ddf_state {
	XML_Parser xp;
	const char *file;
	int depth;
	bool in_object, in_item;
	char text[DDF_TEXT_MAX + 1];
	size_t ntext;
	bool collecting;
	/* the object being read */
	struct lwm2m_object_def *obj;
	struct lwm2m_resource_def *res;
	size_t nres, capres;
	bool have_id;
	struct lwm2m_resource_def cur;
	int nloaded;
	const char *error; /* static message, first error wins */
};

static void fail(struct ddf_state *s, const char *msg)
{
	if (!s->error)
		s->error = msg;
	XML_StopParser(s->xp, XML_FALSE);
}

static bool is_leaf(const char *name)
{
	static const char *const leaves[] = {"Name", "ObjectID", "MultipleInstances", "Mandatory",
	                                     "Operations", "Type"};
	for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++)
		if (strcmp(name, leaves[i]) == 0)
			return true;
	return false;
}

static void start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct ddf_state *s = ud;
	s->depth++;
	if (s->depth > 32)
		return fail(s, "nesting too deep");
	if (strcmp(name, "Object") == 0 && !s->in_object) {
		s->in_object = true;
		s->obj = calloc(1, sizeof *s->obj);
		s->res = NULL;
		s->nres = s->capres = 0;
		s->have_id = false;
		if (!s->obj)
			fail(s, "out of memory");
		return;
	}
	if (s->in_object && strcmp(name, "Item") == 0 && !s->in_item) {
		memset(&s->cur, 0, sizeof s->cur);
		const char *id = NULL;
		for (int i = 0; attrs[i]; i += 2)
			if (strcmp(attrs[i], "ID") == 0)
				id = attrs[i + 1];
		char *end;
		long v = id ? strtol(id, &end, 10) : -1;
		if (!id || *end || v < 0 || v > LWM2M_ID_MAX)
			return fail(s, "resource Item without a valid ID");
		s->cur.id = (uint16_t)v;
		s->in_item = true;
		return;
	}
	if (s->in_object && is_leaf(name)) {
		s->collecting = true;
		s->ntext = 0;
	}
}

static void chars(void *ud, const XML_Char *t, int len)
{
	struct ddf_state *s = ud;
	if (!s->collecting || len <= 0)
		return;
	size_t n = (size_t)len;
	if (n > DDF_TEXT_MAX - s->ntext)
		n = DDF_TEXT_MAX - s->ntext;
	memcpy(s->text + s->ntext, t, n);
	s->ntext += n;
}

static char *trimmed(struct ddf_state *s)
{
	s->text[s->ntext] = 0;
	char *p = s->text;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	size_t n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
		p[--n] = 0;
	return p;
}

static int cmp_res(const void *a, const void *b)
{
	const struct lwm2m_resource_def *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static void end_object(struct ddf_state *s)
{
	if (!s->have_id)
		return fail(s, "Object without ObjectID");
	qsort(s->res, s->nres, sizeof *s->res, cmp_res);
	for (size_t i = 1; i < s->nres; i++)
		if (s->res[i].id == s->res[i - 1].id)
			return fail(s, "duplicate resource ID");
	if (!s->obj->name && !(s->obj->name = strdup("")))
		return fail(s, "out of memory");
	s->obj->res = s->res;
	s->obj->nres = (uint16_t)s->nres;
	s->res = NULL;
	s->nres = s->capres = 0;
	if (objmodel_add(s->obj) < 0)
		return fail(s, "out of memory");
	s->obj = NULL;
	s->nloaded++;
}

static void end(void *ud, const XML_Char *name)
{
	struct ddf_state *s = ud;
	s->depth--;
	if (!s->in_object || s->error)
		return;
	if (s->in_item && strcmp(name, "Item") == 0) {
		s->in_item = false;
		if (s->nres == DDF_MAX_RES)
			return fail(s, "too many resources");
		if (s->nres == s->capres) {
			size_t cap = s->capres ? 2 * s->capres : 16;
			struct lwm2m_resource_def *r = realloc(s->res, cap * sizeof *r);
			if (!r)
				return fail(s, "out of memory");
			s->res = r;
			s->capres = cap;
		}
		if (!s->cur.name && !(s->cur.name = strdup("")))
			return fail(s, "out of memory");
		s->res[s->nres++] = s->cur;
		memset(&s->cur, 0, sizeof s->cur);
		return;
	}
	if (strcmp(name, "Object") == 0 && !s->in_item) {
		s->in_object = false;
		return end_object(s);
	}
	if (!s->collecting)
		return;
	s->collecting = false;
	char *t = trimmed(s);
	if (s->in_item) {
		if (strcmp(name, "Name") == 0) {
			free((char *)s->cur.name);
			if (!(s->cur.name = strdup(t)))
				fail(s, "out of memory");
		} else if (strcmp(name, "Operations") == 0) {
			s->cur.ops = 0;
			for (char *c = t; *c; c++)
				s->cur.ops |= *c == 'R' ? LWM2M_OP_R : *c == 'W' ? LWM2M_OP_W
				                                   : *c == 'E' ? LWM2M_OP_E : 0;
		} else if (strcmp(name, "MultipleInstances") == 0) {
			s->cur.multiple = strcasecmp(t, "Multiple") == 0;
		} else if (strcmp(name, "Mandatory") == 0) {
			s->cur.mandatory = strcasecmp(t, "Mandatory") == 0;
		} else if (strcmp(name, "Type") == 0) {
			s->cur.type = (uint8_t)objmodel_type_from_name(t);
			if (*t && s->cur.type == LWM2M_T_NONE)
				log_warn("%s: resource %u: unknown type \"%s\", kept untyped", s->file,
				         s->cur.id, t);
		}
		return;
	}
	if (strcmp(name, "Name") == 0) {
		free((char *)s->obj->name);
		if (!(s->obj->name = strdup(t)))
			fail(s, "out of memory");
	} else if (strcmp(name, "ObjectID") == 0) {
		char *e;
		long v = strtol(t, &e, 10);
		if (!*t || *e || v < 0 || v > LWM2M_ID_MAX)
			return fail(s, "ObjectID is not a number from 0 to 65534");
		s->obj->id = (uint16_t)v;
		s->have_id = true;
	} else if (strcmp(name, "MultipleInstances") == 0) {
		s->obj->multiple = strcasecmp(t, "Multiple") == 0;
	}
}

static void discard(struct ddf_state *s)
{
	if (s->obj) {
		free((char *)s->obj->name);
		free(s->obj);
		s->obj = NULL;
	}
	for (size_t i = 0; i < s->nres; i++)
		free((char *)s->res[i].name);
	free(s->res);
	free((char *)s->cur.name);
	s->res = NULL;
	s->cur.name = NULL;
}

/* Returns objects loaded, or -1 with the reason logged. */
static int load_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("unable to open %s: %s", path, strerror(errno));
		return -1;
	}
	XML_Parser xp = XML_ParserCreate(NULL);
	if (!xp) {
		close(fd);
		log_error("unable to create an XML parser: out of memory");
		return -1;
	}
	struct ddf_state s = {.xp = xp, .file = path};
	XML_SetUserData(xp, &s);
	XML_SetElementHandler(xp, start, end);
	XML_SetCharacterDataHandler(xp, chars);
	size_t total = 0;
	int rc = 0;
	for (;;) {
		char buf[8192];
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("unable to read %s: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		total += (size_t)n;
		if (total > DDF_MAX_FILE) {
			log_error("%s: larger than %u bytes", path, DDF_MAX_FILE);
			rc = -1;
			break;
		}
		if (XML_Parse(xp, buf, (int)n, n == 0) == XML_STATUS_ERROR) {
			log_error("%s:%lu: %s", path, (unsigned long)XML_GetCurrentLineNumber(xp),
			          s.error ? s.error : XML_ErrorString(XML_GetErrorCode(xp)));
			rc = -1;
			break;
		}
		if (n == 0)
			break;
	}
	if (rc == 0 && s.nloaded == 0) {
		log_error("%s: no LwM2M Object definition", path);
		rc = -1;
	}
	discard(&s);
	XML_ParserFree(xp);
	close(fd);
	return rc < 0 ? -1 : s.nloaded;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_xml(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 4 && strcasecmp(d->d_name + n - 4, ".xml") == 0;
}

int objmodel_load_dir(const char *dir)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, is_xml, by_name);
	if (n < 0) {
		log_error("unable to read directory %s: %s", dir, strerror(errno));
		return -1;
	}
	int total = 0, rc = 0;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(ents[i]->d_name) + 2;
		char *path = malloc(len);
		if (!path) {
			rc = -1;
		} else {
			snprintf(path, len, "%s/%s", dir, ents[i]->d_name);
			int k = load_file(path);
			if (k < 0)
				rc = -1;
			else
				total += k;
			free(path);
		}
		free(ents[i]);
	}
	free(ents);
	return rc < 0 ? -1 : total;
}
