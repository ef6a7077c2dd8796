/* Native media path: pjmedia ports over C rings, and PulseAudio I/O threads.
 *
 * Why: pjsua2's `AudioMediaPort` calls Python from pjmedia's clock thread, and the
 * bridge's OS side ran Python too; a GUI thread preempted while holding the GIL stalled
 * every side of the call's audio at once (docs/decisions.md). Here the clock thread
 * calls C (`get_frame`/`put_frame` below), the microphone and headset are served by one
 * blocking pthread each over libpulse-simple, and Python only opens, connects, reads
 * counters and closes.
 *
 * No pjproject headers and no link against the wheel: the few pjsua/pjmedia functions
 * are looked up at run time in the `_pjsua2` module that is already loaded
 * (dlopen RTLD_NOLOAD), and the structs are declared here as pjproject 2.15 lays them
 * out; `nm_init` checks that layout against the wheel (pjmedia_port_info_init into a
 * poisoned buffer, field by field) and refuses to run otherwise, so Python falls back to
 * its own ports. libpulse-simple is opened with dlopen as well (libpulse-dev is not
 * needed): five functions, declared below.
 *
 * Threads: nm_port_new/close and nm_conf_* call pjsua and must run on the thread that
 * owns pjsua2 (checked: an unregistered thread gets an error, never pjsua's abort). The
 * port callbacks run on pjmedia's clock thread; the stream threads are our own and call
 * no pj function.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nm.h"

#define CLOCK_RATE 16000
#define FRAME_BYTES 640 /* 20 ms, 16 kHz mono 16-bit: the conference bridge's frame */
#define PORT_SIGNATURE 0x4e4d5054u /* "NMPT" */

/* ---- pjproject 2.15 ABI, as declared in pjmedia/port.h, format.h, frame.h ---------- */
typedef struct { char *ptr; long slen; } pj_str_t;
typedef struct {
    uint32_t id;
    int type;        /* pjmedia_type: 1 = audio */
    int detail_type; /* pjmedia_format_detail_type: 1 = audio */
    struct {         /* union det: audio detail (video detail is as large, 24 bytes) */
        unsigned clock_rate, channel_count, frame_time_usec, bits_per_sample;
        uint32_t avg_bps, max_bps;
    } aud;
} pjmedia_format;
typedef struct {
    pj_str_t name;
    uint32_t signature;
    int dir;
    pjmedia_format fmt;
} pjmedia_port_info;
typedef struct {
    int type; /* pjmedia_frame_type: 0 none, 1 audio */
    void *buf;
    size_t size;
    uint64_t timestamp;
    uint32_t bit_info;
} pjmedia_frame;
typedef struct pjmedia_port {
    pjmedia_port_info info;
    struct { void *pdata; long ldata; } port_data;
    void *grp_lock;
    void *(*get_clock_src)(struct pjmedia_port *, int);
    int (*put_frame)(struct pjmedia_port *, pjmedia_frame *);
    int (*get_frame)(struct pjmedia_port *, pjmedia_frame *);
    int (*on_destroy)(struct pjmedia_port *);
} pjmedia_port;

_Static_assert(sizeof(pjmedia_port_info) == 64, "pjmedia_port_info layout");
_Static_assert(offsetof(pjmedia_port, port_data) == 64, "pjmedia_port layout");
_Static_assert(offsetof(pjmedia_port, put_frame) == 96, "pjmedia_port layout");
_Static_assert(offsetof(pjmedia_frame, size) == 16, "pjmedia_frame layout");

static struct {
    int (*port_info_init)(pjmedia_port_info *, const pj_str_t *, unsigned, unsigned,
                          unsigned, unsigned, unsigned);
    int (*conf_add_port)(void *, pjmedia_port *, int *);
    int (*conf_remove_port)(int);
    int (*conf_connect)(int, int);
    int (*conf_disconnect)(int, int);
    void *(*pool_create)(const char *, size_t, size_t);
    void (*pool_release)(void *);
    int (*port_destroy)(pjmedia_port *);
    const char *(*get_version)(void);
    int (*thread_is_registered)(void);
} pj;
static int pj_ready;

static void say(char *err, int len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && len > 0)
        vsnprintf(err, (size_t)len, fmt, ap);
    va_end(ap);
}

