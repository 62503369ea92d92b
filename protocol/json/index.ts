/**
 * Public surface of protocol/json/: the zod schemas of the JSON messages the HTTP/WebSocket gateway
 * speaks. Apart from the wire layer (protocol/index.ts) because zod is only needed with `--http`.
 */
export {
  BATCH_OPS_MAX,
  VALUE_TEXT_MAX,
  batchBodySchema,
  childrenQuerySchema,
  eventSchema,
  nodeQuerySchema,
  historyQuerySchema,
  diffQuerySchema,
  permsBodySchema,
  replySchema,
  requestSchema,
  serverMessageSchema,
  tokenBodySchema,
  treeQuerySchema,
  writeBodySchema,
} from './schemas.js';
export type { BatchOp, GatewayEvent, GatewayMessage, GatewayOp, GatewayReply, GatewayRequest } from './schemas.js';
