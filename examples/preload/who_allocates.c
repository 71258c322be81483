/*
 * who_allocates.c — a plain C program that knows nothing about SwiftMalloc.
 * It reports which library its malloc comes from, then does some ordinary
 * allocation work. Run it with and without LD_PRELOAD (see preload.sh).
 *
 *   cc -O2 who_allocates.c -o who_allocates
 *   ./who_allocates                                              # glibc
 *   LD_PRELOAD=/path/to/libswiftmalloc.so ./who_allocates          # SwiftMalloc
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, "malloc");
    if (f == NULL || dladdr(f, &info) == 0 || info.dli_fname == NULL) {
        fprintf(stderr, "who_allocates: cannot locate malloc\n");
        return 1;
    }
    printf("malloc comes from %s\n", info.dli_fname);

    /* Some allocation work: a linked list of strings, grown and freed. */
    struct node { struct node *next; char *text; } *head = NULL;
    size_t bytes = 0;
    for (int i = 0; i < 100000; i++) {
        struct node *n = malloc(sizeof *n);
        char buf[64];
        int len = snprintf(buf, sizeof buf, "node %d", i);
        if (n == NULL || (n->text = strdup(buf)) == NULL) {
            perror("who_allocates");
            return 1;
        }
        bytes += sizeof *n + (size_t)len + 1;
        n->next = head;
        head = n;
    }
    size_t count = 0;
    while (head != NULL) {
        struct node *next = head->next;
        free(head->text);
        free(head);
        head = next;
        count++;
    }
    printf("allocated and freed %zu nodes (%zu bytes requested)\n", count, bytes);
    fflush(stdout); /* before a SWIFTMALLOC_STATS=1 table is written to stderr at exit */
    return 0;
}
