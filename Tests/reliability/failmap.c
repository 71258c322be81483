/*
 * failmap.c — makes chosen mmap (and mremap) calls fail with ENOMEM.
 *
 * Preload it BEFORE the allocator, so that the allocator's calls to mmap and
 * mremap (made through its PLT) bind here:
 *
 *   LD_PRELOAD="failmap.so libswiftmalloc.so" FAILMAP_AT=3 program
 *
 * Environment (read at the first call):
 *   FAILMAP_AT=N         the Nth call to mmap fails (1-based); 0 or unset: none
 *   FAILMAP_EVERY=K      every Kth call to mmap fails (K, 2K, 3K, ...)
 *   FAILMAP_AFTER=N      every call to mmap after the Nth fails
 *   FAILMAP_MREMAP_AT=N, FAILMAP_MREMAP_EVERY=K   the same for mremap
 *   FAILMAP_MPROTECT=1   every mprotect fails with EPERM (as in a sandbox that
 *                        forbids it)
 *   FAILMAP_LOG=path     at exit, write "mmap CALLS FAILED mremap CALLS FAILED"
 *                        to path (for counting how many maps a run needs)
 *   FAILMAP_SKIP_KNOWN=1 never fail the first mmap after an mremap that moved its
 *                        mapping (that mmap failing aborts the process: finding 2
 *                        in docs/RELIABILITY.md, which has its own reproducer)
 *
 * Only calls that come through the dynamic symbol are counted: glibc's own
 * internal mappings (thread stacks, the loader) do not go through the PLT and
 * are untouched. The real system calls are made with syscall(2), not dlsym, so
 * nothing here allocates. A program may call failmap_set_enabled(0) (found with
 * dlsym or a weak reference) to stop injecting, e.g. before checking recovery.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static long at, every, after, mr_at, mr_every, skip_known, no_mprotect;
static long calls, failed, mr_calls, mr_failed, skipped;
static int configured, enabled = 1, just_moved;

/* The first mmap may come before libc has set up environ (the allocator's first
 * call can be made while the loader is still starting the program), so the
 * settings are read from /proc/self/environ, with a static buffer: nothing here
 * may allocate. */
static char envbuf[1 << 16];
static size_t envlen;

static void load_environ(void)
{
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    for (;;) {
        ssize_t r = read(fd, envbuf + envlen, sizeof envbuf - 1 - envlen);
        if (r <= 0) break;
        envlen += (size_t)r;
    }
    close(fd);
}

static long env_long(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < envlen; i += strlen(envbuf + i) + 1)
        if (strncmp(envbuf + i, name, n) == 0 && envbuf[i + n] == '=') return strtol(envbuf + i + n + 1, NULL, 10);
    return 0;
}

static void configure(void)
{
    if (__atomic_load_n(&configured, __ATOMIC_ACQUIRE)) return;
    static int lock;
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) {}
    if (!configured) {
        load_environ();
        at = env_long("FAILMAP_AT");
        every = env_long("FAILMAP_EVERY");
        after = env_long("FAILMAP_AFTER");
        mr_at = env_long("FAILMAP_MREMAP_AT");
        mr_every = env_long("FAILMAP_MREMAP_EVERY");
        skip_known = env_long("FAILMAP_SKIP_KNOWN");
        no_mprotect = env_long("FAILMAP_MPROTECT");
        __atomic_store_n(&configured, 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

static int should_fail(long n, long at_n, long every_k, long after_n)
{
    if (!__atomic_load_n(&enabled, __ATOMIC_RELAXED)) return 0;
    if (at_n > 0 && n == at_n) return 1;
    if (every_k > 0 && n % every_k == 0) return 1;
    if (after_n > 0 && n > after_n) return 1;
    return 0;
}

void failmap_set_enabled(int on) { __atomic_store_n(&enabled, on, __ATOMIC_RELAXED); }
long failmap_calls(void) { return __atomic_load_n(&calls, __ATOMIC_RELAXED); }
long failmap_failed(void) { return __atomic_load_n(&failed, __ATOMIC_RELAXED); }

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    configure();
    long n = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    int exempt = skip_known && __atomic_exchange_n(&just_moved, 0, __ATOMIC_RELAXED);
    if (should_fail(n, at, every, after) && exempt) {
        __atomic_add_fetch(&skipped, 1, __ATOMIC_RELAXED);
    } else if (should_fail(n, at, every, after)) {
        __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return r == -1 ? MAP_FAILED : (void *)r;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    configure();
    long n = __atomic_add_fetch(&mr_calls, 1, __ATOMIC_RELAXED);
    if (should_fail(n, mr_at, mr_every, 0)) {
        __atomic_add_fetch(&mr_failed, 1, __ATOMIC_RELAXED);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    long r = syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
    if (r != -1 && (void *)r != old) __atomic_store_n(&just_moved, 1, __ATOMIC_RELAXED);
    return r == -1 ? MAP_FAILED : (void *)r;
}

int mprotect(void *addr, size_t len, int prot)
{
    configure();
    if (no_mprotect) {
        errno = EPERM;
        return -1;
    }
    return (int)syscall(SYS_mprotect, addr, len, prot);
}

static void put_num(char *buf, size_t *k, long v)
{
    char tmp[24];
    int t = 0;
    if (v == 0) tmp[t++] = '0';
    while (v > 0 && t < 24) { tmp[t++] = (char)('0' + v % 10); v /= 10; }
    while (t > 0) buf[(*k)++] = tmp[--t];
}

static void put_str(char *buf, size_t *k, const char *s)
{
    while (*s) buf[(*k)++] = *s++;
}

__attribute__((destructor)) static void failmap_report(void)
{
    configure();
    const char *path = NULL;
    for (size_t i = 0; i < envlen; i += strlen(envbuf + i) + 1)
        if (strncmp(envbuf + i, "FAILMAP_LOG=", 12) == 0) path = envbuf + i + 12;
    if (path == NULL || *path == 0) return;
    char buf[160];
    size_t k = 0;
    put_str(buf, &k, "mmap ");
    put_num(buf, &k, calls);
    put_str(buf, &k, " ");
    put_num(buf, &k, failed);
    put_str(buf, &k, " mremap ");
    put_num(buf, &k, mr_calls);
    put_str(buf, &k, " ");
    put_num(buf, &k, mr_failed);
    put_str(buf, &k, " skipped ");
    put_num(buf, &k, skipped);
    put_str(buf, &k, "\n");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, buf, k);
        (void)w;
        close(fd);
    }
}
