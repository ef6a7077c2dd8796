/* Shared declarations of the native media library (nm_ring.c, nm_media.c). */
#ifndef NM_H
#define NM_H
#include <stdint.h>

#define NM_BYTES_PER_MS 32

typedef struct nm_ring_stats {
    int64_t underruns, overruns, drift_adjustments, bytes_written, bytes_read;
    int64_t len, primed, prebuffer, window_min, startup_underruns;
    int64_t startup_overruns, starting;
} nm_ring_stats;

typedef struct nm_ring nm_ring;

double nm_now(void);
nm_ring *nm_ring_new(int capacity, int prebuffer, int keep, int high, double settle_s,
                     int grow_to, int drift_window, int drift_band, int startup,
                     double gap_s);
void nm_ring_release(nm_ring *r);
int nm_ring_write(nm_ring *r, const uint8_t *data, int n, double now);
int nm_ring_read(nm_ring *r, uint8_t *out, int n, int wanted, double now);
int nm_ring_len(nm_ring *r);
void nm_ring_ref(nm_ring *r);
int nm_ring_trim_starting(nm_ring *r);
#endif
