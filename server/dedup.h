/* Exactly-once pushes under retries.
 *
 * Every mutating request carries (client id, sequence number). Per client the
 * shard remembers the outcome of the last PS_DEDUP_WINDOW sequence numbers;
 * a retried request whose first copy was applied is answered with the
 * recorded status instead of being applied again. A sequence number older
 * than the window is refused as stale (the client never has that many
 * requests in flight). Clients are forgotten least-recently-used first when
 * more than max_clients are tracked. Single-threaded (the event loop). */
#ifndef PS_DEDUP_H
#define PS_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#define PS_DEDUP_WINDOW 4096u

enum { PS_DEDUP_NEW = 0, PS_DEDUP_DUP = 1, PS_DEDUP_STALE = 2 };

typedef struct ps_dedup ps_dedup;

int ps_dedup_new(ps_dedup **out, size_t max_clients);
void ps_dedup_free(ps_dedup *d);

/* Classifies (client, seq); seq starts at 1. For PS_DEDUP_DUP, *status is
 * the recorded outcome of the first copy. */
int ps_dedup_check(ps_dedup *d, uint64_t client, uint64_t seq, int *status);

/* Records the outcome of a request classified PS_DEDUP_NEW. PS_ENOMEM if a
 * new client could not be tracked (the request is then simply not
 * deduplicated). */
int ps_dedup_record(ps_dedup *d, uint64_t client, uint64_t seq, int status);

/* Clients currently tracked. */
size_t ps_dedup_clients(const ps_dedup *d);

/* For checkpoints (no allocation, so a forked child may call them): the id
 * of tracked client i (< ps_dedup_clients()), and the outcome recorded in
 * slot k (< PS_DEDUP_WINDOW) of its window: 1 and seq/status when the slot
 * holds one, 0 when it is empty. Restoring is ps_dedup_record() per
 * entry. */
uint64_t ps_dedup_client_at(const ps_dedup *d, size_t i);
int ps_dedup_entry_at(const ps_dedup *d, size_t i, size_t k, uint64_t *seq,
                      int *status);

#endif
