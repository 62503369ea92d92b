import { PAYLOAD_MAX } from '../../protocol/index.js';
import { BATCH_OPS_MAX } from '../../protocol/json/index.js';

/**
 * How big a request body or WebSocket message can usefully be. Whatever a request carries ends
 * up in wire messages of at most PAYLOAD_MAX (4096) bytes each (spec §1.3), so anything bigger
 * than the JSON text of such payloads cannot succeed, and is refused before it costs memory:
 * fastify compares a route's `bodyLimit` with Content-Length before it reads a byte, and stops
 * reading a body without one as soon as it is over (413, connection closed); `ws` does the same
 * with `maxPayload` (close 1009). The old single limit (16 MiB on every route) let each
 * concurrent request hold that much (issue 17 item 7).
 */

/** Most JSON characters one payload byte can need: a control byte is written `\u0000`. */
const JSON_CHARS_PER_BYTE = 6;
/** Keys, quotes, an `encoding`, an `id`, whitespace: what surrounds the payload's text. */
const ENVELOPE = 512;

/** Routes whose body is small or absent: `POST /v1/tokens` (`{ "domid": N }`), DELETE, mkdir. */
export const SMALL_BODY_MAX = 1024;

/** `PUT /v1/node`, `PUT /v1/perms`: one payload in any JSON spelling (24.5 KiB). */
export const PAYLOAD_BODY_MAX = JSON_CHARS_PER_BYTE * PAYLOAD_MAX + ENVELOPE;

/** Per batch op: its payload at two characters per byte (base64 is 4/3, `"n0",` 5/3), its keys. */
const BATCH_OP_MAX = 2 * PAYLOAD_MAX + 128;

/**
 * `POST /v1/transaction`: BATCH_OPS_MAX ops of a full payload each (8.1 MiB). Not at six
 * characters a byte (24 MiB): a batch of full-size values that JSON must escape sends them base64.
 */
export const BATCH_BODY_MAX = BATCH_OPS_MAX * BATCH_OP_MAX + ENVELOPE;

/**
 * One WebSocket message: a JSON request carries at most one payload (any spelling); in binary
 * mode a message holds several whole frames (16 + 4096 bytes each) or any part of one.
 */
export const WS_MESSAGE_MAX = PAYLOAD_BODY_MAX;
