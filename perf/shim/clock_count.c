/* Counts clock_gettime calls made by the gateway's shard threads (named "o1m-shard-*"), for
 * perf/clock_reads.sh. Loaded with LD_PRELOAD; the count is written to $CLOCK_COUNT_OUT at
 * exit. Rust's Instant::now and SystemTime::now, and the runtime's timer driver, all end in
 * libc's clock_gettime, so interposing it sees every clock read (the vDSO behind it does not
 * show up in syscall counters, which is why this shim exists). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

static atomic_ulong shard_reads;
static __thread int is_shard = -1;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (!real_clock_gettime)
        real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    if (is_shard < 0) {
        char name[17] = {0};
        prctl(PR_GET_NAME, name, 0, 0, 0);
        is_shard = strncmp(name, "o1m-shard-", 10) == 0;
    }
    if (is_shard)
        atomic_fetch_add_explicit(&shard_reads, 1, memory_order_relaxed);
    return real_clock_gettime(id, ts);
}

__attribute__((destructor)) static void report(void) {
    const char *out = getenv("CLOCK_COUNT_OUT");
    FILE *f = out ? fopen(out, "w") : NULL;
    if (!f)
        return;
    fprintf(f, "%lu\n", atomic_load(&shard_reads));
    fclose(f);
}
