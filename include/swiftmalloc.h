/*
 * swiftmalloc.h — public interface of SwiftMalloc, a general-purpose memory
 * allocator for Linux written in Embedded Swift.
 *
 * Two libraries, the same allocator:
 *
 *   libswiftmalloc.so           replaces the C allocator for the whole process
 *                               when it is preloaded (LD_PRELOAD=libswiftmalloc.so
 *                               program) or linked (-lswiftmalloc): malloc, free,
 *                               calloc, realloc, reallocarray, posix_memalign,
 *                               aligned_alloc, memalign, valloc, pvalloc, cfree,
 *                               free_sized, free_aligned_sized, malloc_usable_size,
 *                               malloc_trim, mallinfo2, mallinfo, malloc_stats,
 *                               malloc_info and mallopt all come from it, with
 *                               glibc's semantics, and so do the allocations libc
 *                               makes for the program (strdup, getline, fopen, ...).
 *                               It also exports every function below;
 *                               swiftmalloc_free(p) and free(p) are then the same
 *                               call.
 *
 *   libswiftmalloc-prefixed.so  exports only the functions below and leaves the
 *                               system allocator in place: a program can use both
 *                               side by side. A block must go back to the allocator
 *                               that made it: swiftmalloc_free() of a pointer from
 *                               the system malloc is caught (see "Bad pointers");
 *                               free() of a SwiftMalloc block is not SwiftMalloc's
 *                               to check, and glibc may or may not notice it.
 *
 * Build with `pkg-config --cflags --libs swiftmalloc` (or swiftmalloc-prefixed),
 * or with CMake: find_package(swiftmalloc), then link swiftmalloc::swiftmalloc or
 * swiftmalloc::prefixed.
 *
 * Thread safety: every function here may be called from any thread at any time,
 * concurrently with every other one; a block may be freed by a thread other than
 * the one that allocated it. The allocator stays usable in the child after fork(),
 * also when other threads were allocating. None of the functions is
 * async-signal-safe (as with malloc).
 *
 * Errors: as in glibc. An allocation that fails returns NULL and sets errno to
 * ENOMEM (posix_memalign returns the error number instead). A size above PTRDIFF_MAX fails, and so does a count × size product that
 * overflows. Every block of 16 bytes or more is 16-byte aligned.
 *
 * Bad pointers: passing swiftmalloc_free, swiftmalloc_realloc, swiftmalloc_usable_size
 * (or free, realloc, malloc_usable_size) a pointer SwiftMalloc never handed out, a
 * pointer into the middle of a block, or a block that is already free prints one
 * line naming the call and the address on stderr, then calls abort():
 *
 *   swiftmalloc: free(): invalid pointer 0x55d0c8a2b2a0 (not allocated by swiftmalloc, or already freed)
 *   swiftmalloc: free(): double free of 0x7f3a5c0010a0 (block is already free)
 *   swiftmalloc: realloc(): invalid pointer 0x7f3a5c0010a1 (points inside a block, not at its start)
 *
 * Environment (read once, when the allocator initializes; a flag is on when set
 * to anything but an empty string or a value starting with "0"):
 *   SWIFTMALLOC_STATS=1           record every block's requested size and print
 *                                 the per-size-class statistics
 *                                 (swiftmalloc_stats_print) to stderr at exit.
 *   SWIFTMALLOC_CHECK=1           bypass the thread caches and check every small
 *                                 free against its span's free list: a double free
 *                                 is caught even after the program overwrote the
 *                                 freed block.
 *   SWIFTMALLOC_BACKGROUND=0      no background thread returning idle free pages.
 *   SWIFTMALLOC_PROFILE=1         heap profiler: a report of every live block's
 *                                 call site, written at exit.
 *   SWIFTMALLOC_PROFILE_SAMPLE=N  profile one allocation per N bytes on average.
 *   SWIFTMALLOC_PROFILE_DEPTH=N   frames per recorded stack (default 32, at most 64).
 *   SWIFTMALLOC_PROFILE_WALK=libunwind  full profiling walks every stack with
 *                                 libunwind rather than replaying frame rules learned
 *                                 from it; =check compares the two on every stack.
 *   SWIFTMALLOC_REPORT=path       the profile report's file; %p is the process id
 *                                 (default swiftmalloc.%p.report).
 */
