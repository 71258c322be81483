/*
 * swiftmalloc.h — public interface of SwiftMalloc.
 *
 * libswiftmalloc.so replaces the C allocator for the whole process when it is
 * preloaded (LD_PRELOAD=libswiftmalloc.so program) or linked: malloc, free,
 * calloc, realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc, malloc_usable_size, malloc_trim, mallinfo2, mallinfo, malloc_stats and
 * mallopt all come from it, with glibc's semantics. This header declares the
 * same functions under the swiftmalloc_ prefix, so a program can name SwiftMalloc
 * explicitly, plus the extensions below.
 *
 * Every function here is thread-safe and async-signal-unsafe (as malloc is).
 *
 * Environment (read at start-up):
 *   SWIFTMALLOC_STATS=1   print per-size-class statistics to stderr at exit.
 *   SWIFTMALLOC_CHECK=1   extra checks on every free (see docs/DESIGN.md).
 */
#ifndef SWIFTMALLOC_H
#define SWIFTMALLOC_H

#include <stddef.h>

#define SWIFTMALLOC_VERSION_MAJOR 0
#define SWIFTMALLOC_VERSION_MINOR 1
#define SWIFTMALLOC_VERSION_PATCH 0
#define SWIFTMALLOC_VERSION (SWIFTMALLOC_VERSION_MAJOR * 10000 + SWIFTMALLOC_VERSION_MINOR * 100 + SWIFTMALLOC_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The C allocation API under the swiftmalloc_ prefix ----------------------
 * Semantics are glibc's: failure returns NULL with errno = ENOMEM; a size above
 * PTRDIFF_MAX fails; malloc(0) returns a unique pointer; free(NULL) does nothing;
 * realloc(p, 0) frees p and returns NULL. Every block of 16 bytes or more is
 * 16-byte aligned. Freeing a pointer SwiftMalloc did not hand out, one already
 * freed, or one inside a block prints one line naming the call and the address
 * on stderr, then aborts. */
void *swiftmalloc_malloc(size_t size);
void  swiftmalloc_free(void *ptr);
void *swiftmalloc_calloc(size_t count, size_t size);          /* overflow → NULL, ENOMEM */
void *swiftmalloc_realloc(void *ptr, size_t size);            /* failure leaves ptr intact */
void *swiftmalloc_reallocarray(void *ptr, size_t count, size_t size);
/* alignment must be a power of two and a multiple of sizeof(void *): else EINVAL
 * is returned and *memptr is left untouched. */
int   swiftmalloc_posix_memalign(void **memptr, size_t alignment, size_t size);
/* As glibc: an alignment that is not a power of two is rounded up to one. */
void *swiftmalloc_aligned_alloc(size_t alignment, size_t size);
void *swiftmalloc_memalign(size_t alignment, size_t size);
void *swiftmalloc_valloc(size_t size);                        /* page-aligned */
void *swiftmalloc_pvalloc(size_t size);                       /* page-aligned, size rounded to pages */
size_t swiftmalloc_usable_size(void *ptr);                    /* 0 for NULL */
void  swiftmalloc_free_sized(void *ptr, size_t size);
void  swiftmalloc_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* ---- glibc extras --------------------------------------------------------------*/
/* Returns every unused page to the operating system: 1 if memory was released. */
int   swiftmalloc_trim(size_t pad);
/* Prints the totals in glibc's malloc_stats() layout on stderr. */
void  swiftmalloc_malloc_stats(void);
/* M_TRIM_THRESHOLD (-1) sets how many bytes of free pages are kept before they go
 * back to the system; M_MMAP_THRESHOLD (-3) sets the size from which blocks are
 * mapped on their own. Returns 1 when the parameter is known, 0 otherwise. */
int   swiftmalloc_mallopt(int param, int value);

/* ---- Extensions ------------------------------------------------------------------*/
/* Writes the per-size-class statistics (live requested bytes when tracking is on,
 * held bytes, utilization, pages held and returned, totals and peaks) to stderr. */
void  swiftmalloc_stats_print(void);

#ifdef __cplusplus
}
#endif
#endif /* SWIFTMALLOC_H */