#define RESOLVE(field, sym)                                                    \
    do {                                                                       \
        *(void **)&pj.field = dlsym(h, sym);                                   \
        if (!pj.field) {                                                       \
            say(err, errlen, "symbol %s not found in %s", sym, pjsua_path);    \
            return -1;                                                         \
        }                                                                      \
    } while (0)

/* Resolves the pjsua functions in the already loaded `_pjsua2` module and checks the
 * struct layout against it. 0 = ready; -1 = do not use (err says why). */
int nm_init(const char *pjsua_path, char *err, int errlen)
{
    void *h = dlopen(pjsua_path, RTLD_NOLOAD | RTLD_NOW);
    if (!h) {
        say(err, errlen, "%s is not loaded in this process (%s)", pjsua_path, dlerror());
        return -1;
    }
    RESOLVE(port_info_init, "pjmedia_port_info_init");
    RESOLVE(conf_add_port, "pjsua_conf_add_port");
    RESOLVE(conf_remove_port, "pjsua_conf_remove_port");
    RESOLVE(conf_connect, "pjsua_conf_connect");
    RESOLVE(conf_disconnect, "pjsua_conf_disconnect");
    RESOLVE(pool_create, "pjsua_pool_create");
    RESOLVE(pool_release, "pj_pool_release");
    RESOLVE(port_destroy, "pjmedia_port_destroy");
    RESOLVE(get_version, "pj_get_version");
    RESOLVE(thread_is_registered, "pj_thread_is_registered");
    const char *ver = pj.get_version();
    int major = 0, minor = 0;
    if (!ver || sscanf(ver, "%d.%d", &major, &minor) != 2 || major != 2 || minor < 14) {
        /* pjmedia_port gained grp_lock in 2.14; an older layout differs. */
        say(err, errlen, "pjproject %s: only 2.14 or later has the expected port layout",
            ver ? ver : "?");
        return -1;
    }
    /* Layout check: the wheel's pjmedia_port_info_init zeroes sizeof(info) bytes and
     * sets each field; every byte past our struct must stay poisoned. */
    unsigned char buf[256];
    memset(buf, 0xA5, sizeof(buf));
    pj_str_t name = {"nm-check", 8};
    int rc = pj.port_info_init((pjmedia_port_info *)buf, &name, PORT_SIGNATURE, CLOCK_RATE,
                               1, 16, FRAME_BYTES / 2);
    pjmedia_port_info *pi = (pjmedia_port_info *)buf;
    int ok = rc == 0 && pi->name.ptr == name.ptr && pi->name.slen == 8
             && pi->signature == PORT_SIGNATURE && pi->dir == 3 && pi->fmt.id == 0
             && pi->fmt.type == 1 && pi->fmt.detail_type == 1
             && pi->fmt.aud.clock_rate == CLOCK_RATE && pi->fmt.aud.channel_count == 1
             && pi->fmt.aud.frame_time_usec == 20000 && pi->fmt.aud.bits_per_sample == 16
             && pi->fmt.aud.avg_bps == 256000 && pi->fmt.aud.max_bps == 256000
             && buf[sizeof(pjmedia_port_info)] == 0xA5 && buf[sizeof(pjmedia_port_info) - 1] == 0;
    if (!ok) {
        say(err, errlen, "pjmedia_port_info layout of pjproject %s differs from ours", ver);
        return -1;
    }
    pj_ready = 1;
    say(err, errlen, "pjproject %s", ver);
    return 0;
}

/* ---- recorder taps: lock-free single-producer single-consumer frame queues --------- */
#define TAP_DATA 1
#define TAP_PAUSED 2
typedef struct {
    uint8_t flags;
    uint8_t data[FRAME_BYTES];
} tap_frame;
typedef struct {
    tap_frame *f;
    unsigned cap;
    _Atomic unsigned head, tail; /* head: clock thread (producer); tail: writer thread */
    atomic_llong dropped;
} tap_q;
typedef struct nm_rec {
    atomic_int refs;
    tap_q q[2]; /* 0 = left (agent), 1 = right (customer) */
    atomic_int paused;
    atomic_llong frames_seen;
} nm_rec;

