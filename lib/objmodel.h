/* The LwM2M object model: which resources an object has and how their values are typed.
 * Built in: core objects 0-7, 3200-3203 and the IPSO objects 3300-3350 (a compact table made
 * from the OMA registry). More objects load from a directory of OMA DDF XML files. */
#ifndef OBJMODEL_H
#define OBJMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lwm2m_type {
	LWM2M_T_NONE = 0, /* executable resources have no value */
	LWM2M_T_STRING,
	LWM2M_T_INTEGER,
	LWM2M_T_UNSIGNED,
	LWM2M_T_FLOAT,
	LWM2M_T_BOOLEAN,
	LWM2M_T_OPAQUE,
	LWM2M_T_TIME,
	LWM2M_T_OBJLNK,
	LWM2M_T_CORELNK,
};

enum { LWM2M_OP_R = 1, LWM2M_OP_W = 2, LWM2M_OP_E = 4 };

struct lwm2m_resource_def {
	uint16_t id;
	uint8_t type;     /* enum lwm2m_type */
	uint8_t ops;      /* LWM2M_OP_* bits */
	bool multiple;
	bool mandatory;
	const char *name;
};

struct lwm2m_object_def {
	uint16_t id;
	bool multiple;
	uint16_t nres;
	const char *name;
	const struct lwm2m_resource_def *res; /* sorted by id */
};

const struct lwm2m_object_def *objmodel_object(uint16_t obj);
const struct lwm2m_resource_def *objmodel_resource(uint16_t obj, uint16_t res);
/* Load every *.xml DDF file in dir; later definitions replace built-in ones. Returns the number
 * of objects loaded, or -1 (errors are logged with the file name). */
int objmodel_load_dir(const char *dir);
/* "string", "integer", ... as the DDF spells them; LWM2M_T_NONE for unknown. */
enum lwm2m_type objmodel_type_from_name(const char *name);
const char *objmodel_type_name(enum lwm2m_type t);

#endif
