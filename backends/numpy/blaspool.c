/* OpenBLAS's parallel jobs on a pool of graphc's, whose threads sleep soon after.
 *
 * OpenBLAS's own threads wait for the next GEMM by spinning (sched_yield in a loop)
 * for 2**28 cycles, about 0.1 s, after every parallel call. On a machine with as many
 * threads as cores, graphc's kernels after a matmul then share the cores with two
 * idle spinners: an im2col copy after a GEMM took 1.9 ms instead of 1.0. The spin can
 * only be shortened by OPENBLAS_THREAD_TIMEOUT before the library loads, which is
 * numpy's import, before graphc's. OpenBLAS 0.3.27 and later let the caller run its
 * jobs instead (openblas_set_threads_callback_function): here, on `workers` threads
 * that spin about 50 us for the next job and then sleep on a condition variable.
 *
 * OpenBLAS splits the work as before (into as many jobs as its thread count), so the
 * results are the same bit for bit; only who runs the jobs changes. The caller takes
 * jobs too. A GEMM's jobs wait on each other (each packs panels the others read), so
 * every job of a batch must run at once: the pool starts as many workers as the batch
 * needs besides the caller, and concurrent BLAS calls from several threads take turns
 * at it. After fork() the child has no workers and starts new ones on its first call.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef void (*DoJob)(int thread, void *job, int data);

#define MAX_WORKERS 256
static int64_t spin_ns = 50000;  /* how long a worker polls for the next job */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;  /* guards the fields below */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t owner = PTHREAD_MUTEX_INITIALIZER;  /* held by the pool's user */
static int started = 0, atfork_set = 0;

/* the batch being run: jobs [0, count), `next_job` the first not yet taken. A worker
 * joins a batch under `lock`, reading `count` there and counting itself in `active`;
 * the next batch is set up (under `lock`) only once `active` is back to 0, so a worker
 * late for one batch never takes a job numbered for the next. */
static DoJob batch_fn;
static char *batch_jobs;
static size_t batch_size;
static int batch_data, count;
static atomic_int next_job, done_jobs, active;
static atomic_uint_fast64_t generation;

static void run_jobs(int n) {
    int i;
    while ((i = atomic_fetch_add(&next_job, 1)) < n) {
        batch_fn(i, batch_jobs + (size_t)i * batch_size, batch_data);
        atomic_fetch_add(&done_jobs, 1);
    }
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* poll for a generation after `seen` for spin_ns (the clock read every 64 polls) */
static void spin_for(uint_fast64_t seen) {
    int64_t end = now_ns() + spin_ns;
    for (int polls = 1; atomic_load(&generation) == seen; polls++) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();  /* gentler on the core's other hyperthread */
#endif
        if (polls % 64 == 0 && now_ns() > end)
            return;
    }
}

/* `arg`: the generation when it was started, before the batch it is started for */
static void *worker(void *arg) {
    uint_fast64_t seen = (uint_fast64_t)(uintptr_t)arg;
    for (;;) {
        spin_for(seen);
        pthread_mutex_lock(&lock);
        while (atomic_load(&generation) == seen)
            pthread_cond_wait(&wake, &lock);
        seen = atomic_load(&generation);
        int n = count;
        atomic_fetch_add(&active, 1);
        pthread_mutex_unlock(&lock);
        run_jobs(n);
        atomic_fetch_sub(&active, 1);
    }
    return NULL;
}

static void forget_workers(void) {  /* in a forked child: the threads are gone */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    lock = fresh;
    owner = fresh;
    wake = fresh_cond;
    started = 0;
    atomic_store(&active, 0);
}

/* start workers up to `needed` (the caller is one more thread); lock held. False when
 * the system gives fewer threads. */
static int start_workers(int needed) {
    if (!atfork_set) {
        pthread_atfork(NULL, NULL, forget_workers);
        atfork_set = 1;
    }
    while (started < needed && started < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        uintptr_t now = (uintptr_t)atomic_load(&generation);
        int failed = pthread_create(&t, &attr, worker, (void *)now);
        pthread_attr_destroy(&attr);
        if (failed)
            return 0;
        started++;
    }
    return started >= needed;
}

/* start the workers for batches of up to `threads` jobs (the caller's included) before
 * the first one: 1 if they run, 0 if the system gave fewer (then do not install) */
int gc_blas_pool_start(int threads, int64_t spin_us) {
    pthread_mutex_lock(&lock);
    spin_ns = spin_us * 1000;
    int ok = start_workers(threads - 1);
    pthread_mutex_unlock(&lock);
    return ok;
}

/* OpenBLAS's openblas_threads_callback: run dojob on each of `count` jobs, return when
 * all are done (sync is always 1 in the OpenBLAS versions that call this) */
void gc_blas_pool_run(int sync, DoJob dojob, int jobs, size_t size, void *data, int arg) {
    (void)sync;
    if (jobs <= 1) {
        if (jobs == 1)
            dojob(0, data, arg);
        return;
    }
    pthread_mutex_lock(&owner);
    pthread_mutex_lock(&lock);
    if (!start_workers(jobs - 1)) {  /* (more jobs than at the start: OpenBLAS's thread
                                        count raised since) jobs not all running hang */
        pthread_mutex_unlock(&lock);
        pthread_mutex_unlock(&owner);
        abort();
    }
    while (atomic_load(&active) > 0)
        ;  /* a worker late for the last batch leaves it (it needs no lock to) */
    batch_fn = dojob;
    batch_jobs = data;
    batch_size = size;
    batch_data = arg;
    count = jobs;
    atomic_store(&done_jobs, 0);
    atomic_store(&next_job, 0);
    atomic_fetch_add(&generation, 1);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    run_jobs(jobs);
    while (atomic_load(&done_jobs) < jobs)
        ;  /* the last jobs are running on workers: they finish about when ours did */
    pthread_mutex_unlock(&owner);
}
