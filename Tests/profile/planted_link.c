/* swiftmalloc_report_write when a symbolic link waits at its temporary name.
 *
 *     planted_link PATH VICTIM
 *
 * A report is written beside PATH as <PATH>.<pid>.<tid>.tmp and renamed over PATH,
 * a name anyone who can write the directory (/tmp, say) can predict. The program
 * plays that other user: it writes VICTIM, puts a symbolic link to it at its own
 * temporary name, and asks for a report. The report must land at PATH as a
 * regular file, VICTIM must keep its content, and no temporary name may be left.
 * Prints one line; exit status 0 when all holds. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern int swiftmalloc_report_write(const char *path) __attribute__((weak));

void *kept[100];

__attribute__((noinline)) static void *planted_site(size_t n) { return malloc(n); }

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: planted_link PATH VICTIM\n"); return 2; }
    if (swiftmalloc_report_write == NULL) { fprintf(stderr, "planted_link: not preloaded\n"); return 2; }
    const char *path = argv[1], *victim = argv[2];
    static const char original[] = "the victim's own content\n";
    FILE *f = fopen(victim, "w");
    if (f == NULL || fputs(original, f) == EOF || fclose(f) != 0) { perror("planted_link: victim"); return 2; }
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.%d.%d.tmp", path, (int)getpid(), (int)gettid());
    if (symlink(victim, temporary) != 0) { perror("planted_link: symlink"); return 2; }
    for (int i = 0; i < 100; i++) kept[i] = planted_site(64 + (size_t)i);

    int r = swiftmalloc_report_write(path);
    char content[256] = "";
    f = fopen(victim, "r");
    size_t n = f != NULL ? fread(content, 1, sizeof content - 1, f) : 0;
    if (f != NULL) fclose(f);
    content[n] = 0;
    int victim_kept = strcmp(content, original) == 0;
    struct stat st;
    int report_regular = lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
    int leftover = lstat(temporary, &st) == 0;
    printf("planted_link: returned %d; victim %s; report %s; temporary name %s\n", r,
           victim_kept ? "unchanged" : "overwritten", report_regular ? "a regular file" : "missing or not a regular file",
           leftover ? "left" : "gone");
    return r == 0 && victim_kept && report_regular && !leftover ? 0 : 1;
}