#ifndef SWIFTMALLOC_H
#define SWIFTMALLOC_H

#include <stddef.h>

/* The version of this header; the CMake build gives the libraries the same
 * version and the soname libswiftmalloc.so.MAJOR. SWIFTMALLOC_VERSION is
 * MAJOR*10000 + MINOR*100 + PATCH, for #if comparisons. */
#define SWIFTMALLOC_VERSION_MAJOR 0
#define SWIFTMALLOC_VERSION_MINOR 1
#define SWIFTMALLOC_VERSION_PATCH 0
#define SWIFTMALLOC_VERSION_STRING "0.1.0"
#define SWIFTMALLOC_VERSION (SWIFTMALLOC_VERSION_MAJOR * 10000 + SWIFTMALLOC_VERSION_MINOR * 100 + SWIFTMALLOC_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* Defined in <malloc.h> (glibc 2.33 or later for mallinfo2); include it to call
 * swiftmalloc_mallinfo2 or swiftmalloc_mallinfo. */
struct mallinfo2;
struct mallinfo;

/* ==== Allocation ================================================================ */

/* Allocates size bytes, uninitialized. size 0 returns a unique pointer that must
 * be freed (swiftmalloc_usable_size tells how many bytes it may use).
 * Errors: NULL with errno = ENOMEM when size > PTRDIFF_MAX or memory is exhausted. */
void *swiftmalloc_malloc(size_t size);

/* Frees a block from any swiftmalloc_ allocation function (or, with
 * libswiftmalloc.so, from malloc and its family). NULL does nothing. A pointer
 * that is not the start of a live SwiftMalloc block aborts (see "Bad pointers"). */
void swiftmalloc_free(void *ptr);

/* Allocates count × size bytes, set to zero.
 * Errors: NULL with errno = ENOMEM when count × size overflows, exceeds
 * PTRDIFF_MAX, or memory is exhausted. */
void *swiftmalloc_calloc(size_t count, size_t size);

/* Resizes a block, in place when it can, else by moving the contents (up to the
 * smaller of the two sizes) to a new block and freeing the old one.
 * ptr NULL is swiftmalloc_malloc(size); size 0 frees ptr and returns NULL.
 * Errors: NULL with errno = ENOMEM, and ptr is left intact and still owned by the
 * caller. A bad ptr aborts (see "Bad pointers"). */
void *swiftmalloc_realloc(void *ptr, size_t size);

/* swiftmalloc_realloc(ptr, count × size), with the multiplication checked.
 * Errors: NULL with errno = ENOMEM on overflow (ptr left intact), else as
 * swiftmalloc_realloc. */
void *swiftmalloc_reallocarray(void *ptr, size_t count, size_t size);

/* ==== Aligned allocation ======================================================== */

/* Stores in *memptr a block of size bytes aligned to alignment, which must be a
 * power of two and a multiple of sizeof(void *). Returns 0 on success, else
 * EINVAL (bad alignment) or ENOMEM; on failure *memptr is left untouched. */
int swiftmalloc_posix_memalign(void **memptr, size_t alignment, size_t size);

/* A block of size bytes aligned to alignment. As in glibc, an alignment that is
 * not a power of two is rounded up to the next one, and size need not be a
 * multiple of it.
 * Errors: NULL with errno = EINVAL when alignment > 2^63, ENOMEM otherwise. */
void *swiftmalloc_aligned_alloc(size_t alignment, size_t size);

/* The same as swiftmalloc_aligned_alloc (the obsolete memalign). */
void *swiftmalloc_memalign(size_t alignment, size_t size);

/* A page-aligned block of size bytes. Errors: NULL with errno = ENOMEM. */
void *swiftmalloc_valloc(size_t size);

/* A page-aligned block of size rounded up to whole pages (at least one page).
 * Errors: NULL with errno = ENOMEM, also when the rounding overflows. */
void *swiftmalloc_pvalloc(size_t size);

/* ==== Sized deallocation (C23) ================================================== */

/* Free a block whose size (and alignment) the caller knows; the extra arguments
 * are accepted and not relied on, so these behave exactly as swiftmalloc_free. */
