/*
 * profile_malloc_zero_freed — finding 3 in docs/RELIABILITY.md (found by running
 * fuzz_alloc with SWIFTMALLOC_PROFILE=1).
 *
 * malloc(0) returns a real block, and freeing it must be recorded like any other
 * free: the profile report must not list freed zero-byte blocks as live at exit
 * (the leak report would show leaks that are not there).
 *
 * The program re-executes itself with SWIFTMALLOC_PROFILE=1 and a report path (the
 * allocator reads its settings once, at start-up); the child makes 1000
 * malloc(0)/free pairs and 10 malloc(1)/free pairs, from two call sites. The
 * parent reads the report's `stat` lines (docs/PROFILE-FORMAT.md:
 * stat ID ALLOCS BYTES FREES LIVE_COUNT ...) and checks that no site has
 * more than a handful of live blocks (site 0 holds what libc allocated before the
 * allocator's constructor ran; the `own` site what the profiler's loading of
 * libunwind allocated).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void zero_pairs(void)
{
    for (int i = 0; i < 1000; i++) {
        void *p = malloc(0);
        __asm__ volatile("" : "+r"(p) : : "memory");
        free(p);
    }
}

__attribute__((noinline)) static void one_byte_pairs(void)
{
    for (int i = 0; i < 10; i++) {
        void *p = malloc(1);
        __asm__ volatile("" : "+r"(p) : : "memory");
        free(p);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0) {
        zero_pairs();
        one_byte_pairs();
        return 0;
    }
    char report[] = "/tmp/swiftmalloc-regress-zero.XXXXXX";
    int fd = mkstemp(report);
    if (fd < 0) { perror("mkstemp"); return 2; }
    close(fd);
    if (dlsym(RTLD_DEFAULT, "swiftmalloc_malloc") == NULL) {
        printf("skipped: run with LD_PRELOAD=libswiftmalloc.so\n");
        unlink(report);
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SWIFTMALLOC_PROFILE", "1", 1);
        setenv("SWIFTMALLOC_REPORT", report, 1);
        execl("/proc/self/exe", argv[0], "--child", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { printf("FAILED: the profiled child did not exit cleanly\n"); return 1; }
    FILE *f = fopen(report, "r");
    if (f == NULL) { printf("FAILED: no report at %s\n", report); return 1; }
    char line[4096];
    int bad = 0, sites = 0;
    long own = -1;
    while (fgets(line, sizeof line, f)) {
        long id, allocs, bytes, frees, live;
        if (sscanf(line, "own %ld", &id) == 1) own = id;
        if (sscanf(line, "stat %ld %ld %ld %ld %ld", &id, &allocs, &bytes, &frees, &live) != 5) continue;
        sites++;
        if (id != 0 && id != own && live > 0) {
            printf("FAILED: site %ld: %ld allocations of %ld bytes, %ld frees, %ld still live at exit\n", id, allocs,
                   bytes, frees, live);
            bad = 1;
        }
    }
    fclose(f);
    unlink(report);
    if (sites == 0) { printf("FAILED: no stat lines in the report\n"); return 1; }
    if (!bad) printf("ok: every freed block is recorded as freed (%d sites)\n", sites);
    return bad;
}
