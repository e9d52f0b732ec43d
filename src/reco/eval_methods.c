/* eval_methods.c - the methods `attune eval` knows (at_eval.h): the two
 * baselines, and attune's own recommender once its adapter exists.
 *
 * The adapter is src/reco/eval_attune.c, defining at_eval_attune. It is
 * registered when that file is there (__has_include looks for it next to
 * this one), so the harness builds with or without it; after adding it,
 * reconfigure (or touch this file) so that this file is compiled again.
 *
 * THREAD SAFETY: constant.
 */
#include "at_eval.h"

#include <string.h>

#if defined(__has_include)
#if __has_include("eval_attune.c")
#define AT_EVAL_HAVE_ATTUNE 1
#endif
#endif

static const at_eval_method_t *const at_eval__methods[] = {
    &at_eval_popularity,
    &at_eval_itemknn,
#ifdef AT_EVAL_HAVE_ATTUNE
    &at_eval_attune,
#endif
};

/* See at_eval.h. Thread: any. */
size_t at_eval_methods(const at_eval_method_t *const **out)
{
    *out = at_eval__methods;
    return AT_ARRAY_LEN(at_eval__methods);
}

/* See at_eval.h. Thread: any. */
const at_eval_method_t *at_eval_method_find(const char *name, size_t n)
{
    for (size_t i = 0; i < AT_ARRAY_LEN(at_eval__methods); i++)
        if (strlen(at_eval__methods[i]->name) == n && !memcmp(at_eval__methods[i]->name, name, n))
            return at_eval__methods[i];
    return NULL;
}
