/*
 * shared_path — processes that share one report path (SWIFTMALLOC_REPORT without
 * %p, as a program's children inherit it) leave one whole report, never a mix.
 *
 *     shared_path REPORT-PATH            (processes)
 *     shared_path REPORT-PATH threads    (threads of one process)
 *
 * Forks 8 children. Each allocates from 196 distinct stacks (recursion depths),
 * so its report is long, then waits on a pipe; the parent closes the pipe when
 * all are ready, so they exit, and write their reports, at the same moment. The
 * parent then checks the file: one header line first, one `pid` line naming one
 * of the children, `end` last and nowhere else, and no temporary file left
 * beside it. Exit status 0 when all holds.
 *
 * With "threads", 4 threads of one process each ask for a report at that path
 * 25 times at once (swiftmalloc_report_write), and the file is checked the same
 * way, with this process's pid.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CHILDREN = 8, DEPTHS = 14, STACKS = DEPTHS * DEPTHS };

__attribute__((noinline)) static void *nest_b(int depth, size_t size)
{
    void *p = depth > 0 ? nest_b(depth - 1, size) : malloc(size);
    __asm__ volatile("" : : "r"(p) : "memory"); /* keeps the frame: no tail call */
    return p;
}

/* a frames of nest_a, then b of nest_b: every (a, b) is a stack of its own. */
__attribute__((noinline)) static void *nest_a(int a, int b, size_t size)
{
    void *p = a > 0 ? nest_a(a - 1, b, size) : nest_b(b, size);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

static int fail(const char *what)
{
    fprintf(stderr, "shared_path: FAILED: %s\n", what);
    return 1;
}

/* Whole report at `path` from one of `pids`; no temporary file beside it. */
static int check_report(const char *path, const pid_t *pids, int npids, long *pid_out, long *lines_out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return fail("no report at the shared path");
    char line[8192];
    long lines = 0, headers = 0, pidlines = 0, ends = 0, after_end = 0;
    long pid = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        lines++;
        if (ends > 0) after_end++;
        if (strcmp(line, "swiftmalloc-profile 1\n") == 0) {
            if (lines != 1) {
                fclose(f);
                return fail("a second header inside the report (two reports mixed)");
            }
            headers++;
        }
        if (strncmp(line, "pid ", 4) == 0) {
            pidlines++;
            pid = atol(line + 4);
        }
        if (strcmp(line, "end\n") == 0) ends++;
    }
    fclose(f);
    if (headers != 1) return fail("the report does not start with its header");
    if (pidlines != 1) return fail("not exactly one pid line");
    if (ends != 1 || after_end != 0) return fail("the report does not end with its one end line");
    int known = 0;
    for (int c = 0; c < npids; c++) known |= pid == pids[c];
    if (!known) return fail("the report's pid is not one of the writers'");

    char dir_buf[4096];
    snprintf(dir_buf, sizeof dir_buf, "%s", path);
    DIR *d = opendir(dirname(dir_buf));
    if (d == NULL) return fail("cannot list the report's directory");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0) {
            closedir(d);
            return fail("a temporary report file was left behind");
        }
    }
    closedir(d);
    *pid_out = pid;
    *lines_out = lines;
    return 0;
}

enum { THREADS = 4, WRITES = 25 };
static int (*report_write)(const char *);
static const char *shared;
static pthread_barrier_t start;

static void *writer(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);
    for (int i = 0; i < WRITES; i++)
        if (report_write(shared) != 0) return (void *)1;
    return NULL;
}

static int threads_case(const char *path)
{
    report_write = (int (*)(const char *))dlsym(RTLD_DEFAULT, "swiftmalloc_report_write");
    if (report_write == NULL) return fail("swiftmalloc_report_write not found (run with the library preloaded)");
    static void *keep[STACKS];
    for (int d = 0; d < STACKS; d++) keep[d] = nest_a(d / DEPTHS, d % DEPTHS, 16);
    __asm__ volatile("" : : "r"(keep) : "memory");
    shared = path;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, writer, NULL);
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed |= r != NULL;
    }
    if (failed) return fail("swiftmalloc_report_write failed");
    pid_t me = getpid();
    long pid, lines;
    if (check_report(path, &me, 1, &pid, &lines) != 0) return 1;
    printf("shared_path: %d threads wrote %d reports each to one path; it holds one whole report (%ld lines)\n",
           THREADS, WRITES, lines);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[2], "threads") == 0) return threads_case(argv[1]);
    if (argc != 2) return fail("usage: shared_path REPORT-PATH [threads]");
    const char *path = argv[1];
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) return fail("pipe");
    pid_t kids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        kids[c] = fork();
        if (kids[c] < 0) return fail("fork");
        if (kids[c] == 0) {
            close(ready[0]);
            close(go[1]);
            static void *keep[STACKS];
            for (int d = 0; d < STACKS; d++) keep[d] = nest_a(d / DEPTHS, d % DEPTHS, 16 + (size_t)c * 8);
            __asm__ volatile("" : : "r"(keep) : "memory"); /* the blocks stay live */
            char b = 1;
            if (write(ready[1], &b, 1) != 1) _exit(2);
            while (read(go[0], &b, 1) > 0) {
            }
            exit(0); /* the report is written at exit, to the shared path */
        }
    }
    close(ready[1]);
    close(go[0]);
    for (int c = 0; c < CHILDREN; c++) {
        char b;
        if (read(ready[0], &b, 1) != 1) return fail("a child did not get ready");
    }
    close(go[1]); /* all children exit now */
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        if (waitpid(kids[c], &status, 0) != kids[c] || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return fail("a child did not exit with status 0");
    }

    long pid, lines;
    if (check_report(path, kids, CHILDREN, &pid, &lines) != 0) return 1;
    printf("shared_path: %d children wrote to one path; it holds the whole report of pid %ld (%ld lines)\n",
           CHILDREN, pid, lines);
    return 0;
}
