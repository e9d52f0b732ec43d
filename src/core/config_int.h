/* config_int.h - what the files of the configuration loader share.
 *
 * THREAD SAFETY: as at_config.h (the loader runs on the owner's thread).
 */
#ifndef AT_CONFIG_INT_H
#define AT_CONFIG_INT_H

#include "at_config.h"

#include <yaml.h>

/* config_sinks.c: loads the `sinks.webhooks` list node n of doc into c,
 * replacing what c held. Returns 0 or AT_EINVALID with "LINE:COL: reason"
 * in err; c stays valid either way. */
int at_config__load_webhooks(yaml_document_t *doc, yaml_node_t *n, at_config_t *c, char *err,
                             size_t errlen);

/* Frees a NULL-terminated list of strings (NULL is fine). */
void at_config__free_list(char **list);

#endif
