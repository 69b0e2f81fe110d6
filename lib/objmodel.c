/* Object model lookups: objects loaded from DDF files first, then the built-in table. */
#include "objmodel.h"
#include "objmodel_table.h"

#include <stdlib.h>
#include <strings.h>

/* Loaded once at start-up (objmodel_load_dir), read-only afterwards. */
static struct lwm2m_object_def **loaded;
static size_t nloaded;

static void free_def(struct lwm2m_object_def *d)
{
	for (size_t i = 0; i < d->nres; i++)
		free((char *)d->res[i].name);
	free((void *)d->res);
	free((char *)d->name);
	free(d);
}

int objmodel_add(struct lwm2m_object_def *def)
{
	for (size_t i = 0; i < nloaded; i++)
		if (loaded[i]->id == def->id) {
			free_def(loaded[i]);
			loaded[i] = def;
			return 0;
		}
	struct lwm2m_object_def **n = realloc(loaded, (nloaded + 1) * sizeof *n);
	if (!n)
		return -1;
	loaded = n;
	loaded[nloaded++] = def;
	return 0;
}

const struct lwm2m_object_def *objmodel_object(uint16_t obj)
{
	for (size_t i = 0; i < nloaded; i++)
		if (loaded[i]->id == obj)
			return loaded[i];
	size_t lo = 0, hi = objmodel_builtin_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (objmodel_builtin[mid].id == obj)
			return &objmodel_builtin[mid];
		if (objmodel_builtin[mid].id < obj)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct lwm2m_resource_def *objmodel_resource(uint16_t obj, uint16_t res)
{
	const struct lwm2m_object_def *o = objmodel_object(obj);
	if (!o)
		return NULL;
	size_t lo = 0, hi = o->nres;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->res[mid].id == res)
			return &o->res[mid];
		if (o->res[mid].id < res)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const char *const type_names[] = {
	[LWM2M_T_NONE] = "none",       [LWM2M_T_STRING] = "string",   [LWM2M_T_INTEGER] = "integer",
	[LWM2M_T_UNSIGNED] = "unsigned integer", [LWM2M_T_FLOAT] = "float",
	[LWM2M_T_BOOLEAN] = "boolean", [LWM2M_T_OPAQUE] = "opaque",   [LWM2M_T_TIME] = "time",
	[LWM2M_T_OBJLNK] = "objlnk",   [LWM2M_T_CORELNK] = "corelnk",
};

enum lwm2m_type objmodel_type_from_name(const char *name)
{
	for (size_t t = 1; t < sizeof type_names / sizeof type_names[0]; t++)
		if (strcasecmp(name, type_names[t]) == 0)
			return (enum lwm2m_type)t;
	if (strcasecmp(name, "unsigned") == 0)
		return LWM2M_T_UNSIGNED;
	return LWM2M_T_NONE;
}

const char *objmodel_type_name(enum lwm2m_type t)
{
	if ((size_t)t >= sizeof type_names / sizeof type_names[0])
		return "none";
	return type_names[t];
}