void swiftmalloc_free_sized(void *ptr, size_t size);
void swiftmalloc_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* ==== Introspection and tuning (glibc's malloc.h extensions) ==================== */

/* The number of bytes the block can hold: at least the size it was allocated
 * with, and the caller may use all of them. 0 for NULL. A bad ptr aborts. */
size_t swiftmalloc_usable_size(void *ptr);

/* malloc_trim: flushes the calling thread's cache and gives every free page back
 * to the operating system (pad is ignored). Returns 1 if memory was released,
 * 0 otherwise. */
int swiftmalloc_trim(size_t pad);

/* mallinfo2: the allocator's figures in glibc's structure: arena = bytes mapped
 * for the page heap, ordblks = free page runs, smblks / fsmblks = free small
 * blocks and their bytes, hblks / hblkhd = blocks with their own mapping and
 * their bytes, usmblks = peak bytes held, uordblks = bytes in blocks the program
 * holds, fordblks = free bytes, keepcost = free bytes not yet given back. */
struct mallinfo2 swiftmalloc_mallinfo2(void);

/* mallinfo: the same figures in int fields (truncated; prefer mallinfo2). */
struct mallinfo swiftmalloc_mallinfo(void);

/* malloc_stats: prints the totals in glibc's malloc_stats() layout on stderr. */
void swiftmalloc_malloc_stats(void);

/* malloc_info: writes glibc's XML document to `stream` (a FILE *): the free
 * blocks of each size class (<size from to total count>), the free ranges of
 * mixed spans (<unsorted>), totals of free blocks in thread caches ("fast") and
 * elsewhere ("rest"), blocks with a mapping of their own ("mmap"), and the bytes
 * mapped ("system" current; "max": at least the most ever held in blocks).
 * `options` must be 0. Returns 0; EINVAL (errno unchanged) for nonzero options or
 * a NULL stream (as glibc), -1 if the stream reports a write error. Uses stdio, so it may
 * allocate; do not call it from a signal handler. */
int swiftmalloc_info(int options, void *stream);

/* mallopt: M_TRIM_THRESHOLD (-1) sets how many bytes of free pages are kept
 * before the oldest go back to the system; M_MMAP_THRESHOLD (-3) sets the size
 * from which a block gets its own mapping. Both take a value >= 0. glibc's other
 * parameters (M_MXFAST, M_TOP_PAD, M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB,
 * M_ARENA_TEST, M_ARENA_MAX) are accepted and have no effect; M_MXFAST only within
 * glibc's range, 0 to 160 bytes on 64-bit systems.
 * Returns 1 on success, 0 for an unknown parameter or a value out of range. */
int swiftmalloc_mallopt(int param, int value);

/* ==== Statistics ================================================================ */

/* Writes the statistics table to stderr: per size class the spans, live blocks,
 * bytes in use and held, requested bytes and utilization (requested ÷ held; only
 * when SWIFTMALLOC_STATS=1 made the allocator record requested sizes), peak spans
 * and pages returned; then large and huge blocks, the page heap (mapped, free,
 * dirty, returned to the system), totals and peaks, and threads. The figures are
 * taken class by class while other threads may keep allocating, so they are
 * consistent per line, not across the whole table. Writes with write(2) and does
 * not allocate: it may be called from anywhere malloc may. */
void swiftmalloc_stats_print(void);

/* ==== Heap profile ================================================================ */

/* Writes the heap profile now to `path` (format: docs/PROFILE-FORMAT.md; read it
 * with `swiftmalloc report PATH`): per call site the allocations, frees, live
 * blocks and bytes (requested and held) and the live bytes at the heap's peak;
 * per size class the utilization; the pages pinned by long-lived blocks; and the
 * timeline of requested vs held bytes. Only meaningful while profiling is on
 * (SWIFTMALLOC_PROFILE=1 or SWIFTMALLOC_PROFILE_SAMPLE=N): otherwise returns -1
 * with errno = ENOTSUP. NULL path: -1, EINVAL. A file that cannot be created: -1
 * with open's errno. A write that fails (a full disk, a file size limit): -1 with
 * write's errno, and a report already at `path` stays as it was (the new one is
 * written beside it and renamed over it only when whole). Returns 0 on success.
 * Thread-safe; does not allocate. */
int swiftmalloc_report_write(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* SWIFTMALLOC_H */
