/* The built-in object table (lib/objmodel_table.c, generated), sorted by object id. */
#ifndef OBJMODEL_TABLE_H
#define OBJMODEL_TABLE_H

#include "objmodel.h"

extern const struct lwm2m_object_def objmodel_builtin[];
extern const size_t objmodel_builtin_count;

/* Add or replace an object definition (from lib/objmodel_ddf.c); takes ownership of def and
 * everything it points to (malloc'd). 0, or -1 on allocation failure. */
int objmodel_add(struct lwm2m_object_def *def);

#endif
