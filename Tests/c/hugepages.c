/*
 * hugepages.c — with SWIFTMALLOC_THP=1, transparent huge pages are asked for inside
 * large blocks only.
 *
 * A large block (2 MiB and more) then asks the kernel for transparent huge pages
 * on the 2 MiB pages wholly inside it (VmFlags "hg" in /proc/self/smaps). When the
 * block is freed, or shrunk by realloc, the pages that leave it must lose that
 * flag: small spans carved from them later would otherwise pin 2 MiB each. Small
 * blocks never sit in a range with the flag. Without the setting (the default)
 * nothing is flagged. The test runs its checks without it, then re-runs itself
 * with SWIFTMALLOC_THP=1.
 *
 * The flags are the kernel's record of madvise(), so the checks hold whatever the
 * system's THP mode is. Skipped when malloc is not SwiftMalloc's or the kernel
 * has no THP support.
 */
#define _GNU_SOURCE
#define TEST_NAME "hugepages"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define MIB ((size_t)1 << 20)
#define HUGE_PAGE (2 * MIB)

/* Whether the mapping holding `addr` has VmFlags `flag` ("hg": huge pages advised).
 * The smaps text is read with read(2) into a static buffer: no allocation here. */
static char smaps[4 << 20];

static int has_flag(uintptr_t addr, const char *flag)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    CHECK(f != NULL, "cannot open /proc/self/smaps");
    size_t n = fread(smaps, 1, sizeof smaps - 1, f);
    fclose(f);
    smaps[n] = 0;
    int inside = 0;
    for (char *line = smaps; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = addr >= lo && addr < hi;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            char want[8];
            snprintf(want, sizeof want, " %s", flag);
            for (char *s = line + 8; (s = strstr(s, want)) != NULL; s += 3)
                if (s[3] == ' ' || s[3] == 0) return 1;
            return 0;
        }
        line = next;
    }
    FAIL("address %#lx is not mapped", (unsigned long)addr);
}

/* A 2 MiB-aligned address wholly inside [p, p+n) with room for a huge page. */
static uintptr_t huge_page_inside(void *p, size_t n)
{
    uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    CHECK(lo + HUGE_PAGE <= (uintptr_t)p + n, "block %p of %zu bytes holds no whole huge page", p, n);
    return lo;
}

static void fill(unsigned char *p, size_t n, unsigned char tag)
{
    page_fill(p, n, tag);
    p[n - 1] = tag;
}

static void check_fill(const unsigned char *p, size_t n, unsigned char tag)
{
    size_t i = page_check(p, n, tag);
    CHECK(i == n, "byte %zu of a large block changed", i);
}

static int run_checks(int thp_on)
{
    /* A large block from the page heap: its whole huge pages are flagged. */
    size_t n = 12 * MIB;
    unsigned char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu) failed", n);
    fill(p, n, 7);
    uintptr_t inner = huge_page_inside(p, n);
    uintptr_t tail = ((uintptr_t)p + 4 * MIB + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    CHECK(has_flag(inner, "hg") == thp_on, "large block %p: huge pages %s", (void *)p,
          thp_on ? "not advised with SWIFTMALLOC_THP=1" : "advised without SWIFTMALLOC_THP=1");
    check_fill(p, n, 7);

    /* Small blocks never share a mapping range that has the flag. */
    void *small[64];
    for (int i = 0; i < 64; i++) {
        small[i] = malloc(16 + (size_t)i * 40);
        CHECK(small[i] != NULL, "small malloc failed");
        CHECK(!has_flag((uintptr_t)small[i], "hg"), "small block %p lies in a huge-page range", small[i]);
    }

    /* Shrinking in place: the huge pages past the new end leave the block. */
    uintptr_t before = (uintptr_t)p;
    unsigned char *q = realloc(p, 3 * MIB);
    CHECK(q != NULL, "realloc shrink failed");
    check_fill(q, 3 * MIB - 4096, 7);
    if ((uintptr_t)q == before) {
        CHECK(!has_flag(tail, "hg"), "pages at %#lx left the shrunk block but keep the huge-page advice",
              (unsigned long)tail);
    }

    /* Freed: the block's pages go back to the page heap without the flag. */
    free(q);
    CHECK(!has_flag(inner, "hg"), "freed block's pages at %#lx keep the huge-page advice", (unsigned long)inner);

    /* Small blocks allocated now may come from those pages: still no flag. */
    for (int i = 0; i < 64; i++) {
        free(small[i]);
        small[i] = malloc(3000);
        CHECK(small[i] != NULL && !has_flag((uintptr_t)small[i], "hg"), "small block in a huge-page range");
    }
    for (int i = 0; i < 64; i++) free(small[i]);

    /* A block with its own mapping (64 MiB and more) is flagged as a whole. */
    size_t hn = 80 * MIB;
    unsigned char *h = malloc(hn);
    CHECK(h != NULL, "malloc(%zu) failed", hn);
    fill(h, hn, 3);
    CHECK(has_flag(huge_page_inside(h, hn), "hg") == thp_on, "own-mapping block: huge pages %s",
          thp_on ? "not advised with SWIFTMALLOC_THP=1" : "advised without SWIFTMALLOC_THP=1");
    check_fill(h, hn, 3);
    free(h);
    return 0;
}

int main(int argc, char **argv)
{
    if (!malloc_is_swiftmalloc() || access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0) {
        printf("%s: skipped (malloc is not SwiftMalloc's, or no THP support)\n", TEST_NAME);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "on") == 0) return run_checks(1);
    run_checks(0);

    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        setenv("SWIFTMALLOC_THP", "1", 1);
        execl("/proc/self/exe", argv[0], "on", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the SWIFTMALLOC_THP=1 run failed (status %#x)", status);
    printf("%s: ok\n", TEST_NAME);
    return 0;
}
