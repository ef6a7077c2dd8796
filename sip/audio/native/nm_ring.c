/* The call's audio rings in C: a port of sip/audio/ring.py's ByteRing.
 *
 * Why C: the rings sit between pjmedia's clock thread and the PulseAudio I/O threads.
 * In Python every access needs the GIL, and a GUI thread preempted while holding it
 * stalled all four sides at once for 100-200 ms (docs/decisions.md, session 3). Here no
 * path takes the GIL.
 *
 * Why a mutex and not a lock-free index pair: the ring's semantics edit the consumer's
 * end from the producer (drop the oldest audio down to `keep` on overflow, the latency
 * guard's trim) and the middle of the buffer (drift compensation repeats or cuts 1 ms
 * at the quietest point). Both parties are C threads that hold the lock for at most a
 * memmove of the 240 ms buffer (7.7 KB, well under a microsecond); no holder ever waits
 * for the GIL, a page fault or I/O while holding it. The recorder taps, whose producer
 * and consumer never edit each other's end, use a lock-free SPSC queue (nm_media.c).
 *
 * Semantics, names and numbers follow ring.py one for one (see its docstrings): a read
 * pads with silence and counts an underrun when short, the prebuffer is re-armed (and
 * grown up to `grow_to`) after one, an overflow drops the oldest audio down to `keep`,
 * a ring that stayed above `high` for `settle_s` is trimmed once, drift is judged
 * over `drift_window` bytes of reads against the first settled window, and under/
 * overruns before both sides have moved `startup` bytes since a clear are counted apart.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nm.h"

#define NM_EVENTS 64
#define SLICE NM_BYTES_PER_MS
#define HALF (SLICE / 2)

struct nm_ring {
    atomic_int refs;
    pthread_mutex_t mu;
    uint8_t *buf;
    int len, alloc, cap;
    int prebuffer, initial_prebuffer, keep, initial_keep, high, grow_to;
    double settle_s, gap_s; /* gap_s: a pause this long between two reads (or writes) is kept */
    int startup;            /* bytes both sides move after clear() before events count */
    int64_t written_since_clear, read_since_clear, startup_underruns, startup_overruns;
    int primed;
    int floor;
    double floor_since;
    int64_t underruns, overruns, drift_adjustments, bytes_written, bytes_read, out;
    double last_read, last_write;
    int window_min;
    int dw, band, last_len;
    int has_anchor, skip, streak, fixing, last_side;
    double anchor, sum;
    int64_t taken;
    double under_t[NM_EVENTS], over_t[NM_EVENTS];
    int64_t n_under_t, n_over_t;
    double gaps[NM_EVENTS][3]; /* side (0 read, 1 write), when it came back, pause s */
    int64_t n_gaps;
};

double nm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  /* = Python's time.monotonic() on Linux */
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rebase(nm_ring *r)
{
    r->has_anchor = 0;
    r->skip = 1;
    r->sum = 0;
    r->taken = 0;
    r->streak = r->fixing = r->last_side = 0;
}

nm_ring *nm_ring_new(int capacity, int prebuffer, int keep, int high, double settle_s,
                     int grow_to, int drift_window, int drift_band, int startup, double gap_s)
{
    /* Arguments are validated by the Python wrapper (same messages as ByteRing). */
    nm_ring *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->alloc = 2 * capacity + 4096;
    r->buf = malloc((size_t)r->alloc);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    pthread_mutex_init(&r->mu, NULL);
    r->cap = capacity;
    r->keep = r->initial_keep = (keep > prebuffer ? keep : prebuffer) & ~1;
    r->high = high;  /* 0 = no latency guard */
    r->settle_s = settle_s;
    r->startup = startup;
    r->gap_s = gap_s;
    r->floor = capacity;
    r->prebuffer = r->initial_prebuffer = prebuffer;
    r->grow_to = grow_to;  /* 0 = fixed prebuffer */
    r->primed = prebuffer == 0;
    r->window_min = capacity;
    r->dw = drift_window;
    r->band = drift_band;
    rebase(r);
    return r;
}

void nm_ring_ref(nm_ring *r) { atomic_fetch_add(&r->refs, 1); }

