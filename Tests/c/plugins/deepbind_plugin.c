/* A plugin for Tests/c/deepbind.c: it allocates and frees for its caller, so blocks
 * cross between the program and the plugin in both directions. */
#include <stdlib.h>
#include <string.h>

char *plugin_copy(const char *text) {
    size_t n = strlen(text) + 1;
    char *p = malloc(n);
    if (p != NULL) memcpy(p, text, n);
    return p;
}

void plugin_release(void *block) { free(block); }
