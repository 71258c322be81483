/*
 * wordfreq.c — counts the words on standard input and prints the most frequent
 * ones. Every word is a strdup'ed string in a hash table; linked with
 * -lswiftmalloc (see the Makefile) all of those blocks, and libc's own, come from
 * SwiftMalloc. The last line gives SwiftMalloc's count of bytes in use.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <swiftmalloc.h>

struct entry {
    struct entry *next;
    char *word;
    long count;
};

static struct entry **table;
static size_t buckets = 64, entries;

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211u;
    return h;
}

static void grow(void)
{
    size_t n = buckets * 2;
    struct entry **t = calloc(n, sizeof *t);
    if (t == NULL) {
        perror("calloc");
        exit(1);
    }
    for (size_t i = 0; i < buckets; i++)
        for (struct entry *e = table[i], *next; e != NULL; e = next) {
            next = e->next;
            size_t b = hash(e->word) & (n - 1);
            e->next = t[b];
            t[b] = e;
        }
    free(table);
    table = t;
    buckets = n;
}

static void add(const char *word)
{
    size_t b = hash(word) & (buckets - 1);
    for (struct entry *e = table[b]; e != NULL; e = e->next)
        if (strcmp(e->word, word) == 0) {
            e->count++;
            return;
        }
    struct entry *e = malloc(sizeof *e);
    if (e == NULL || (e->word = strdup(word)) == NULL) {
        perror("malloc");
        exit(1);
    }
    e->count = 1;
    e->next = table[b];
    table[b] = e;
    if (++entries > buckets)
        grow();
}

static int by_count(const void *a, const void *b)
{
    const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->word, y->word);
}

int main(void)
{
    table = calloc(buckets, sizeof *table);
    char *line = NULL;
    size_t cap = 0;
    if (table == NULL)
        return 1;
    while (getline(&line, &cap, stdin) >= 0)
        for (char *w = strtok(line, " \t\n"); w != NULL; w = strtok(NULL, " \t\n")) {
            for (char *c = w; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            add(w);
        }
    free(line);

    struct entry **all = malloc((entries ? entries : 1) * sizeof *all);
    size_t n = 0;
    if (all == NULL)
        return 1;
    for (size_t i = 0; i < buckets; i++)
        for (struct entry *e = table[i]; e != NULL; e = e->next)
            all[n++] = e;
    qsort(all, n, sizeof *all, by_count);
    for (size_t i = 0; i < n && i < 5; i++)
        printf("%6ld %s\n", all[i]->count, all[i]->word);
    printf("%zu distinct words; SwiftMalloc bytes in use: %zu\n", n, (size_t)swiftmalloc_mallinfo2().uordblks);

    for (size_t i = 0; i < n; i++) {
        free(all[i]->word);
        free(all[i]);
    }
    free(all);
    free(table);
    return 0;
}
