/* Renders a shard's Status message as JSON, the format of `ps-ctl status
 * --json`, the client's ps_client_status_json() and HTTP /status.
 *
 * Each worker carries "history": its per-epoch evaluations, oldest first,
 * as {"epoch","samples","time_ms","loss","accuracy","train_loss",
 * "train_accuracy","auc"}; a figure the worker did not measure is null.
 * "checkpoint" is null for a server without --checkpoint-dir or --restore,
 * else {"ok","failed","dir","last_file","last_time_ms","last_duration_ms",
 * "last_bytes","last_error","restored_from"} (last_time_ms, _duration_ms
 * and _bytes only once one was written; unknown strings are null).
 * Pure function, thread-safe. */
#ifndef PS_STATUS_JSON_H
#define PS_STATUS_JSON_H

#include "common/codec.h"
#include "common/strbuf.h"

void ps_status_json(const Sparkps__Status *st, ps_strbuf *out);

#endif