nm_rec *nm_rec_new(unsigned frames)
{
    nm_rec *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    for (int s = 0; s < 2; s++) {
        r->q[s].cap = frames;
        r->q[s].f = calloc(frames, sizeof(tap_frame));
        if (!r->q[s].f) {
            free(r->q[0].f);
            free(r);
            return NULL;
        }
    }
    return r;
}

void nm_rec_release(nm_rec *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        free(r->q[0].f);
        free(r->q[1].f);
        free(r);
    }
}

/* Pause is applied when a frame is captured (as in sip/recorder.py): the flag travels
 * with the frame, so nothing said while paused is written even if the writer lags.
 * Returns the frames seen so far (call time = frames * 20 ms). */
int64_t nm_rec_set_paused(nm_rec *r, int paused)
{
    atomic_store(&r->paused, paused);
    return atomic_load(&r->frames_seen);
}

int64_t nm_rec_frames_seen(nm_rec *r) { return atomic_load(&r->frames_seen); }
int64_t nm_rec_dropped(nm_rec *r, int side) { return atomic_load(&r->q[side & 1].dropped); }

static void tap_push(nm_rec *r, int side, const pjmedia_frame *fr)
{
    tap_q *q = &r->q[side];
    if (side == 1)
        atomic_fetch_add(&r->frames_seen, 1);
    unsigned head = atomic_load_explicit(&q->head, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (head - tail >= q->cap) {
        atomic_fetch_add(&q->dropped, 1); /* writer far behind: counted, never blocking */
        return;
    }
    tap_frame *f = &q->f[head % q->cap];
    f->flags = atomic_load(&r->paused) ? TAP_PAUSED : 0;
    if (fr->type == 1 && fr->buf && fr->size > 0) {
        size_t n = fr->size < FRAME_BYTES ? fr->size : FRAME_BYTES;
        memcpy(f->data, fr->buf, n);
        memset(f->data + n, 0, FRAME_BYTES - n);
        f->flags |= TAP_DATA;
    }
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
}

/* Writer thread: moves up to `max` frames of one side into `out` (1 flag byte + 640
 * bytes each); returns how many. */
int nm_rec_read(nm_rec *r, int side, uint8_t *out, int max)
{
    tap_q *q = &r->q[side & 1];
    unsigned tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    unsigned head = atomic_load_explicit(&q->head, memory_order_acquire);
    int n = 0;
    while (tail != head && n < max) {
        memcpy(out + (size_t)n * sizeof(tap_frame), &q->f[tail % q->cap], sizeof(tap_frame));
        tail++;
        n++;
    }
    atomic_store_explicit(&q->tail, tail, memory_order_release);
    return n;
}

int nm_tap_frame_size(void) { return (int)sizeof(tap_frame); }

/* ---- pjmedia ports ------------------------------------------------------------------ */
enum { NM_MIC = 0, NM_HEADSET = 1, NM_TAP_LEFT = 2, NM_TAP_RIGHT = 3 };

typedef struct nm_port {
    pjmedia_port base; /* first: pjmedia hands us this pointer */
    int kind;
    nm_ring *ring;
    nm_rec *rec;
    void *pool;
    atomic_int muted;
    atomic_llong calls;
    int slot;
    char name[32];
} nm_port;

static const uint8_t silence[FRAME_BYTES];

static int mic_get_frame(pjmedia_port *base, pjmedia_frame *fr)
{
    nm_port *p = (nm_port *)base;
    size_t n = fr->size ? fr->size : FRAME_BYTES;
    atomic_fetch_add_explicit(&p->calls, 1, memory_order_relaxed);
    nm_ring_read(p->ring, fr->buf, (int)n, 0, -1);
    if (atomic_load_explicit(&p->muted, memory_order_relaxed))
        memset(fr->buf, 0, n); /* the ring is still drained: no stale audio on unmute */
    fr->size = n;
    fr->type = 1;
    return 0;
}

static int headset_put_frame(pjmedia_port *base, pjmedia_frame *fr)
{
    nm_port *p = (nm_port *)base;
    atomic_fetch_add_explicit(&p->calls, 1, memory_order_relaxed);
    if (fr->type == 1 && fr->buf && fr->size > 0)
        nm_ring_write(p->ring, fr->buf, (int)fr->size, -1);
    else
        nm_ring_write(p->ring, silence, FRAME_BYTES, -1);
    return 0;
}

static int tap_put_frame(pjmedia_port *base, pjmedia_frame *fr)
{
    nm_port *p = (nm_port *)base;
    atomic_fetch_add_explicit(&p->calls, 1, memory_order_relaxed);
    tap_push(p->rec, p->kind == NM_TAP_RIGHT, fr);
    return 0;
}

static int no_frame(pjmedia_port *base, pjmedia_frame *fr)
{
    (void)base;
    fr->type = 0;
    fr->size = 0;
    return 0;
}

/* Runs when the port's last reference goes (the conference bridge's, after the removal
 * was processed at a clock tick, or ours in nm_port_close): only then is the memory no
 * longer reachable from the clock thread. */
static int port_on_destroy(pjmedia_port *base)
{
    nm_port *p = (nm_port *)base;
    if (p->ring)
        nm_ring_release(p->ring);
    if (p->rec)
        nm_rec_release(p->rec);
    if (p->pool)
        pj.pool_release(p->pool);
    free(p);
    return 0;
}

static int check_thread(char *err, int errlen)
{
    if (!pj_ready) {
        say(err, errlen, "native media library not initialised");
        return -1;
    }
    if (!pj.thread_is_registered()) {
        say(err, errlen, "pjsua called from a thread pjlib does not know");
        return -1;
    }
    return 0;
}

/* Creates a port of `kind` over `ring` (mic, headset) or `rec` (taps) and adds it to
 * the conference bridge; returns it with its slot in *slot, or NULL (err says why). */
nm_port *nm_port_new(int kind, nm_ring *ring, nm_rec *rec, const char *name, int *slot,
                     char *err, int errlen)
{
    if (check_thread(err, errlen))
        return NULL;
    if ((kind <= NM_HEADSET && !ring) || (kind >= NM_TAP_LEFT && !rec) || kind > NM_TAP_RIGHT) {
        say(err, errlen, "bad port kind %d or missing ring", kind);
        return NULL;
    }
    nm_port *p = calloc(1, sizeof(*p));
    if (!p) {
        say(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    pj_str_t pname = {p->name, (long)strlen(p->name)};
    pj.port_info_init(&p->base.info, &pname, PORT_SIGNATURE, CLOCK_RATE, 1, 16,
                      FRAME_BYTES / 2);
    p->kind = kind;
    p->base.get_frame = kind == NM_MIC ? mic_get_frame : no_frame;
    p->base.put_frame = kind == NM_HEADSET ? headset_put_frame
                        : kind == NM_MIC   ? NULL
                                           : tap_put_frame;
    p->base.on_destroy = port_on_destroy;
    if (ring) {
        nm_ring_ref(ring);
        p->ring = ring;
    }
    if (rec) {
        atomic_fetch_add(&rec->refs, 1);
        p->rec = rec;
    }
    p->pool = pj.pool_create(p->name, 512, 512);
    int id = -1, rc = p->pool ? pj.conf_add_port(p->pool, &p->base, &id) : -1;
    if (rc != 0) {
        say(err, errlen, "pjsua_conf_add_port failed (status %d)", rc);
        port_on_destroy(&p->base);
        return NULL;
    }
    p->slot = id;
    *slot = id;
    return p;
}

/* Leaves the bridge (removal happens at the next clock tick) and drops our reference;
 * the memory goes when the bridge drops its own. `p` must not be used afterwards. */
int nm_port_close(nm_port *p, char *err, int errlen)
{
    if (check_thread(err, errlen))
        return -1;
    int rc = pj.conf_remove_port(p->slot);
    if (rc != 0)
        say(err, errlen, "pjsua_conf_remove_port(%d) failed (status %d)", p->slot, rc);
    pj.port_destroy(&p->base);
    return rc;
}

void nm_port_set_muted(nm_port *p, int muted) { atomic_store(&p->muted, muted); }
int64_t nm_port_calls(nm_port *p) { return atomic_load(&p->calls); }

int nm_conf_connect(int src, int dst, int connect, char *err, int errlen)
{
    if (check_thread(err, errlen))
        return -1;
    int rc = connect ? pj.conf_connect(src, dst) : pj.conf_disconnect(src, dst);
    if (rc != 0)
        say(err, errlen, "pjsua_conf_%s(%d, %d) failed (status %d)",
            connect ? "connect" : "disconnect", src, dst, rc);
    return rc;
}
