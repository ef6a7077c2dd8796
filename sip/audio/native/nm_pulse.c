/* The OS side of the native media path: one blocking libpulse-simple stream per
 * direction, each served by its own pthread (microphone -> mic ring, headset ring ->
 * headset). Device choice and hot-plug stay with the Qt/pactl code; a switch hands a
 * new PulseAudio device name to the thread, which closes and reopens its stream between
 * two blocks (pa_simple objects are only ever touched by their own thread).
 *
 * libpulse-simple is opened with dlopen and its five functions declared here, so the
 * build needs neither libpulse-dev nor a link-time dependency.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nm.h"

typedef struct { int format; uint32_t rate; uint8_t channels; } pa_sample_spec;
typedef struct { uint32_t maxlength, tlength, prebuf, minreq, fragsize; } pa_buffer_attr;
typedef struct pa_simple pa_simple;
#define PA_SAMPLE_S16LE 3
#define PA_STREAM_PLAYBACK 1
#define PA_STREAM_RECORD 2
#define STALL_S 0.1 /* a playback write that took this long: the server stalled */

static struct {
    pa_simple *(*new_)(const char *, const char *, int, const char *, const char *,
                       const pa_sample_spec *, const void *, const pa_buffer_attr *, int *);
    int (*read)(pa_simple *, void *, size_t, int *);
    int (*write)(pa_simple *, const void *, size_t, int *);
    void (*free_)(pa_simple *);
    uint64_t (*latency)(pa_simple *, int *);
    const char *(*strerror)(int);
} pa;
static pthread_mutex_t pa_init_mu = PTHREAD_MUTEX_INITIALIZER;

int nm_pulse_init(char *err, int errlen)
{
    pthread_mutex_lock(&pa_init_mu);
    int rc = 0;
    if (!pa.new_) {
        void *h = dlopen("libpulse-simple.so.0", RTLD_NOW);
        if (!h) {
            snprintf(err, (size_t)errlen, "libpulse-simple.so.0: %s", dlerror());
            rc = -1;
        } else {
            *(void **)&pa.read = dlsym(h, "pa_simple_read");
            *(void **)&pa.write = dlsym(h, "pa_simple_write");
            *(void **)&pa.free_ = dlsym(h, "pa_simple_free");
            *(void **)&pa.latency = dlsym(h, "pa_simple_get_latency");
            *(void **)&pa.strerror = dlsym(h, "pa_strerror"); /* libpulse, a dependency */
            *(void **)&pa.new_ = dlsym(h, "pa_simple_new");
            if (!pa.read || !pa.write || !pa.free_ || !pa.latency || !pa.strerror || !pa.new_) {
                snprintf(err, (size_t)errlen, "libpulse-simple lacks a pa_simple function");
                pa.new_ = NULL;
                rc = -1;
            }
        }
    }
    pthread_mutex_unlock(&pa_init_mu);
    return rc;
}

typedef struct nm_stream {
    int playback;
    int block; /* bytes per pa_simple call */
    nm_ring *ring;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char want[256];     /* device name; "" = the server's default */
    int gen, done_gen;  /* device requests made / served */
    int status;         /* 0 open, else the pa error of the last open */
    char err[256];
    int stop;
    atomic_llong blocks, io_errors;
    atomic_llong latency_us;
    int rt;             /* 1 if SCHED_RR was granted to the thread itself */
} nm_stream;

static pa_simple *open_stream(nm_stream *s, const char *dev, int *error)
{
    pa_sample_spec ss = {PA_SAMPLE_S16LE, 16000, 1};
    pa_buffer_attr a;
    a.maxlength = (uint32_t)-1;
    a.prebuf = (uint32_t)-1;
    if (s->playback) {
        a.tlength = 40 * NM_BYTES_PER_MS; /* as the Qt sink's buffer (qt_io.py) */
        a.minreq = 10 * NM_BYTES_PER_MS;
        a.fragsize = (uint32_t)-1;
    } else {
        a.tlength = a.minreq = (uint32_t)-1;
        a.fragsize = 20 * NM_BYTES_PER_MS;
    }
    return pa.new_(NULL, "Agent Desktop", s->playback ? PA_STREAM_PLAYBACK : PA_STREAM_RECORD,
                   dev[0] ? dev : NULL, s->playback ? "call audio" : "call microphone", &ss,
                   NULL, &a, error);
}

