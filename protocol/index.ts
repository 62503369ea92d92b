/**
 * Public surface of protocol/: the pure wire layer (no I/O, no logger, no store imports).
 * Other folders import from here only.
 */
export { Op, isOp, opName } from './op.js';
export type { OpName } from './op.js';
export { HEADER_SIZE, PAYLOAD_MAX, decodeHeader, encodeHeader } from './header.js';
export type { Header } from './header.js';
export { FrameDecoder } from './frame-decoder.js';
export type { DecodeError, Frame } from './frame-decoder.js';
export { encodeFrame } from './frame-encoder.js';
export { ARGS_MAX, argsN, flagArg, joinStrings, oneArg, parseUint, splitArgs, writeArgs } from './payload.js';
export { XSD_ERRORS, decodeErrorPayload, encodeErrorPayload, isXsdError } from './wire-error.js';
export type { XsdErrorName } from './wire-error.js';
export {
  parseDecimal,
  parseDirectory,
  parseDirectoryPart,
  parseOk,
  parseWatchEvent,
  replyPayload,
  requestPayload,
} from './messages.js';
export {
  VALUE_TEXT_MAX,
  batchBodySchema,
  childrenQuerySchema,
  eventSchema,
  nodeQuerySchema,
  permsBodySchema,
  replySchema,
  requestSchema,
  serverMessageSchema,
  tokenBodySchema,
  treeQuerySchema,
  writeBodySchema,
} from './schemas.js';
export type { BatchOp, GatewayEvent, GatewayMessage, GatewayOp, GatewayReply, GatewayRequest } from './schemas.js';