void nm_ring_release(nm_ring *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        pthread_mutex_destroy(&r->mu);
        free(r->buf);
        free(r);
    }
}

static double clock_or(double now) { return now < 0 ? nm_now() : now; }

/* Either side's stream still starting (ring.py's `starting`; lock held). */
static int starting(nm_ring *r)
{
    return r->written_since_clear < r->startup || r->read_since_clear < r->startup;
}

static void note(double *times, int64_t *n, double at)
{
    times[*n % NM_EVENTS] = at;
    (*n)++;
}

static void note_gap(nm_ring *r, int side, double last, double now)
{
    if (last > 0 && now - last > r->gap_s) {
        double *g = r->gaps[r->n_gaps % NM_EVENTS];
        g[0] = side;
        g[1] = now;
        g[2] = now - last;
        r->n_gaps++;
    }
}

/* Keep the newest `keep` bytes of buf+data (lock held); returns bytes dropped. */
static int drop_to_keep(nm_ring *r, const uint8_t *data, int n, double now)
{
    int total = r->len + n, excess = total - r->keep;
    if (excess <= 0) {
        memcpy(r->buf + r->len, data, (size_t)n);
        r->len = total;
        return 0;
    }
    excess += excess & 1;
    int kept = total - excess;  /* bytes surviving, taken from the end of buf+data */
    if (n >= kept) {
        memcpy(r->buf, data + (n - kept), (size_t)kept);
    } else {
        int from_buf = kept - n;
        memmove(r->buf, r->buf + (r->len - from_buf), (size_t)from_buf);
        memcpy(r->buf + from_buf, data, (size_t)n);
    }
    r->len = kept;
    if (starting(r)) {
        r->startup_overruns++;
    } else {
        r->overruns++;
        note(r->over_t, &r->n_over_t, now);
    }
    rebase(r);
    return excess;
}

static int settled(nm_ring *r, double now)
{
    if (r->len < r->floor)
        r->floor = r->len;
    if (r->floor_since == 0)
        r->floor_since = now;
    if (now - r->floor_since < r->settle_s)
        return 0;
    int stuck = r->floor > r->high;
    r->floor = r->cap;
    r->floor_since = now;
    return stuck;
}

int nm_ring_write(nm_ring *r, const uint8_t *data, int n, double now)
{
    now = clock_or(now);
    int dropped;
    pthread_mutex_lock(&r->mu);
    note_gap(r, 1, r->last_write, now);
    r->last_write = now;
    r->bytes_written += n;
    r->written_since_clear += n;
    r->last_len = n;
    if (r->high && settled(r, now))
        dropped = drop_to_keep(r, data, n, now);
    else if (r->len + n <= r->cap) {
        memcpy(r->buf + r->len, data, (size_t)n);
        r->len += n;
        dropped = 0;
    } else
        dropped = drop_to_keep(r, data, n, now);
    pthread_mutex_unlock(&r->mu);
    return dropped;
}

static void crossfade(const int16_t *a, const int16_t *b, int16_t *out)
{
    for (int k = 0; k < HALF; k++) {
        /* (int) truncates toward zero like Python's int() in ring.py */
        double v = a[k] * (HALF - k - 0.5) / HALF + b[k] * (k + 0.5) / HALF;
        out[k] = (int16_t)(int)v;
    }
}

static int quietest(const uint8_t *buf, int len, int span)
{
    long best = -1;
    int best_at = 0, last = span < len - 2 * SLICE ? span : len - 2 * SLICE;
    for (int at = 0; at <= last; at += SLICE) {
        int16_t x[SLICE];
        memcpy(x, buf + at, sizeof(x));
        long e = 0;
        for (int k = 0; k < SLICE; k++)
            e += labs((long)x[k]);
        if (best < 0 || e < best) {
            best = e;
            best_at = at;
        }
    }
    return best_at;
}

static void stretch(nm_ring *r, int at)
{
    int16_t x[SLICE], mid[HALF];
    memcpy(x, r->buf + at, sizeof(x));
    crossfade(x + HALF, x, mid);
    memmove(r->buf + at + 2 * SLICE, r->buf + at + SLICE, (size_t)(r->len - at - SLICE));
    memcpy(r->buf + at + SLICE, mid, sizeof(mid));
    r->len += SLICE;
}