static void *stream_main(void *arg)
{
    nm_stream *s = arg;
    pthread_setname_np(pthread_self(), s->playback ? "audio-playback" : "audio-capture");
    struct sched_param sp = {.sched_priority = 4};
    s->rt = pthread_setschedparam(pthread_self(), SCHED_RR, &sp) == 0;
    pa_simple *ps = NULL;
    uint8_t buf[64 * NM_BYTES_PER_MS];
    char dev[256] = "";
    int64_t n = 0;
    double last = 0;  /* when the last block was done */
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (s->gen != s->done_gen) {
            int gen = s->gen;
            snprintf(dev, sizeof(dev), "%s", s->want);
            pthread_mutex_unlock(&s->mu);
            if (ps)
                pa.free_(ps);
            int error = 0;
            ps = open_stream(s, dev, &error);
            last = 0;
            pthread_mutex_lock(&s->mu);
            s->status = ps ? 0 : (error ? error : -1);
            snprintf(s->err, sizeof(s->err), "%s", ps ? "" : pa.strerror(error));
            s->done_gen = gen;
            pthread_cond_broadcast(&s->cv);
            continue;
        }
        if (!ps) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        int error = 0, rc;
        if (s->playback) {
            nm_ring_read(s->ring, buf, s->block, s->block, -1);
            rc = pa.write(ps, buf, (size_t)s->block, &error);
            double now = nm_now();
            /* A stream starting may block a write for a few hundred ms while the call's
             * audio piles up: that backlog would stay as latency (measured: 180 ms for
             * the first 2 s, then the latency guard's counted trim). */
            if (last > 0 && now - last > STALL_S)
                nm_ring_trim_starting(s->ring);
            last = now;
        } else {
            rc = pa.read(ps, buf, (size_t)s->block, &error);
            if (rc >= 0)
                nm_ring_write(s->ring, buf, s->block, -1);
        }
        if (rc < 0) {
            /* The server went away or the stream died: say so, and reopen the same
             * device after a pause (never spin). */
            atomic_fetch_add(&s->io_errors, 1);
            pa.free_(ps);
            ps = NULL;
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&s->mu);
            snprintf(s->err, sizeof(s->err), "%s", pa.strerror(error));
            s->gen++;
            continue;
        }
        atomic_fetch_add(&s->blocks, 1);
        if (++n % 50 == 0) {
            int e2 = 0;
            uint64_t us = pa.latency(ps, &e2);
            if (us != (uint64_t)-1)
                atomic_store(&s->latency_us, (long long)us);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    if (ps)
        pa.free_(ps);
    return NULL;
}

/* Starts the stream's thread; the stream stays closed until nm_stream_open. */
nm_stream *nm_stream_new(int playback, nm_ring *ring, int block_ms, char *err, int errlen)
{
    if (nm_pulse_init(err, errlen))
        return NULL;
    nm_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    s->playback = playback;
    s->block = block_ms * NM_BYTES_PER_MS;
    if (s->block <= 0 || s->block > 64 * NM_BYTES_PER_MS)
        s->block = 20 * NM_BYTES_PER_MS;
    nm_ring_ref(ring);
    s->ring = ring;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = pthread_create(&s->th, NULL, stream_main, s);
    if (rc) {
        snprintf(err, (size_t)errlen, "pthread_create: %s", strerror(rc));
        nm_ring_release(ring);
        free(s);
        return NULL;
    }
    return s;
}

/* (Re)opens the stream on `device` ("" = default) and waits up to timeout_s for the
 * thread to report; 0 = open, else the error is in err. */
int nm_stream_open(nm_stream *s, const char *device, double timeout_s, char *err, int errlen)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->want, sizeof(s->want), "%s", device ? device : "");
    int gen = ++s->gen;
    pthread_cond_broadcast(&s->cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)timeout_s;
    until.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    while (s->done_gen < gen && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
    int status = s->done_gen < gen ? ETIMEDOUT : s->status;
    snprintf(err, (size_t)errlen, "%s", s->done_gen < gen ? "timed out" : s->err);
    pthread_mutex_unlock(&s->mu);
    return status;
}

/* Stops the thread (it is blocked for at most one block) and frees everything. */
void nm_stream_free(nm_stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    nm_ring_release(s->ring);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void nm_stream_counters(nm_stream *s, int64_t *out /* blocks, io_errors, latency_us, rt */)
{
    out[0] = atomic_load(&s->blocks);
    out[1] = atomic_load(&s->io_errors);
    out[2] = atomic_load(&s->latency_us);
    out[3] = s->rt;
}
