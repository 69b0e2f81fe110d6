/* LwM2M values <-> shadow state documents: {"/3303/0/5700":21.5, "/3/0/7/1":5000} is
 * {"3303":{"0":{"5700":21.5}},"3":{"0":{"7":{"1":5000}}}}. */
#ifndef LWM2M_SHADOW_H
#define LWM2M_SHADOW_H

#include <jv.h>

/* Nest a flat values map (borrowed). Keys that are not LwM2M resource or resource-instance paths
 * are left out. */
jv lwm2m_values_nest(jv values);
/* Set one path's value in a nested state (consumes state and v). */
jv lwm2m_nest_set(jv state, const char *path, jv v);

/* Flatten a nested state (borrowed) into resource paths: leaves at depth 3 are "/O/I/R", objects
 * at depth 3 hold resource instances "/O/I/R/RI". Anything else (non-numeric keys, leaves above
 * depth 3, objects below depth 4) goes to *bad as {"<key path>": "reason"}. */
jv lwm2m_state_flatten(jv state, jv *bad);

#endif
