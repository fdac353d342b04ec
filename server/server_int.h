/* Private to the server library and its tests: the request path without a
 * socket loop, for the fuzzing harness (tests/fuzz/), which feeds it
 * messages it builds itself. */
#ifndef PS_SERVER_INT_H
#define PS_SERVER_INT_H

#include "common/transport.h"
#include "server.h"

/* Handles one received message exactly as the event loop does: f holds
 * [routing id][header][bulk...]; the reply goes out on the server's socket
 * to that routing id. f stays the caller's to ps_frames_close(). */
void ps__server_handle(ps_server *s, ps_frames *f);

/* What the event loop does after each batch of messages: counts peers
 * that came and went, expires silent workers, answers the parked pulls
 * that SSP/BSP now allow. */
void ps__server_tick(ps_server *s);

#endif