static void shrink(nm_ring *r, int at)
{
    int16_t x[SLICE], mid[HALF];
    memcpy(x, r->buf + at, sizeof(x));
    crossfade(x, x + HALF, mid);
    memcpy(r->buf + at, mid, sizeof(mid));
    memmove(r->buf + at + SLICE, r->buf + at + 2 * SLICE, (size_t)(r->len - at - 2 * SLICE));
    r->len -= SLICE;
}

/* Drift compensation at a read of n finding have (lock held): ring.py's _track. */
static int track(nm_ring *r, int have, int n, double now)
{
    long since = (long)((now - r->last_write) * 1000 * NM_BYTES_PER_MS);
    if (since > r->last_len)
        since = r->last_len;
    r->sum += (double)(have - n + since) * n;
    r->taken += n;
    if (r->taken < r->dw)
        return have;
    double mean = r->sum / (double)r->taken;
    r->sum = 0;
    r->taken = 0;
    if (!r->has_anchor) {
        if (r->skip)
            r->skip--;
        else {
            r->anchor = mean;
            r->has_anchor = 1;
        }
        return have;
    }
    double dev = mean - r->anchor;
    int side = dev < -r->band ? -1 : dev > r->band ? 1 : 0;
    r->streak = (side && side == r->last_side) ? r->streak + 1 : abs(side);
    r->last_side = side;
    if (r->fixing && dev * r->fixing <= r->band / 4.0)
        r->fixing = 0;
    else if (!r->fixing && r->streak >= 2)
        r->fixing = side;
    if (!r->fixing || have < 2 * SLICE || (r->fixing > 0 && have - SLICE < n))
        return have;
    int at = quietest(r->buf, r->len, 10 * NM_BYTES_PER_MS);
    if (r->fixing < 0)
        stretch(r, at);
    else
        shrink(r, at);
    r->drift_adjustments++;
    return r->len;
}

int nm_ring_read(nm_ring *r, uint8_t *out, int n, int wanted, double now)
{
    now = clock_or(now);
    pthread_mutex_lock(&r->mu);
    note_gap(r, 0, r->last_read, now);
    r->last_read = now;
    r->bytes_read += n;
    r->read_since_clear += n;
    int have = r->len;
    if (have < r->window_min)
        r->window_min = have;
    if (!r->primed) {
        if (have < r->prebuffer) {
            pthread_mutex_unlock(&r->mu);
            memset(out, 0, (size_t)n);
            return 0;
        }
        r->primed = 1;
    }
    if (r->dw)
        have = track(r, have, wanted > 0 ? wanted : n, now);
    if (have >= n) {
        r->out += n;
        memcpy(out, r->buf, (size_t)n);
        memmove(r->buf, r->buf + n, (size_t)(r->len - n));
        r->len -= n;
        if (r->len < r->floor)
            r->floor = r->len;
        pthread_mutex_unlock(&r->mu);
        return n;
    }
    memcpy(out, r->buf, (size_t)have);
    memset(out + have, 0, (size_t)(n - have));
    r->out += have;
    r->len = 0;
    rebase(r);
    if (starting(r)) {
        r->startup_underruns++; /* a side's stream is still starting (ring.py) */
    } else {
        r->underruns++;
        note(r->under_t, &r->n_under_t, now);
    }
    if (r->grow_to && r->prebuffer < r->grow_to) {
        int step = (r->initial_prebuffer / 2 > 2 ? r->initial_prebuffer / 2 : 2) & ~1;
        r->prebuffer = r->prebuffer + step < r->grow_to ? r->prebuffer + step : r->grow_to;
        if (r->keep < r->prebuffer)
            r->keep = r->prebuffer;
    }
    r->primed = r->prebuffer == 0;
    pthread_mutex_unlock(&r->mu);
    return have;
}

