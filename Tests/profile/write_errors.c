/* swiftmalloc_report_write when the report cannot be written whole.
 *
 *     write_errors PATH
 *
 * Writes a report to PATH, then sets a file size limit below that report's size
 * (SIGXFSZ ignored, so writes past it fail with EFBIG) and asks for another. The
 * second call must fail (-1, errno EFBIG) and leave PATH as the first call wrote
 * it, with no temporary file beside it. Prints one line; exit status 0 when all
 * holds. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

extern int swiftmalloc_report_write(const char *path) __attribute__((weak));

void *kept[300];

__attribute__((noinline)) static void *site_a(size_t n) { return malloc(n); }
__attribute__((noinline)) static void *site_b(size_t n) { return calloc(1, n); }

/* The file's last line is "end". */
static int ends_whole(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char line[4096], last[4096] = "";
    while (fgets(line, sizeof line, f) != NULL) strcpy(last, line);
    fclose(f);
    return strcmp(last, "end\n") == 0;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: write_errors PATH\n"); return 2; }
    if (swiftmalloc_report_write == NULL) { fprintf(stderr, "write_errors: not preloaded\n"); return 2; }
    const char *path = argv[1];
    for (int i = 0; i < 300; i++) kept[i] = i % 2 ? site_a(100 + (size_t)i) : site_b(40 + (size_t)i);

    if (swiftmalloc_report_write(path) != 0) { perror("write_errors: first report"); return 1; }
    struct stat first;
    if (stat(path, &first) != 0 || !ends_whole(path)) { fprintf(stderr, "write_errors: first report not whole\n"); return 1; }
    rlim_t limit = (rlim_t)first.st_size / 2;
    if (limit < 512) { fprintf(stderr, "write_errors: first report only %lld B\n", (long long)first.st_size); return 1; }

    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { limit, limit };
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) { perror("write_errors: setrlimit"); return 1; }
    errno = 0;
    int r = swiftmalloc_report_write(path);
    int error = errno;
    struct stat after;
    int same = stat(path, &after) == 0 && after.st_size == first.st_size && after.st_ino == first.st_ino &&
               ends_whole(path);

    /* No <path>.<pid>.<tid>.tmp left in the directory. */
    char dir_copy[4096], base_copy[4096];
    snprintf(dir_copy, sizeof dir_copy, "%s", path);
    snprintf(base_copy, sizeof base_copy, "%s", path);
    const char *base = basename(base_copy);
    DIR *d = opendir(dirname(dir_copy));
    int leftovers = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, base, strlen(base)) == 0 && strstr(e->d_name, ".tmp") != NULL) leftovers++;
    if (d != NULL) closedir(d);

    printf("write_errors: limit %llu B (first report %lld B): returned %d, errno %s; report %s; %d temporary file(s) left\n",
           (unsigned long long)limit, (long long)first.st_size, r, strerrorname_np(error) ? strerrorname_np(error) : "0",
           same ? "unchanged" : "changed", leftovers);
    return r == -1 && error == EFBIG && same && leftovers == 0 ? 0 : 1;
}