int nm_ring_len(nm_ring *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->len;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int nm_ring_take_window_min(nm_ring *r)
{
    pthread_mutex_lock(&r->mu);
    int low = r->window_min;
    r->window_min = r->len;
    pthread_mutex_unlock(&r->mu);
    return low;
}

/* Drop the oldest bytes beyond `keep` (lock held); returns how many. */
static int trim_locked(nm_ring *r, int keep)
{
    int excess = r->len - keep;
    if (excess <= 0)
        return 0;
    excess += excess & 1;
    memmove(r->buf, r->buf + excess, (size_t)(r->len - excess));
    r->len -= excess;
    rebase(r);
    return excess;
}

int nm_ring_trim_to(nm_ring *r, int keep, int count)
{
    pthread_mutex_lock(&r->mu);
    int excess = trim_locked(r, keep);
    if (excess && count && starting(r)) {
        r->startup_overruns++;
    } else if (excess && count) {
        r->overruns++;
        note(r->over_t, &r->n_over_t, nm_now());
    }
    pthread_mutex_unlock(&r->mu);
    return excess;
}

/* A consumer stream resuming after a stall while it is still starting: what piled up
 * meanwhile is stale (as qt_io.RingReader's trim; in Python `if ring.starting:
 * ring.trim_to(ring.prebuffer)`); uncounted. Returns the bytes dropped. */
int nm_ring_trim_starting(nm_ring *r)
{
    pthread_mutex_lock(&r->mu);
    int excess = starting(r) ? trim_locked(r, r->prebuffer) : 0;
    pthread_mutex_unlock(&r->mu);
    return excess;
}

void nm_ring_clear(nm_ring *r)
{
    pthread_mutex_lock(&r->mu);
    r->len = 0;
    r->prebuffer = r->initial_prebuffer;
    r->keep = r->initial_keep;
    r->primed = r->prebuffer == 0;
    r->last_read = r->last_write = 0;
    r->written_since_clear = r->read_since_clear = 0;
    r->floor = r->cap;
    r->floor_since = 0;
    rebase(r);
    pthread_mutex_unlock(&r->mu);
}

void nm_ring_reset_counters(nm_ring *r)
{
    pthread_mutex_lock(&r->mu);
    r->prebuffer = r->initial_prebuffer;
    r->keep = r->initial_keep;
    r->underruns = r->overruns = r->startup_underruns = r->startup_overruns = 0;
    r->n_under_t = r->n_over_t = r->n_gaps = 0;
    rebase(r);
    pthread_mutex_unlock(&r->mu);
}

void nm_ring_get_stats(nm_ring *r, nm_ring_stats *s)
{
    pthread_mutex_lock(&r->mu);
    s->underruns = r->underruns;
    s->overruns = r->overruns;
    s->drift_adjustments = r->drift_adjustments;
    s->bytes_written = r->bytes_written;
    s->bytes_read = r->bytes_read;
    s->len = r->len;
    s->primed = r->primed;
    s->prebuffer = r->prebuffer;
    s->window_min = r->window_min;
    s->startup_underruns = r->startup_underruns;
    s->startup_overruns = r->startup_overruns;
    s->starting = starting(r);
    pthread_mutex_unlock(&r->mu);
}

/* Copies the newest (up to max, up to NM_EVENTS) underrun or overrun times, oldest
 * first; returns how many. */
int nm_ring_events(nm_ring *r, int overruns, double *out, int max)
{
    pthread_mutex_lock(&r->mu);
    double *t = overruns ? r->over_t : r->under_t;
    int64_t n = overruns ? r->n_over_t : r->n_under_t;
    int k = (int)(n < NM_EVENTS ? n : NM_EVENTS);
    if (k > max)
        k = max;
    for (int i = 0; i < k; i++)
        out[i] = t[(n - k + i) % NM_EVENTS];
    pthread_mutex_unlock(&r->mu);
    return k;
}

/* Copies the newest (up to max) long pauses as (side, when, seconds) triples, oldest
 * first (ring.py's `gaps`); returns how many. */
int nm_ring_gaps(nm_ring *r, double *out, int max)
{
    pthread_mutex_lock(&r->mu);
    int64_t n = r->n_gaps;
    int k = (int)(n < NM_EVENTS ? n : NM_EVENTS);
    if (k > max)
        k = max;
    for (int i = 0; i < k; i++)
        memcpy(out + 3 * i, r->gaps[(n - k + i) % NM_EVENTS], 3 * sizeof(double));
    pthread_mutex_unlock(&r->mu);
    return k;
}
